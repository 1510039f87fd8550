"""How many processes a run uses, and the `accelerate launch` command that starts them. No torch.

`launch.processes: N` runs the worker as N data-parallel processes (DDP through `accelerate
launch`, torchrun underneath; gloo on the CPU, NCCL on GPUs). `auto` picks, per method and
device, what measured faster (docs/BENCHMARKS.md): on a CPU with 2+ cores, 2 processes of
cores/2 threads each for the methods whose spec says `cpu_auto_multi` (from `CPU_AUTO_MIN_STEPS` steps);
otherwise 1 process.

With `auto` the preset's `per_device_train_batch_size` stays the global batch and is split
across the processes (so `auto` never changes what a step learns from, only how fast); with
an explicit N it is per process, as in TRL and accelerate.

Both the studio (the Train tab shows the count and the command) and the worker (which starts
the processes) call `plan_processes`, so they agree.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

from backends.core.spec import registry
from backends.core.spec.rawconfig import ConfigError

# Which methods run under several processes (the TRL trainers, DDP through accelerate) and
# where `auto` starts 2 on a multi-core CPU, each method's spec says (`multi_process`,
# `cpu_auto_multi`, backends/core/spec/registry.py). `auto` picks 2 where it measured faster
# (docs/BENCHMARKS.md, bench/processes.py on an idle 2-core machine): SFT 1.21x per step (27 %
# on a quiet Xeon, shared/FIELD_NOTES.md). DPO (1.05x) and the reward model (1.06x) gain less
# than a second process costs to start on any run of the presets' length; GRPO/RLOO generate
# token by token: they stay at 1 until a bench says otherwise.

# Below this many parameters a step takes milliseconds and a second process only adds its
# ~5 s start-up (the tiny test model); the embedded 135M model gains.
SMALL_MODEL = 20_000_000

# A second process starts in ~6 s and saves ~0.3 s per SFT step here (bench/processes.py on
# an idle 2-core machine: 1.6 vs 1.9 s/step; a 12-step run was 5 s slower in all): below this
# many steps `auto` keeps one process, which finishes first.
CPU_AUTO_MIN_STEPS = 40

RANK_ENV = "ALIGNMENT_STUDIO_RANKS"  # set in the ranks' environment: "N" processes of this run


@dataclass(frozen=True)
class ProcessPlan:
    processes: int
    threads: int  # CPU threads per process
    per_device_batch: int  # what each process trains on per step
    why: str  # said in the log and the Train tab

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_cores() -> int:
    """Cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _on_gpu(device: str, gpus: list[str]) -> bool:
    return device != "cpu" and bool(gpus)


def plan_processes(
    method: str,
    processes: int | str,
    batch: int,
    device: str = "auto",
    gpus: list[str] | None = None,
    cores: int | None = None,
    model_params: int | None = None,
    steps: int | None = None,
) -> ProcessPlan:
    """The processes a run of `method` gets on this machine (`gpus`: the GPUs given to it;
    `model_params`: the model's size and `steps`: the run's max_steps, when known)."""
    gpus = gpus or []
    cores = cores or cpu_cores()
    gpu = _on_gpu(device, gpus)
    if processes != "auto":
        n = int(processes)
        if gpu and n > len(gpus):
            # NCCL refuses two ranks on one GPU, and a rank past the last visible GPU dies
            # with "invalid device ordinal": refuse before anything starts, and say why.
            raise ConfigError(
                [
                    f"`launch.processes` is {n} but this run has {len(gpus)} GPU(s) "
                    f"({','.join(gpus)}) and each process needs a GPU of its own: set "
                    f"`launch.processes` to {len(gpus)} or `auto`, or `train.device: cpu` for CPU processes"
                ]
            )
        threads = max(1, cores // n)
        return ProcessPlan(n, threads, batch, f"launch.processes: {n}")
    spec = registry.get(method)
    if not spec.multi_process:
        return ProcessPlan(1, cores, batch, f"auto: `{method}` runs in one process")
    if gpu:
        n = len(gpus)
        if n > 1 and batch % n == 0:
            return ProcessPlan(n, max(1, cores // n), batch // n, f"auto: one process per GPU ({n})")
        return ProcessPlan(1, cores, batch, "auto: one GPU for this run")
    if not spec.cpu_auto_multi:
        return ProcessPlan(
            1, cores, batch, f"auto: 1 process (2 did not measure faster for `{method}` on a CPU)"
        )
    if cores < 2:
        return ProcessPlan(1, cores, batch, "auto: 1 process (one CPU core)")
    if model_params is not None and model_params < SMALL_MODEL:
        return ProcessPlan(
            1,
            cores,
            batch,
            f"auto: 1 process (a {model_params / 1e6:.1f}M-parameter model steps faster than a second process starts)",
        )
    if batch % 2:
        return ProcessPlan(
            1, cores, batch, f"auto: 1 process (batch {batch} does not split evenly over 2 processes)"
        )
    if steps is not None and 0 < steps < CPU_AUTO_MIN_STEPS:
        return ProcessPlan(
            1,
            cores,
            batch,
            f"auto: 1 process ({steps} steps: a second process's start-up costs more than it saves "
            f"below {CPU_AUTO_MIN_STEPS})",
        )
    return ProcessPlan(
        2,
        cores // 2,
        batch // 2,
        f"auto: 2 processes x {cores // 2} thread(s) on {cores} CPU cores (measured faster for "
        f"`{method}`), {batch // 2} row(s) each per step (global batch {batch})",
    )


def plan_for_config(cfg: Any, gpus: list[str] | None = None) -> ProcessPlan:
    """`plan_processes` for a validated run config (the model's size read from its config.json)."""
    from backends.core.spec.shapes import model_shape

    shape = model_shape(cfg.model.name_or_path)
    return plan_processes(
        cfg.method,
        cfg.launch.processes,
        cfg.train.per_device_train_batch_size,
        cfg.train.device,
        gpus,
        model_params=shape.params if shape else None,
        steps=cfg.train.max_steps,
    )


def rank_command(
    run_path: str, plan: ProcessPlan, accelerate_config: str | None, python: str = sys.executable
) -> list[str]:
    """`accelerate launch` starting `plan.processes` copies of the worker on one machine.

    `--multi_gpu` is also what starts several processes on a CPU: `--cpu` starts only one
    (accelerate 1.15, shared/FIELD_NOTES.md); the trainer's `use_cpu` then picks gloo. Port 0
    lets torchrun pick a free port, so parallel runs and tests do not collide."""
    cmd = [python, "-m", "accelerate.commands.launch"]
    if accelerate_config:
        # FSDP / DeepSpeed / multi-GPU files are passed through unchanged; the count is ours.
        cmd += ["--config_file", accelerate_config]
    else:
        cmd += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    cmd += [
        "--num_processes",
        str(plan.processes),
        "--num_cpu_threads_per_process",
        str(plan.threads),
        "--main_process_port",
        "0",
        "-m",
        "backends.worker",
        run_path,
    ]
    return cmd


def world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside a multi-process run."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return world()[0] == 0
