"""launch.py's own rules: sharing needs a login; auth files; headless argument errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from launch import parse_auth  # noqa: E402


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "launch.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_share_without_auth_is_refused_with_the_reason() -> None:
    proc = run("--share")
    assert proc.returncode == 2
    assert "--share makes the studio reachable by anyone" in proc.stderr and "--auth" in proc.stderr


def test_auth_from_argument_and_file(tmp_path: Path) -> None:
    assert parse_auth("alice:secret") == [("alice", "secret")]
    f = tmp_path / "users.txt"
    f.write_text("# team\nalice:one\n\nbob:two:with-colon\n")
    assert parse_auth(str(f)) == [("alice", "one"), ("bob", "two:with-colon")]
    f.write_text("alice:one\nbroken-line\n")
    with pytest.raises(SystemExit, match=r"users.txt:2: expected user:password"):
        parse_auth(str(f))


def test_headless_needs_a_preset() -> None:
    proc = run("--headless")
    assert proc.returncode == 2 and "--headless needs --preset" in proc.stderr


def test_oom_failure_says_which_setting_to_lower() -> None:
    from backends.worker.run import failure_reason

    class OutOfMemoryError(RuntimeError):
        pass

    msg = failure_reason(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert msg.startswith("out of memory") and "`train.per_device_train_batch_size`" in msg
    assert "`train.max_length`" in msg and "\n" not in msg
    assert failure_reason(ValueError("bad\nsecond line")) == "ValueError: bad"


def test_preset_in_ui_mode_preselects_it_in_the_train_tab(tmp_path: Path) -> None:
    from launch import ctx_preset_name
    from studio.app import build_app
    from studio.context import StudioContext

    assert ctx_preset_name(str(ROOT / "presets/tiny/dpo.yaml"), str(ROOT / "presets")) == "tiny/dpo.yaml"
    assert ctx_preset_name(str(tmp_path), str(ROOT / "presets")) is None
    ctx = StudioContext.create(tmp_path / "runs", ROOT / "presets", tmp_path / "data")
    app = build_app(ctx, "tiny/dpo.yaml")
    by_label = {getattr(b, "label", None): b for b in app.blocks.values()}
    assert by_label["Preset"].value == "tiny/dpo.yaml" and by_label["Method"].value == "dpo"
