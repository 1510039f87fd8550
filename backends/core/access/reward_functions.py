"""The reward functions an operator registered (`--reward-module MODULE[:FN]`): the only
`module:callable` names a config from the web may choose as a `function` reward or judge.
A module registers the public functions it defines, never the names it imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from backends.core.spec.config import ConfigError


@dataclass(frozen=True)
class RewardFunctions:
    """The `module:callable` names the web may choose as a `function` reward or judge. A
    `module` given at start-up registers the public functions defined in that module (its
    `__module__`), never names it imported (`from subprocess import run`). Empty: none."""

    names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, items: list[str], source: str = "--reward-module") -> RewardFunctions:
        out, problems = [], []
        mod = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
        for item in items:
            for name in (x.strip() for x in item.split(",")):
                if not name:
                    continue
                if not re.fullmatch(rf"{mod}(:[A-Za-z_][A-Za-z0-9_]*)?", name):
                    problems.append(f"{source} {name!r}: expected `module` or `module:callable`")
                elif ":" in name:
                    out.append(name)
                else:
                    try:
                        found = _functions_defined_in(name)
                    except ImportError as e:
                        problems.append(f"{source} {name!r}: the module cannot be imported ({e})")
                        continue
                    if not found:
                        problems.append(f"{source} {name!r}: the module defines no public function")
                    out += found
        if problems:
            raise ConfigError(problems)
        return cls(tuple(dict.fromkeys(out)))

    def allows(self, ref: str) -> bool:
        return ref in self.names

    def describe(self) -> str:
        return ", ".join(self.names) if self.names else "none"


def _functions_defined_in(module: str) -> list[str]:
    import importlib
    import inspect

    mod = importlib.import_module(module)
    return [
        f"{module}:{name}"
        for name, obj in vars(mod).items()
        if not name.startswith("_") and inspect.isfunction(obj) and obj.__module__ == module
    ]
