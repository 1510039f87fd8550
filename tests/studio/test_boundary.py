"""The studio process never imports torch / trl / peft / transformers' models, and never a
module of `backends/worker/`: checked by folder (every module of studio/, backends/core/ and
backends/methods/) and by running every tab's main handlers against a live server."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "trl", "peft", "accelerate", "transformers.modeling_utils", "transformers.trainer")
STUDIO_SIDE = ("studio", "backends/core", "backends/methods")


def modules_under(folder: str) -> list[str]:
    return [
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p.name != "__main__.py"
    ]


def run_python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def test_no_studio_side_module_imports_a_worker_module() -> None:
    """A static check: studio/, backends/core/ and backends/methods/ name backends.worker only
    inside functions (a method's `train`, which the worker calls), never at module level."""
    offenders = []
    for folder in STUDIO_SIDE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in tree.body:  # module level only
                names = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                for name in names:
                    if name.startswith("backends.worker") or name.split(".")[0] in ("torch", "trl", "peft"):
                        offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, offenders


def test_importing_every_studio_side_module_loads_no_training_library() -> None:
    mods = [m for folder in STUDIO_SIDE for m in modules_under(folder)]
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "from backends.core.spec import registry\n"
        "registry.specs()\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    assert run_python(code) == "[]"


def test_every_tab_handler_runs_without_training_libraries(tmp_path: Path) -> None:
    """Build and serve the app in one process, call each tab's main handlers through
    gradio_client, then look at what that process imported."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "pairs.jsonl").write_text(
        '{"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "a"}], '
        '"rejected": [{"role": "assistant", "content": "b"}]}\n'
    )
    code = f"""
import socket, sys
from gradio_client import Client
from studio.app import launch_app
from studio.context import StudioContext
from studio.logic import forms
from backends.core.spec.config import read_preset

ctx = StudioContext.create({str(tmp_path / "runs")!r}, {str(ROOT / "presets")!r}, {str(data)!r})
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
app = launch_app(ctx, host="127.0.0.1", port=port, block=False)
c = Client(f"http://127.0.0.1:{{port}}/", verbose=False)
values = forms.form_values(read_preset({str(ROOT / "presets/tiny/sft.yaml")!r}))
c.predict("tiny/sft.yaml", *values, api_name="/preview")
c.predict(None, api_name="/runs")
c.predict("builtin:tasks:dpo", "builtin:tiny-llama", 256, api_name="/data_open")
c.predict({str(data / "pairs.jsonl")!r}, "builtin:tiny-llama", 256, api_name="/data_open")
c.predict({str(data / "pairs.jsonl")!r}, "s1", api_name="/label_create")
c.predict([], [], 0.6, ["train"], api_name="/monitor_select")
c.predict(None, False, api_name="/arena_show")
app.close()
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    assert run_python(code) == "[]"
