"""StudioContext: the things every tab shares. Passed in, never a global."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from backends.core.launcher import Launcher
from backends.core.store import LabelStore


@dataclass
class StudioContext:
    runs_dir: Path
    presets_dir: Path
    launcher: Launcher
    data_dir: Path
    store: LabelStore
    extra_roots: list[Path] = field(default_factory=list)
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
    ) -> StudioContext:
        launcher = Launcher(runs_dir, max_cpu_runs=max_cpu_runs)
        data = Path(data_dir or Path(runs_dir).resolve().parent / "studio_data").resolve()
        data.mkdir(parents=True, exist_ok=True)
        ctx = cls(
            Path(runs_dir).resolve(),
            Path(presets_dir).resolve(),
            launcher,
            data,
            LabelStore(data / "labels.sqlite"),
            [Path(p).resolve() for p in allow_paths or []],
        )
        # A studio restarted mid-run finds its runs on disk: live workers keep going, runs
        # whose worker died while nobody watched are marked failed with the reason.
        for run in launcher.reconcile():
            print(f"run {run.run_id}: worker gone, marked failed", file=sys.stderr)
        return ctx

    @property
    def roots(self) -> list[Path]:
        """The folders a user may open files from (a share link exposes nothing else)."""
        return [self.data_dir, self.runs_dir, *self.extra_roots]

    def list_presets(self) -> list[str]:
        """Preset paths relative to the presets dir, e.g. `sft.yaml`, `tiny/sft.yaml`."""
        return sorted(str(p.relative_to(self.presets_dir)) for p in self.presets_dir.rglob("*.yaml"))

    def preset_path(self, name: str) -> Path:
        path = (self.presets_dir / name).resolve()
        if self.presets_dir not in path.parents:
            raise ValueError(f"preset {name!r} is outside {self.presets_dir}")
        return path

    # --- the queue runs in the studio process, one thread --------------------------------
    def tick(self) -> None:
        self.launcher.reconcile()
        self.launcher.schedule()

    def start_scheduler(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.poll_seconds):
                try:
                    self.tick()
                except OSError as e:  # a run dir removed by hand mid-scan: say so, keep serving
                    print(f"scheduler: {e}", file=sys.stderr)

        self._thread = threading.Thread(target=loop, name="run-scheduler", daemon=True)
        self._thread.start()

    def stop_scheduler(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
