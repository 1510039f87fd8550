"""Rankings of K answers, as InstructGPT's labelers made them: the order an annotator types,
and the per-prompt weights the reward stage gives a ranking's pairs. Pure functions; no
torch, no gradio.

An order names the shown answers by letter, best first: `B A C`, `BAC` or `B > A > C`;
`=` ties two answers (`B = A > C`). Every shown letter appears exactly once.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

LETTERS = "ABCDEFGHI"  # up to MAX_RANKED answers


class OrderError(ValueError):
    """An order that does not rank every shown answer exactly once."""


def parse_order(text: str, k: int) -> list[int]:
    """The tier (0 = best) of each shown answer, by position: `parse_order("B=A>C", 3)` is
    `[0, 0, 1]`: A and B tied best, C last."""
    letters = LETTERS[:k]
    tiers: dict[str, int] = {}
    tier, tie_next, problems = -1, False, []
    for ch in (text or "").upper():
        if ch in " >,":
            continue
        if ch == "=":
            if tier < 0 or tie_next:
                problems.append("`=` must stand between two letters")
            tie_next = True
            continue
        if ch not in letters:
            problems.append(f"{ch!r} is not one of the answers {', '.join(letters)}")
            continue
        if ch in tiers:
            problems.append(f"{ch} is named twice")
            continue
        if not tie_next:
            tier += 1
        tiers[ch] = tier
        tie_next = False
    if tie_next:
        problems.append("`=` must stand between two letters")
    missing = [c for c in letters if c not in tiers]
    if missing and not problems:
        problems.append(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not ranked yet")
    if problems:
        raise OrderError(
            f"the order {text!r} must name each of {', '.join(letters)} once, best first "
            f"(`=` for a tie): {'; '.join(dict.fromkeys(problems))}"
        )
    return [tiers[c] for c in letters]


def format_order(tiers: Sequence[int]) -> str:
    """Shown answers' tiers back to the typed form: `[0, 0, 1]` -> `A = B > C`."""
    groups: dict[int, list[str]] = {}
    for pos, t in enumerate(tiers):
        groups.setdefault(t, []).append(LETTERS[pos])
    return " > ".join(" = ".join(groups[t]) for t in sorted(groups))


def response_ranks(shown: Sequence[int], tiers: Sequence[int]) -> list[int]:
    """Tiers by shown position -> tiers by response index (what the store keeps)."""
    ranks = [0] * len(shown)
    for pos, response in enumerate(shown):
        ranks[response] = tiers[pos]
    return ranks


def shown_tiers(shown: Sequence[int], ranks: Sequence[int]) -> list[int]:
    """The inverse of `response_ranks`: the stored ranks as tiers of the shown letters."""
    return [ranks[response] for response in shown]


def prompt_key(row: dict[str, Any]) -> str:
    """What makes two preference rows the same prompt: the `prompt` column, else (implicit
    prompt) the chosen conversation without its last turn, or the text both answers share."""
    if "prompt" in row and row["prompt"] is not None:
        return json.dumps(row["prompt"], sort_keys=True)
    chosen, rejected = row["chosen"], row["rejected"]
    if isinstance(chosen, list):
        return json.dumps(chosen[:-1], sort_keys=True)
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    return chosen[:n]


def per_prompt_weights(rows: Sequence[dict[str, Any]]) -> list[float]:
    """A weight per preference row so that every prompt counts once: the C(K, 2) pairs of a
    ranking of K answers share one prompt's weight (InstructGPT, Ouyang et al. 2022, eq. 1),
    as does a prompt's single pair. Scaled to mean 1, so the learning rate means the same
    as without weights; a dataset with one pair per prompt gets weight 1 everywhere."""
    keys = [prompt_key(r) for r in rows]
    counts = Counter(keys)
    if not keys:
        return []
    scale = len(keys) / len(counts)
    return [scale / counts[k] for k in keys]
