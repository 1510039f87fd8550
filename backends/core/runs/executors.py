"""Where runs execute: this machine (`local`) or a Ray cluster (`ray`). No torch, no Ray import
at module level: the studio and headless mode use this, and Ray is an optional extra.

An executor starts pending runs, reconciles runs whose process or job is gone, and stops runs.
Creating a run stays the launcher's (the studio's launcher checks it against the path policy),
and the run directory stays the one interface: a run started anywhere writes the same files,
so status, metrics, STOP and resume work the same whichever executor started it.

- `LocalExecutor`: today's detached processes and the launcher's queue (one CPU run at a time,
  one run per GPU).
- `RayExecutor` (backends/core/runs/ray_executor.py): each run is a Ray job running the same worker
  command with the run's resource request; Ray schedules them on the cluster.

The executor is chosen by `ExecutorConfig` (`launch.py --executor ray --ray-address ADDR`), for
the studio and headless mode alike; a pipeline records it in its status.json so that its
process starts its stages in the same place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from backends.core.runs.launcher import Launcher
from backends.core.runs.processes import cpu_cores
from backends.core.runs.rundir import RunDir
from backends.core.spec.config import RunConfig, config_from_yaml

ExecutorKind = Literal["local", "ray"]
EXECUTORS: tuple[ExecutorKind, ...] = ("local", "ray")


class ExecutorError(RuntimeError):
    """The executor cannot do what was asked (Ray missing or unreachable, storage not shared)."""


@dataclass(frozen=True)
class ExecutorConfig:
    """Where runs go; the same for the studio and headless mode."""

    kind: ExecutorKind = "local"
    # The Ray dashboard's address (the Job Submission API), e.g. http://head:8265.
    ray_address: str | None = None
    # After the STOP file, how long a run on a cluster has to save and stop by itself before
    # its job is stopped (SIGTERM, then SIGKILL after Ray's RAY_JOB_STOP_WAIT_TIME_S).
    stop_grace_s: float = 120.0
    # The Python and this repository's folder on the cluster's nodes (default: the same paths
    # as here, i.e. a shared or identical install).
    python: str | None = None
    code_dir: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ExecutorError(f"`--executor` must be one of {', '.join(EXECUTORS)}, got {self.kind!r}")
        if self.stop_grace_s < 0:
            raise ExecutorError(f"`--stop-grace` must be >= 0 seconds, got {self.stop_grace_s}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def cli_args(self) -> list[str]:
        """The launch.py flags that name this executor (none for `local`)."""
        if self.kind == "local":
            return []
        args = ["--executor", self.kind, "--ray-address", str(self.ray_address)]
        if self.stop_grace_s != ExecutorConfig.stop_grace_s:
            args += ["--stop-grace", f"{self.stop_grace_s:g}"]
        if self.python:
            args += ["--ray-python", self.python]
        if self.code_dir:
            args += ["--ray-code-dir", self.code_dir]
        return args

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ExecutorConfig:
        return cls(**(data or {}))


@dataclass(frozen=True)
class Request:
    """What a run asks of a cluster: CPUs and GPUs to reserve, and its process count."""

    cpus: int
    gpus: int
    processes: int | str  # `auto`: the worker plans its processes on the node it lands on

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        def n(count: int, one: str, many: str) -> str:
            return f"{count} {one if count == 1 else many}"

        procs = (
            "processes: auto" if self.processes == "auto" else n(int(self.processes), "process", "processes")
        )
        return f"{n(self.cpus, 'CPU', 'CPUs')}, {n(self.gpus, 'GPU', 'GPUs')}, {procs}"


def request_for(
    processes: int | str, cpus: int | None = None, gpus: int | None = None, device: str = "auto"
) -> Request:
    """A run's cluster request from its config fields (`launch.processes`, `launch.cpus`,
    `launch.gpus`, `train.device`): one CPU per process, and one GPU per process when the run
    is to use CUDA, unless the preset says otherwise. `auto` reserves for one process (the
    worker decides on the node; set a number to reserve for more)."""
    count = processes if isinstance(processes, int) else 1
    return Request(
        cpus=count if cpus is None else cpus,
        gpus=(count if device == "cuda" else 0) if gpus is None else gpus,
        processes=processes,
    )


def request_of(cfg: RunConfig) -> Request:
    return request_for(cfg.launch.processes, cfg.launch.cpus, cfg.launch.gpus, cfg.train.device)


def request_of_run(run: RunDir) -> Request:
    """The request of a run on disk (its config.yaml); one CPU when the config does not read
    (the worker then reports the broken config itself)."""
    try:
        return request_of(config_from_yaml(run.config_path.read_text(encoding="utf-8"), ""))
    except (OSError, ValueError):
        return Request(1, 0, 1)


class Executor(ABC):
    """Starts, reconciles and stops runs; the launcher creates them."""

    def __init__(self, launcher: Launcher, config: ExecutorConfig) -> None:
        self.launcher = launcher
        self.config = config

    @property
    def runs_dir(self) -> Path:
        return self.launcher.runs_dir

    def create_run(self, cfg: RunConfig, **status: Any) -> RunDir:
        return self.launcher.create_run(cfg, **status)

    def command_line(self, run: RunDir) -> str:
        return self.launcher.command_line(run)

    @abstractmethod
    def where(self) -> str:
        """Where runs go, in words: `this machine's CPU`, `Ray at http://head:8265`."""

    @abstractmethod
    def placement(self, request: Request) -> str:
        """One line for the Train tab: where a run goes and what it asks for."""

    @abstractmethod
    def schedule(self) -> list[RunDir]:
        """Start (or submit) pending runs; return those started."""

    @abstractmethod
    def reconcile(self) -> list[RunDir]:
        """Mark runs whose process or job is gone without a final state; return them."""

    @abstractmethod
    def stop(self, run: RunDir) -> str:
        """Ask a run to stop (STOP file first); return what was done, in words."""

    def kill(self, run: RunDir) -> str:
        """Stop a run now, without waiting for it to save (a second Ctrl-C)."""
        return self.stop(run)

    def check(self) -> str:
        """Make sure runs can start here; raise ExecutorError saying why not."""
        return f"runs go to {self.where()}"


class LocalExecutor(Executor):
    """Detached worker processes on this machine, through the launcher's queue."""

    def where(self) -> str:
        gpus = self.launcher.gpus
        if gpus:
            return f"this machine's GPU{'s' if len(gpus) > 1 else ''} {','.join(gpus)} (one run per GPU)"
        runs = self.launcher.max_cpu_runs
        return f"this machine's CPU ({cpu_cores()} cores, {runs} run{'s' if runs > 1 else ''} at a time)"

    def placement(self, request: Request) -> str:
        count = request.processes
        procs = "processes: auto" if count == "auto" else f"{count} process{'' if count == 1 else 'es'}"
        return f"**Runs on:** {self.where()} · **request:** {procs}"

    def schedule(self) -> list[RunDir]:
        return self.launcher.schedule()

    def reconcile(self) -> list[RunDir]:
        return self.launcher.reconcile()

    def stop(self, run: RunDir) -> str:
        return self.launcher.stop(run)
