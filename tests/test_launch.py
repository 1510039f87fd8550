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


def test_accounts_and_reward_modules_are_checked_before_the_studio_starts(tmp_path: Path) -> None:
    empty = tmp_path / "users.txt"
    empty.write_text("# nobody yet\n")
    proc = run("--users", str(empty))
    assert proc.returncode == 2 and "has no accounts; add one with --add-user" in proc.stderr
    plain = tmp_path / "plain.txt"
    plain.write_text("alice:secret\n")
    proc = run("--users", str(plain))
    assert proc.returncode == 2 and "plain.txt:1: expected name:role:scrypt" in proc.stderr
    proc = run("--reward-module", "os; rm -rf /")
    assert proc.returncode == 2 and "expected `module` or `module:callable`" in proc.stderr
    proc = run("--add-user", "bob")
    assert proc.returncode == 2 and "--add-user needs --users FILE" in proc.stderr


def test_headless_refuses_a_missing_local_model_before_the_run_exists(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = run(
        "--preset",
        "presets/tiny/sft.yaml",
        "--headless",
        "--runs-dir",
        str(runs),
        "--set",
        "model.name_or_path=./no/such/model",
    )
    assert (
        proc.returncode == 2 and "`model.name_or_path`: model './no/such/model' does not exist" in proc.stderr
    )
    assert not runs.exists() or not any(runs.iterdir())
