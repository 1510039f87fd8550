"""Programmatic rewards for the RL learning tests: easy for a tiny random policy to climb."""

from __future__ import annotations

from typing import Any

from backends.core.data.formats import text_of


def vowel_share(prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
    """Share of the completion's characters that are the letter 'e' or 'a' (0..1)."""
    out = []
    for c in completions:
        text = text_of(c)
        out.append(sum(ch in "ea" for ch in text) / max(len(text), 1))
    return out


def longer_is_better(prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
    """A judge that only looks at length: the number of words."""
    return [float(len(text_of(c).split())) for c in completions]
