"""The code's shape, checked: backends/core is subpackages by concern that import only what
their docstrings allow, no module imports in a circle (lazy imports included), and no source
file is over 300 lines. Static (ast), so it runs in milliseconds."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "backends" / "core"
SOURCES = [
    *sorted((ROOT / "backends").rglob("*.py")),
    *sorted((ROOT / "studio").rglob("*.py")),
    ROOT / "launch.py",
]
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every project module `path` imports, at module level or inside a function, TYPE_CHECKING
    blocks excepted (they never run)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for child in node.body for n in ast.walk(child)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:  # `from pkg import module` names a module
                full = f"{node.module}.{a.name}"
                out.add(full if full in known else node.module)
    return {m for m in out if m in known}


def graph() -> dict[str, set[str]]:
    known = {module_name(p) for p in SOURCES}
    return {module_name(p): imported_modules(p, known) - {module_name(p)} for p in SOURCES}


def test_no_module_imports_in_a_circle() -> None:
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g.get(m, ())):
            # a package's __init__ is imported on the way to its modules: not an edge of its own
            if d in stack and not m.startswith(d + "."):
                cycles.append(stack[stack.index(d) :] + [d])
            elif state.get(d) is None:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if state.get(m) is None:
            visit(m)
    assert not cycles, cycles


def test_core_is_subpackages_that_import_only_what_their_docstrings_allow() -> None:
    flat = sorted(p.name for p in CORE.glob("*.py") if p.name != "__init__.py")
    assert not flat, f"backends/core holds only subpackages; move {flat} into one"
    packages = sorted(p for p in CORE.iterdir() if (p / "__init__.py").exists())
    assert len(packages) >= 6
    g = graph()
    problems = []
    for pkg in packages:
        doc = ast.get_docstring(ast.parse((pkg / "__init__.py").read_text())) or ""
        found = re.search(r"May import: (.*)", doc)
        assert found, f"{pkg.relative_to(ROOT)}/__init__.py says what it owns and what it may import"
        allowed = set(re.findall(r"\w+", found.group(1))) if "nothing" not in found.group(1) else set()
        modules = sorted(pkg.glob("*.py"))
        assert len(modules) <= 14, f"{pkg.name} has {len(modules)} modules; split it by concern"
        for path in modules:
            for dep in g[module_name(path)]:
                if dep.startswith("backends.core."):
                    other = dep.split(".")[2]
                    if other != pkg.name and other not in allowed:
                        problems.append(
                            f"{module_name(path)} imports {dep} ({pkg.name} may import {allowed})"
                        )
    assert not problems, problems


def test_the_layers_documented_in_core_match_the_packages() -> None:
    doc = ast.get_docstring(ast.parse((CORE / "__init__.py").read_text())) or ""
    listed = re.findall(r"^    (\w+)\s{2,}", doc, re.M)
    assert sorted(listed) == sorted(p.name for p in CORE.iterdir() if (p / "__init__.py").exists())


def test_no_source_file_is_over_300_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n for p in SOURCES if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long


def test_every_source_package_has_an_init_and_none_is_git_ignored() -> None:
    """A package without __init__.py still imports (as a namespace package), so only this finds
    one that a .gitignore rule keeps out of a clean checkout."""
    folders = {p.parent for p in SOURCES if p.parent != ROOT}
    assert not [str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists()]
    if not (ROOT / ".git").exists():
        return  # an sdist or a copy without git: nothing can be ignored
    paths = [str(p.relative_to(ROOT)) for p in SOURCES]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert not ignored, f"git ignores these sources, so a clean checkout lacks them: {ignored}"
