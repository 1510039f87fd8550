"""The UI process never imports torch / transformers / trl."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_studio_does_not_import_training_libraries(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from studio.context import StudioContext\n"
        "from studio.app import build_app\n"
        f"build_app(StudioContext.create({str(tmp_path / 'runs')!r}, {str(ROOT / 'presets')!r}, {str(tmp_path / 'data')!r}))\n"
        "print(sorted(m for m in ('torch', 'transformers', 'trl', 'peft') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
