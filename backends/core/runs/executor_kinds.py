"""Which executor a run goes to, by `--executor` kind: `local` (this machine's queue,
backends/core/runs/executors.py) or `ray` (a Ray cluster, backends/core/runs/ray_executor.py, imported
only when asked for: Ray is an optional dependency). No torch.
"""

from __future__ import annotations

from backends.core.runs.executors import Executor, ExecutorConfig, LocalExecutor
from backends.core.runs.launcher import Launcher


def make_executor(config: ExecutorConfig | None, launcher: Launcher) -> Executor:
    """The executor `config` names, on `launcher`'s runs folder."""
    config = config or ExecutorConfig()
    if config.kind == "ray":
        from backends.core.runs.ray_executor import RayExecutor

        return RayExecutor(launcher, config)
    return LocalExecutor(launcher, config)
