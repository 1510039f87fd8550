"""The one path policy that every path typed into the studio goes through: the studio and the
worker both need to know, neither needs torch to ask."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# --- the one path policy -------------------------------------------------------------------
# Every path a person types into the studio (a dataset, a model, a prompt file, a label
# source, a reward model, a tokenizer folder, a mixture part) goes through `resolve_user_path`:
# it may name only something under the folders the studio serves, so a share link never
# exposes the host's files. Configs reach it through `backends/core/pipelines/policy.py`.


class PathRefused(ValueError):
    """A typed path the studio will not open: outside the served folders, or malformed."""


class PathMissing(PathRefused):
    """A typed path inside the served folders that does not exist."""


# `org/name` as the hub spells it; `..` and leading dots are never hub ids.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def looks_like_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text)) and ".." not in text


MAX_PATH = 4096  # Linux's PATH_MAX
MAX_NAME = 255  # one file or folder name (NAME_MAX)


def check_length(text: str, what: str = "path") -> None:
    """PathRefused for a path too long for any file system here (the OS would raise
    `[Errno 36] File name too long` wherever it is opened)."""
    longest = max((len(part) for part in text.split("/")), default=0)
    if len(text) > MAX_PATH or longest > MAX_NAME:
        raise PathRefused(
            f"{what} {text[:60]!r}... has {len(text)} characters (a name of {longest}); a path has at most "
            f"{MAX_PATH}, each name in it at most {MAX_NAME}"
        )


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve_user_path(
    text: str, roots: Sequence[Path], what: str = "path", bases: Sequence[Path] = ()
) -> Path:
    """The existing file or folder `text` names, resolved (symlinks followed) and inside one
    of `roots`; else PathMissing (inside, but not there) or PathRefused (outside, or empty).

    A relative path is tried against each root, then each of `bases` (e.g. the directory the
    studio was started in, so `runs/<id>/model` works); the result must still be inside a root.
    """
    raw = (text or "").strip()
    if not raw:
        raise PathRefused(f"give a {what}")
    check_length(raw, what)
    if "\x00" in raw:
        raise PathRefused(f"{what} {raw!r} contains a NUL byte")
    resolved_roots = [Path(r).resolve() for r in roots]
    p = Path(raw).expanduser()
    candidates = [p] if p.is_absolute() else [r / p for r in resolved_roots] + [Path(b) / p for b in bases]
    missing: Path | None = None
    outside: Path | None = None
    for cand in candidates:
        try:
            resolved = cand.resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop
            raise PathRefused(f"{what} {raw!r} cannot be resolved ({e})") from None
        if any(_within(resolved, r) for r in resolved_roots):
            if resolved.exists():
                return resolved
            missing = missing or resolved
        elif resolved.exists():
            outside = outside or resolved
    # Something real outside the roots (a `..` path, a link pointing out) is refused even if
    # the same name is merely missing under another root.
    if missing is not None and outside is None:
        raise PathMissing(f"{what} {raw!r} does not exist ({missing})")
    served = ", ".join(str(r) for r in resolved_roots)
    raise PathRefused(
        f"{what} {raw!r} is not under the folders this studio serves ({served}); copy it there "
        "or start the studio with --allow-path DIR"
    )


@dataclass(frozen=True)
class PathPolicy:
    """The folders a studio serves: `roots` for everything, `model_roots` in addition for
    models (the builtin models' cache), and `bases` to try relative paths against."""

    roots: tuple[Path, ...]
    model_roots: tuple[Path, ...] = ()
    bases: tuple[Path, ...] = ()

    def resolve(self, text: str, what: str = "path") -> Path:
        """A file or folder to open (a dataset, a label source, a prompt file)."""
        return resolve_user_path(text, self.roots, what, self.bases)

    def resolve_model(self, text: str, what: str = "model") -> Path:
        """A model folder: under the served folders or the builtin models' cache."""
        return resolve_user_path(text, self.roots + self.model_roots, what, self.bases)

    def exists_locally(self, text: str) -> bool:
        """True when `text` names something on this machine (under a root or a base, a
        dangling link included), so it is a local path, never a hub id."""
        places = (*self.roots, *self.model_roots, *self.bases, Path.cwd())
        return any(os.path.lexists(Path(b) / text) for b in places)

    def as_dict(self) -> dict[str, list[str]]:
        return {k: [str(p) for p in getattr(self, k)] for k in ("roots", "model_roots", "bases")}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> PathPolicy:
        return cls(*(tuple(Path(p) for p in data.get(k, [])) for k in ("roots", "model_roots", "bases")))
