"""The run-directory contract: guarded status transitions, atomic writes, metrics tailing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.core.runs.rundir import RunDir, RunState, RunStateError, list_runs


@pytest.fixture()
def run(tmp_path: Path) -> RunDir:
    r = RunDir(tmp_path / "r1")
    r.path.mkdir()
    r.init_status()
    return r


def test_lifecycle_and_final_states_are_final(run: RunDir) -> None:
    assert run.state() is RunState.PENDING
    run.update_status(state="running", pid=123)
    run.update_status(step=5, total_steps=10)
    run.update_status(state="succeeded")
    st = run.read_status()
    assert st["state"] == "succeeded" and st["step"] == 5 and st["pid"] == 123 and st["ended_at"]
    for later in ("running", "failed", "stopped", "pending"):
        with pytest.raises(RunStateError, match="from state `succeeded`"):
            run.update_status(state=later)
    assert run.try_finalize(RunState.FAILED, "late") is False
    # progress arriving after the end does not rewrite a finished run
    run.update_status(step=99)
    assert run.read_status()["step"] == 5


def test_pending_can_be_cancelled_but_not_succeed(run: RunDir) -> None:
    with pytest.raises(RunStateError):
        run.update_status(state="succeeded")
    assert run.try_finalize(RunState.STOPPED, "cancelled")
    assert run.read_status()["error"] == "cancelled"


def test_status_writes_leave_no_temp_files(run: RunDir) -> None:
    for i in range(20):
        run.update_status(state="running", step=i)
    leftovers = [p.name for p in run.path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    assert json.loads(run.status_path.read_text())["step"] == 19


def test_metrics_tail_reads_only_new_lines_and_waits_for_partial_last_line(run: RunDir) -> None:
    tail = run.tail_metrics()
    assert tail.poll() == 0  # no file yet
    run.append_metrics({"step": 1, "split": "train", "loss": 2.0})
    run.append_metrics({"step": 2, "split": "train", "loss": 1.5})
    assert tail.poll() == 2
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 3, "split": "train", "lo')  # a writer caught mid-line
    assert tail.poll() == 0
    assert [r["step"] for r in tail.rows] == [1, 2]
    with open(run.metrics_path, "a") as f:
        f.write('ss": 1.0}\n')
    assert tail.poll() == 1
    assert tail.rows[-1] == {"step": 3, "split": "train", "loss": 1.0}


def test_corrupt_metrics_line_is_reported_not_fatal(run: RunDir) -> None:
    run.metrics_path.write_text('{"step": 1, "loss": 1}\nnot json\n{"step": 2, "loss": 0.5}\n')
    tail = run.tail_metrics()
    assert tail.poll() == 2
    assert [r["step"] for r in tail.rows] == [1, 2]
    assert tail.errors == ["line 2 is not valid JSON (Expecting value)"]  # named by number, not dropped
    with open(run.metrics_path, "a") as f:
        f.write("\n[1, 2]\n")
    assert tail.poll() == 0 and tail.errors[-1] == "line 5 is not a JSON object (got list)"


def test_stop_sentinel_and_log_tail(run: RunDir) -> None:
    assert not run.stop_requested()
    run.request_stop()
    assert run.stop_requested()
    run.log_path.write_bytes(b"start\nprogress 10%\rprogress 50%\rprogress 100%\nend\n")
    assert run.log_tail() == "start\nprogress 100%\nend\n"


def test_last_checkpoint_is_numeric_max(run: RunDir) -> None:
    for n in (5, 10, 100, 20):
        (run.checkpoints_dir / f"checkpoint-{n}").mkdir(parents=True)
        (run.checkpoints_dir / f"checkpoint-{n}" / "trainer_state.json").write_text("{}")
    (run.checkpoints_dir / "checkpoint-bad").mkdir()
    (run.checkpoints_dir / "checkpoint-200").mkdir()  # cut short: no trainer_state.json yet
    assert run.last_checkpoint().name == "checkpoint-100"


def test_list_runs_ignores_folders_without_status(tmp_path: Path) -> None:
    for name in ("20260101-a", "20260102-b"):
        r = RunDir(tmp_path / name)
        r.path.mkdir()
        r.init_status()
    (tmp_path / "not-a-run").mkdir()
    assert [r.run_id for r in list_runs(tmp_path)] == ["20260102-b", "20260101-a"]
