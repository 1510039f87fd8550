"""The run directory: the only interface between the studio and a training worker.

Everything a run produces lives in its directory (see docs/DESIGN.md), so the UI can be
restarted or closed without losing a run:

    config.yaml     fully resolved config, written once before the start
    status.json     {"state", "pid", "started_at", "ended_at", "error", ...}, atomic writes
    metrics.jsonl   append-only, one JSON object per line
    stdout.log      the worker's stdout + stderr
    STOP            sentinel: the worker saves and stops at the next step
    .cluster-marker a token a cluster job must read to start (shared storage check)
    model/          the final model or adapter
    checkpoints/    resumable trainer checkpoints
    samples.jsonl   generations made during the run (RL samples, sample stage, eval answers)
    data/<x>.jsonl  datasets a run produced (`@stage.<x>` in a pipeline: pairs, sft, ...)
    judgments.jsonl, winrate.json   a comparison's verdicts and tallies (eval runs)
    evaluation.json a trained model's held-out evaluation (a reward model's pair accuracy)
    summary.json    a data stage's counts and distributions (sda, select)
    report.md, report.html          what a comparison or a pipeline concluded

Every other module asks this one for these names.

This module imports neither torch nor gradio: both sides of the boundary use it.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any

from backends.core.data.jsonl import JsonlTail

CHECKPOINT_MARKERS = ("trainer_state.json", "ppo_state.json")


class RunState(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def is_finalized(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.STOPPED)


class RunStateError(RuntimeError):
    """A status transition that the contract forbids (a finished run cannot change)."""


_ALLOWED: dict[RunState, set[RunState]] = {
    RunState.PENDING: {RunState.RUNNING, RunState.FAILED, RunState.STOPPED},
    RunState.RUNNING: {RunState.RUNNING, RunState.SUCCEEDED, RunState.FAILED, RunState.STOPPED},
}


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old or the new file, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class InRun:
    """A file or folder of a run directory by its name: `RunDir.config_path` is <run>/config.yaml."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, run: Any, owner: Any = None) -> Any:
        return self if run is None else run.path / self.name


class RunDir:
    """One run's directory. Cheap to construct; every method reads or writes files."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).resolve()

    # --- paths -------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.path.name

    config_path = InRun("config.yaml")
    status_path = InRun("status.json")
    metrics_path = InRun("metrics.jsonl")
    log_path = InRun("stdout.log")
    stop_path = InRun("STOP")
    # A token the studio writes before submitting the run to a cluster; the job checks it
    # to prove it sees this very directory (shared storage), see backends/core/runs/rayjob.py.
    cluster_marker_path = InRun(".cluster-marker")
    model_dir = InRun("model")
    checkpoints_dir = InRun("checkpoints")
    samples_path = InRun("samples.jsonl")
    judgments_path = InRun("judgments.jsonl")
    winrate_path = InRun("winrate.json")
    evaluation_path = InRun("evaluation.json")
    # A data stage's own numbers (counts, distributions), e.g. the `sda` stage's.
    summary_path = InRun("summary.json")
    report_md_path = InRun("report.md")
    report_html_path = InRun("report.html")
    data_dir = InRun("data")
    # a forked worker's exit code, written by the fork server (backends/worker/forkserver.py)
    exit_code_path = InRun("exit_code")

    def method(self) -> str:
        """The method in config.yaml: `pipeline` for a pipeline, `?` when the file does not read."""
        import yaml

        if self.exists() and self.read_status().get("kind") == "pipeline":
            return "pipeline"
        try:
            return str(yaml.safe_load(self.config_path.read_text(encoding="utf-8")).get("method", "?"))
        except (OSError, yaml.YAMLError, AttributeError):
            return "?"

    def data_path(self, name: str) -> Path:
        """A dataset this run wrote, e.g. `pairs` -> data/pairs.jsonl (`@stage.pairs` in a pipeline)."""
        return self.data_dir / f"{name}.jsonl"

    def data_outputs(self) -> list[Path]:
        return sorted(self.data_dir.glob("*.jsonl")) if self.data_dir.is_dir() else []

    def exists(self) -> bool:
        return self.status_path.exists()

    # --- status ------------------------------------------------------------------------
    def read_status(self) -> dict[str, Any]:
        with open(self.status_path, encoding="utf-8") as f:
            return json.load(f)

    def state(self) -> RunState:
        return RunState(self.read_status()["state"])

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write of status.json between the worker and the studio."""
        with open(self.path / ".status.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def init_status(self, **extra: Any) -> None:
        atomic_write_text(
            self.status_path,
            json.dumps({"state": RunState.PENDING.value, "created_at": time.time(), "pid": None, **extra}),
        )

    def update_status(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into status.json. A `state` key is a guarded transition."""
        with self._locked():
            status = self.read_status()
            if "state" in fields:
                current = RunState(status["state"])
                new = RunState(fields["state"])
                if new not in _ALLOWED.get(current, set()):
                    raise RunStateError(
                        f"run {self.run_id}: cannot go from state `{current.value}` to "
                        f"`{new.value}`; a run in a final state never changes"
                    )
                fields["state"] = new.value
                if new.is_finalized:
                    fields.setdefault("ended_at", time.time())
            elif RunState(status["state"]).is_finalized:
                # Progress fields arriving after the end (a late callback) are ignored on purpose.
                return status
            status.update(fields)
            atomic_write_text(self.status_path, json.dumps(status))
            return status

    def claim(self, device: str) -> bool:
        """Take a pending run for starting, once: two schedulers (the studio's thread and a
        pipeline process) never both start it."""
        with self._locked():
            status = self.read_status()
            if status["state"] != RunState.PENDING.value or status.get("claimed"):
                return False
            if status.get("kind") == "pipeline":  # a pipeline's folder runs its own process
                return False
            status.update(claimed=True, device=device)
            atomic_write_text(self.status_path, json.dumps(status))
            return True

    def try_finalize(self, state: RunState, error: str | None = None) -> bool:
        """Move to a final state unless the run already has one; return whether it moved."""
        try:
            self.update_status(state=state, error=error)
        except RunStateError:
            return False
        return True

    # --- metrics, stop, log ------------------------------------------------------------
    def append_metrics(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, allow_nan=False, default=float) + "\n"
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()

    def tail_metrics(self) -> JsonlTail:
        return JsonlTail(self.metrics_path)

    def request_stop(self) -> None:
        self.stop_path.touch()

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def log_tail(self, max_bytes: int = 8000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                data = f.read()
        except FileNotFoundError:
            return ""
        text = data.decode("utf-8", errors="replace")
        # Progress bars redraw with \r; keep only the last state of each line.
        return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))

    def last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint. A trainer writes its state file last
        (`CHECKPOINT_MARKERS`: TRL's trainer_state.json, the studio's PPO ppo_state.json), so a
        checkpoint cut short (disk full, a kill mid-save) has none and is passed over."""
        if not self.checkpoints_dir.is_dir():
            return None
        found = [
            p
            for p in self.checkpoints_dir.iterdir()
            if p.is_dir()
            and p.name.startswith("checkpoint-")
            and p.name[11:].isdigit()
            and any((p / marker).exists() for marker in CHECKPOINT_MARKERS)
        ]
        return max(found, key=lambda p: int(p.name[11:]), default=None)


def scan_runs(runs_dir: str | os.PathLike[str]) -> tuple[list[RunDir], list[tuple[str, str]]]:
    """(runs whose status reads, newest first; (name, what is wrong) of broken ones). A folder
    with neither status.json nor config.yaml is not a run and is left out of both."""
    root = Path(runs_dir)
    if not root.is_dir():
        return [], []
    good: list[RunDir] = []
    broken: list[tuple[str, str]] = []
    for p in sorted(root.iterdir(), key=lambda p: p.name, reverse=True):
        if not p.is_dir() or p.name.startswith("."):
            continue
        run = RunDir(p)
        if run.path.parent != root.resolve():  # a link pointing out: never read through it
            broken.append((p.name, "a link pointing outside the runs folder"))
            continue
        if not run.exists():
            if run.config_path.exists():
                broken.append((p.name, "status.json is missing"))
            continue
        try:
            st = run.read_status()
            RunState(st["state"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            broken.append((p.name, f"status.json is unreadable ({type(e).__name__}: {str(e)[:120]})"))
            continue
        good.append(run)
    return good, broken


def list_runs(runs_dir: str | os.PathLike[str]) -> list[RunDir]:
    """Every run directory under `runs_dir` whose status reads, newest first (see `scan_runs`
    for the broken ones)."""
    return scan_runs(runs_dir)[0]
