"""StudioContext: the things every tab shares. Passed in, never a global."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.core.access.accounts import Accounts, Role
from backends.core.access.paths import PathPolicy, PathRefused
from backends.core.labels.store import LabelStore
from backends.core.pipelines.policy import RewardFunctions, StudioPolicy, check_config
from backends.core.runs.executor_kinds import make_executor
from backends.core.runs.executors import Executor, ExecutorConfig, ExecutorError
from backends.core.runs.genservers import ServerPool, servers_dir
from backends.core.runs.launcher import REPO_ROOT, Launcher
from backends.core.runs.rundir import RunDir
from backends.core.spec.config import RunConfig
from backends.core.spec.places import cache_dir


class StudioLauncher(Launcher):
    """The studio's launcher: every run it creates comes from the web, so its config is
    checked against the studio's policy first (paths under the served folders, registered
    reward functions only, no command-line-only fields), and the policy is recorded in the
    run's status for the worker to check again."""

    def __init__(self, runs_dir: str | Path, policy: StudioPolicy, max_cpu_runs: int = 1) -> None:
        super().__init__(runs_dir, max_cpu_runs=max_cpu_runs)
        self.policy = policy

    def create_run(self, cfg: RunConfig, **status: Any) -> RunDir:
        cfg = check_config(cfg, self.policy)
        return super().create_run(cfg, policy=self.policy.as_dict(), **status)


@dataclass
class StudioContext:
    runs_dir: Path
    presets_dir: Path
    launcher: StudioLauncher
    data_dir: Path
    store: LabelStore
    extra_roots: list[Path] = field(default_factory=list)
    accounts: Accounts | None = None  # None: no login, everyone is an operator
    # where runs start, are watched and stopped (executors.py): this machine's queue unless
    # given; creating a run is the launcher's job, running it the executor's
    executor: Executor = None  # type: ignore[assignment]  # filled in __post_init__
    # the Chat tab's generation servers, one process per model (the studio loads no model);
    # by default the machine's folder (the cache's servers/), where warm runs keep theirs too
    servers: ServerPool = None  # type: ignore[assignment]  # filled in __post_init__
    poll_seconds: float = 1.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def create(
        cls,
        runs_dir: str | Path,
        presets_dir: str | Path,
        data_dir: str | Path | None = None,
        max_cpu_runs: int = 1,
        allow_paths: list[str] | None = None,
        reward_functions: RewardFunctions | None = None,
        accounts: Accounts | None = None,
        executor: ExecutorConfig | None = None,
        servers_folder: str | Path | None = None,
    ) -> StudioContext:
        data = Path(data_dir or Path(runs_dir).resolve().parent / "studio_data").resolve()
        data.mkdir(parents=True, exist_ok=True)
        runs = Path(runs_dir).resolve()
        extra = [Path(p).resolve() for p in allow_paths or []]
        paths = PathPolicy(
            roots=(data, runs, *extra),
            model_roots=((cache_dir() / "models").resolve(),),
            bases=tuple(dict.fromkeys((REPO_ROOT, Path.cwd().resolve()))),
        )
        policy = StudioPolicy(paths, reward_functions or RewardFunctions())
        launcher = StudioLauncher(runs, policy, max_cpu_runs=max_cpu_runs)
        ctx = cls(
            runs,
            Path(presets_dir).resolve(),
            launcher,
            data,
            LabelStore(data / "labels.sqlite"),
            extra,
            accounts,
            make_executor(executor, launcher),
            servers=ServerPool(Path(servers_folder)) if servers_folder else None,
        )
        # A studio restarted mid-run finds its runs on disk: live workers (and cluster jobs)
        # keep going, runs whose worker died while nobody watched are marked failed with the reason.
        for run in ctx.executor.reconcile():
            print(f"run {run.run_id}: worker gone, marked failed", file=sys.stderr)
        return ctx

    def __post_init__(self) -> None:
        if self.executor is None:
            self.executor = make_executor(None, self.launcher)
        if self.servers is None:
            self.servers = ServerPool(servers_dir())

    @property
    def roots(self) -> list[Path]:
        """The folders a user may open files from (a share link exposes nothing else)."""
        return [self.data_dir, self.runs_dir, *self.extra_roots]

    @property
    def policy(self) -> StudioPolicy:
        return self.launcher.policy

    @property
    def paths(self) -> PathPolicy:
        """The one path policy: every path a person types goes through it."""
        return self.launcher.policy.paths

    def role_of(self, username: str | None) -> Role:
        """Everyone is an operator without accounts; with them, an unknown or missing name is
        a labeler (the least a logged-in person can do)."""
        if self.accounts is None:
            return "operator"
        return self.accounts.role(username) or "labeler"

    def list_presets(self) -> list[str]:
        """Preset paths relative to the presets dir, e.g. `sft.yaml`, `tiny/sft.yaml`."""
        return sorted(str(p.relative_to(self.presets_dir)) for p in self.presets_dir.rglob("*.yaml"))

    def preset_path(self, name: str) -> Path:
        """A preset by its name under the presets dir (the API can send anything)."""
        if not isinstance(name, str):
            raise PathRefused(f"a preset is named by a string, got {type(name).__name__} {name!r}")
        path = (self.presets_dir / name).resolve()
        if self.presets_dir not in path.parents:
            raise PathRefused(f"preset {name!r} is outside {self.presets_dir}")
        return path

    # --- the queue runs in the studio process, one thread --------------------------------
    def tick(self) -> None:
        self.executor.reconcile()
        self.executor.schedule()

    def start_scheduler(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.poll_seconds):
                try:
                    self.tick()
                    if self.accounts is not None:
                        self.accounts.accounts()  # re-reads a changed users file: ends changed users' sessions
                except (OSError, ValueError, ExecutorError) as e:
                    # a run dir removed or broken by hand, a cluster out of reach: say so, keep serving
                    print(f"scheduler: {e}", file=sys.stderr)

        self._thread = threading.Thread(target=loop, name="run-scheduler", daemon=True)
        self._thread.start()

    def stop_scheduler(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
