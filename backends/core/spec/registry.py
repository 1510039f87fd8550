"""The method registry: every method (sft, dpo, grpo, ppo, sample, eval, ...) described once.

A method is one module in `backends/methods/` that defines `METHOD = MethodSpec(...)`. The
spec says everything the rest of the studio needs: the preset section holding its settings
(a `Params` model), the dataset formats it accepts, the Monitor's first charts, whether it
can resume, which common fields it ignores (the Train form hides them), extra checks, and
the function the worker calls. Importing a method module must not import torch: heavy
imports live inside its `run` function, which only the worker process calls.

Modules named in $ALIGNMENT_STUDIO_METHODS (comma-separated) are loaded too, so a method
can live outside this repository; the worker inherits the variable from whoever starts it.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
import pkgutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from backends.core.spec.params import Params

if TYPE_CHECKING:
    from backends.core.spec.config import RunConfig

PLUGINS_ENV = "ALIGNMENT_STUDIO_METHODS"

# TRL's dataset formats (https://huggingface.co/docs/trl/dataset_formats), most specific first.
FORMAT_COLUMNS: dict[str, tuple[str, ...]] = {
    "unpaired_preference": ("prompt", "completion", "label"),
    "preference": ("prompt", "chosen", "rejected"),
    "implicit_preference": ("chosen", "rejected"),
    "prompt_completion": ("prompt", "completion"),
    "language_modeling": ("text",),
    "conversational_language_modeling": ("messages",),
    "prompt_only": ("prompt",),
}
PREFERENCE = ("preference", "implicit_preference")
PROMPTS = ("prompt_only", "prompt_completion")  # generating methods read the prompt only
LANGUAGE = ("prompt_completion", "language_modeling", "conversational_language_modeling")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    help: str  # one line, shown under the method picker
    run: Callable[..., Any]  # run(ctx: backends.worker.context.RunContext) -> RunState; in the worker only
    formats: tuple[str, ...]  # dataset formats it accepts; the first decides builtin:tasks' shape
    section: str | None = None  # the preset section of its settings, e.g. "dpo"
    params: type[Params] | None = None  # that section's model; methods may share a section
    charts: tuple[str, ...] = ("loss",)  # what the Monitor opens its runs on
    resumable: bool = True  # `--resume` continues it from a checkpoint
    keeps_columns: bool = False  # extra dataset columns reach it (reward functions read them)
    outputs: tuple[str, ...] = ()  # datasets it writes to data/<name>.jsonl (`@stage.<name>` in a pipeline)
    ignores: tuple[str, ...] = ()  # common fields it does not read (glob patterns), hidden in the form
    keeps: tuple[str, ...] = ()  # exceptions to `ignores`
    check: Callable[[RunConfig], list[str]] | None = None  # cross-field problems, as messages
    # dataset columns its settings need (column -> the setting); None: every checkers reward or
    # judge in its section needs the embedded tasks' `constraints` column (backends/core/data/preflight.py)
    column_needs: Callable[[RunConfig], dict[str, str]] | None = None
    # problems its settings find in the first rows of a local dataset, as read for it (preflight:
    # every entry point refuses them before a run exists)
    check_rows: Callable[[RunConfig, list[dict[str, Any]]], list[str]] | None = None
    # most of its time goes to generating text token by token (sampling, RL rollouts, judging):
    # the CPU attention `auto` picks is the one that generates fastest (backends/worker/runtime.py)
    generates: bool = False
    # it updates weights: gradients, optimizer states and activations count in its memory
    # estimate (backends/core/runs/memory.py); sampling, judging and scoring stages do not
    trains: bool = True
    # --- what the control plane asks of it (no code outside backends/methods/ reads its name)
    # its worker runs under several data-parallel processes (accelerate launch); and whether
    # `launch.processes: auto` starts two on a multi-core CPU, where that measured faster
    # (backends/core/runs/processes.py)
    multi_process: bool = False
    cpu_auto_multi: bool = False
    # for the memory estimate (backends/core/runs/memory.py): sequences a batch row becomes (2: a
    # chosen and a rejected answer); whether a separate frozen reference copy is loaded when the
    # run is not LoRA (LoRA's reference is the adapter switched off); how its logits are held
    # ("full": batch x tokens x vocab, "chunked": a fused LM head, "none": a scalar head)
    sequences_per_row: int = 1
    reference_model: Callable[[RunConfig], bool] | None = None
    logits: Literal["full", "chunked", "none"] = "full"
    # what a finished run adds to a report (backends/core/reports/report.py): sections after its curves,
    # and whether the curves of its metrics are shown at all
    report: Callable[[Any, str], list[Any]] | None = None  # (RunDir, label) -> [Section]
    report_curves: bool = True
    # a finished run's model/ scores answers (a reward model): it can order a labeling queue
    scores_answers: bool = False
    order: int = 100  # position in the method picker

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMAT_COLUMNS]
        if not self.formats or unknown:
            raise ValueError(
                f"method `{self.name}`: `formats` must name some of {list(FORMAT_COLUMNS)}, got {unknown}"
            )
        if (self.section is None) != (self.params is None):
            raise ValueError(f"method `{self.name}`: give both `section` and `params`, or neither")

    def uses(self, key: str) -> bool:
        """Whether a common field (dotted key, e.g. `train.warmup_steps`) matters to this method."""
        ignored = any(fnmatch.fnmatchcase(key, p) for p in self.ignores)
        return not ignored or any(fnmatch.fnmatchcase(key, p) for p in self.keeps)


@dataclass
class _Registry:
    specs: dict[str, MethodSpec] = field(default_factory=dict)
    loaded: bool = False
    version: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)


_REG = _Registry()


def register(spec: MethodSpec) -> MethodSpec:
    """Add (or replace) a method. Methods sharing a section must share its params model."""
    with _REG.lock:
        for other in _REG.specs.values():
            if other.name != spec.name and spec.section and other.section == spec.section:
                if other.params is not spec.params:
                    raise ValueError(
                        f"method `{spec.name}` declares section `{spec.section}` with {spec.params}, "
                        f"but `{other.name}` uses it with {other.params}"
                    )
        _REG.specs[spec.name] = spec
        _REG.version += 1
    return spec


def reset() -> None:
    """Forget every method; the next lookup loads them again (a forked worker with another
    $ALIGNMENT_STUDIO_METHODS than the fork server's)."""
    with _REG.lock:
        _REG.specs.clear()
        _REG.loaded = False
        _REG.version += 1


def unregister(name: str) -> None:
    with _REG.lock:
        _REG.specs.pop(name, None)
        _REG.version += 1


def _load_module(name: str) -> None:
    module = importlib.import_module(name)
    spec = getattr(module, "METHOD", None)
    if not isinstance(spec, MethodSpec):
        raise ValueError(f"method module `{name}` must define `METHOD = MethodSpec(...)`")
    register(spec)


def _ensure_loaded() -> None:
    if _REG.loaded:
        return
    with _REG.lock:
        if _REG.loaded:
            return
        import backends.methods as pkg

        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                _load_module(f"{pkg.__name__}.{info.name}")
        for name in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
            _load_module(name)
        _REG.loaded = True


def specs() -> list[MethodSpec]:
    """Every registered method, in picker order."""
    _ensure_loaded()
    return sorted(_REG.specs.values(), key=lambda s: (s.order, s.name))


def names() -> tuple[str, ...]:
    return tuple(s.name for s in specs())


def get(name: str) -> MethodSpec:
    _ensure_loaded()
    if name not in _REG.specs:
        raise KeyError(f"`method` {name!r} is not a known method; known: {', '.join(names())}")
    return _REG.specs[name]


def find(name: str) -> MethodSpec | None:
    """The method's spec, or None for a name that is not a method (a pipeline, an unreadable run)."""
    _ensure_loaded()
    return _REG.specs.get(name)


def sections() -> dict[str, type[Params]]:
    """Preset section name -> its params model, over all methods (first declaration wins)."""
    out: dict[str, type[Params]] = {}
    for s in specs():
        if s.section and s.params and s.section not in out:
            out[s.section] = s.params
    return out


def embedded_shapes() -> list[str]:
    """One method per shape the embedded tasks take (`builtin:tasks:<method>`): the first
    method, in picker order, of each distinct first format."""
    seen: dict[str, str] = {}
    for s in specs():
        if s.uses("data.dataset"):
            seen.setdefault(s.formats[0], s.name)
    return list(seen.values())


def setting(method: str, key: str) -> bool:
    """Whether `method` reads the dotted setting `key` of its own section, e.g. `reward.weighting`."""
    spec = get(method)
    section, _, name = key.partition(".")
    return spec.section == section and spec.params is not None and name in spec.params.model_fields


def version() -> int:
    """Changes whenever a method is added or removed (caches keyed on it rebuild)."""
    _ensure_loaded()
    return _REG.version
