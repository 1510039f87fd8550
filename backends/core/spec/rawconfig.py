"""Plain data from YAML, before it becomes a run config: the one error type (every problem,
each naming its field, value and source), and safe loading of YAML a person wrote.

`yaml.safe_load` runs no Python tags, but aliases can still make a small file expand into
billions of values ("billion laughs") or refer to themselves, and a number past 2**53 is no
setting: `check_structure` refuses those before anything walks, copies or validates the data.
"""

from __future__ import annotations

from typing import Any

import yaml


class ConfigError(ValueError):
    """Every problem found in a config, each naming its field, value and source."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid config:\n" + "\n".join(f"  - {p}" for p in problems))


# Limits of what a preset may be: YAML anchors can make a small file expand into billions of
# values ("billion laughs") or refer to themselves, and a number past 2**53 is no setting.
MAX_VALUES = 100_000
MAX_INT = 2**53


def check_structure(raw: Any, source: str) -> None:
    """Refuse, before anything walks or copies it, data parsed from YAML that refers to
    itself, expands past MAX_VALUES values, or holds an integer past MAX_INT."""
    seen = 0
    problems: list[str] = []

    def walk(node: Any, where: str, path: tuple[int, ...]) -> None:
        nonlocal seen
        seen += 1
        if seen > MAX_VALUES:
            raise ConfigError(
                [f"{source} expands to more than {MAX_VALUES:,} values (repeated YAML anchors?); refused"]
            )
        if isinstance(node, dict | list):
            if id(node) in path:
                raise ConfigError(
                    [f"`{where or '(top level)'}` refers to itself (a recursive YAML anchor) ({source})"]
                )
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for k, v in items:
                walk(v, f"{where}.{k}" if where else str(k), (*path, id(node)))
        elif isinstance(node, int) and not isinstance(node, bool) and abs(node) > MAX_INT:
            problems.append(f"`{where}`: {str(node)[:40]} is too large (at most 2**53) ({source})")

    walk(raw, "", ())
    if problems:
        raise ConfigError(problems)


def load_yaml(text: str, source: str) -> Any:
    """YAML typed or stored by a person: `yaml.safe_load` (no Python tags), then `check_structure`."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([f"{source} is not valid YAML: {e}"]) from None
    check_structure(raw, source)
    return raw
