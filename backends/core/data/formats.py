"""Dataset loading and format detection, in TRL's dataset formats.

Formats (https://huggingface.co/docs/trl/dataset_formats), each standard or conversational:
language modeling (`text` / `messages`), prompt-completion, preference (`chosen`,
`rejected`, with an explicit or implicit prompt), unpaired preference (`prompt`,
`completion`, `label`) and prompt-only. `detect_format` works on plain rows, so the studio
can call it without torch; loading goes through `datasets` (Arrow, memory-mapped).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.core.data.dataplan import DataFormatError, Plan, kinds, mixed_kinds, resolve_plan
from backends.core.data.turns import RowError, is_conversation
from backends.core.spec import registry
from backends.core.spec.config import EMBEDDED_DATA, DataConfig
from backends.core.spec.registry import FORMAT_COLUMNS

_FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
ROW, KINDS = "__row__", "__kinds__"  # columns the worker adds while converting, then drops


@dataclass(frozen=True)
class DetectedFormat:
    name: str
    conversational: bool
    columns: tuple[str, ...]

    def describe(self) -> str:
        kind = "conversational" if self.conversational else "standard"
        return f"{self.name.replace('_', ' ')} ({kind}; columns {', '.join(self.columns)})"


def detect_format(columns: list[str], first_row: dict[str, Any] | None = None) -> DetectedFormat | None:
    """The first TRL format whose columns are all present (most specific first), else None."""
    present = set(columns)
    for name, needed in FORMAT_COLUMNS.items():
        if set(needed) <= present:
            key = needed[-1] if name != "unpaired_preference" else "completion"
            conv = is_conversation((first_row or {}).get(key))
            return DetectedFormat(name, conv, tuple(columns))
    return None


def text_of(message: Any) -> str:
    """The text of a completion: a plain string or the content of a conversation's last turn."""
    if isinstance(message, list):
        return str(message[-1]["content"]) if message else ""
    return str(message)


def methods_for(fmt: DetectedFormat | None) -> list[str]:
    """The methods that accept a dataset of this format (not those that read no `data.dataset`,
    such as `uncertainty`, which scores a labeling session)."""
    return [
        s.name
        for s in registry.specs()
        if fmt is not None and fmt.name in s.formats and s.uses("data.dataset")
    ]


def check_format_for_method(
    method: str, fmt: DetectedFormat | None, columns: list[str], source: str, plan: Plan | None = None
) -> None:
    needed = registry.get(method).formats
    if fmt is not None and fmt.name in needed:
        return
    wants = " or ".join(f"[{', '.join(FORMAT_COLUMNS[n])}]" for n in needed)
    found = fmt.describe() if fmt else "no known format"
    read = f" (read as {plan.layout.title})" if plan is not None and plan.layout.name != "trl" else ""
    raise DataFormatError(
        f"`data.dataset` {source} does not fit method `{method}`: found {found}{read}, columns "
        f"{columns}; `{method}` needs columns {wants}"
    )


def builtin_rows(
    method: str, split: str, n: int, seed: int, references: str = "sampled"
) -> list[dict[str, Any]]:
    """`builtin:tasks` shaped for `method`: prompt-completion for SFT, pairs for preference
    methods, unpaired rows for KTO, prompt-only (with the checkers) for RL and sampling."""
    from backends.core.tasks import taskgen

    if split not in ("train", "dev", "heldout"):
        raise DataFormatError(
            f"`data.split` for {EMBEDDED_DATA} must be train, dev (held-out topics, other tasks) or heldout, got {split!r}"
        )
    shape = registry.get(method).formats[0]  # the first format a method lists is the one it prefers
    if shape in ("preference", "implicit_preference"):
        return taskgen.pair_rows(split, n, seed, references)  # type: ignore[arg-type]
    if shape == "unpaired_preference":
        return taskgen.unpaired_rows(split, n, seed, references)  # type: ignore[arg-type]
    return taskgen.task_rows(split, n, seed, shape == "prompt_completion", references)  # type: ignore[arg-type]


def load_rows_dataset(cfg: DataConfig, method: str = "sft", number_rows: bool = False) -> Any:
    """Load `cfg.dataset` as a `datasets.Dataset` (the split named by `cfg.split`), as it is
    stored; with `number_rows` a `__row__` column numbers the rows from 1 before sampling, so
    problems found later name the row of the file."""
    import datasets

    name = cfg.dataset
    if name == EMBEDDED_DATA:
        ds = datasets.Dataset.from_list(
            builtin_rows(method, cfg.split, cfg.max_samples or 1000, cfg.seed, cfg.references)
        )
    else:
        ds = _load_source(name, cfg.split)
    if number_rows:
        ds = ds.add_column(ROW, list(range(1, len(ds) + 1)))
    if cfg.max_samples is not None and len(ds) > cfg.max_samples:
        ds = ds.shuffle(seed=cfg.seed).select(range(cfg.max_samples))
    return ds


def _load_source(name: str, split: str) -> Any:
    import datasets

    path = Path(name).expanduser()
    if path.is_dir():
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise DataFormatError(f"`data.split` {split!r} is not in {path}; splits: {list(ds)}")
            ds = ds[split]
        return ds
    if path.exists():
        builder = _FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise DataFormatError(
                f"`data.dataset` {path}: unsupported file type {path.suffix!r}; use one of {sorted(_FILE_BUILDERS)}"
            )
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    from backends.core.data.online import hub_offline

    if why := hub_offline():  # at once, not after the hub client's retries
        raise DataFormatError(
            f"`data.dataset` {name!r} is not a local file or folder, and this machine is offline ({why}); "
            "use a local jsonl/json/csv/parquet file or a folder saved by `datasets`"
        )
    try:
        return datasets.load_dataset(name, split=split)
    except (OSError, ValueError) as e:  # not found, offline (ConnectionError is an OSError)
        raise DataFormatError(
            f"`data.dataset` {name!r} is not a local file or folder, and loading it from the "
            f"hub failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); without network "
            "use a local jsonl/json/csv/parquet file or a folder saved by `datasets`"
        ) from e


def convert_dataset(ds: Any, cfg: DataConfig, source: str) -> tuple[Any, Plan]:
    """The rows in TRL's columns, read through the layout `resolve_plan` picks (the same plan
    the preflight and the Data tab use). `ds` carries the `__row__` numbers; a row the layout
    cannot read, or a column that is text in some rows and conversations in others, is refused
    naming the row."""
    columns = [c for c in ds.column_names if c != ROW]
    head = ds.select(range(min(len(ds), 50))).to_list()
    plan = resolve_plan(columns, head, cfg.layout, cfg.columns, cfg.min_score_gap, f"`data.dataset` {source}")
    if cfg.min_score_gap is not None:
        ds = ds.filter(plan.keep)
        if len(ds) == 0:
            raise DataFormatError(
                f"`data.dataset` {source}: no pair has a score gap of at least {cfg.min_score_gap} "
                "(`data.min_score_gap`)"
            )

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        out = plan.convert({k: v for k, v in row.items() if k != ROW}, row[ROW])
        return {**out, ROW: row[ROW], KINDS: json.dumps(kinds(out), sort_keys=True)}

    try:
        ds = ds.map(convert, remove_columns=ds.column_names, desc=f"reading as {plan.layout.name}")
    except RowError as e:
        raise DataFormatError(f"`data.dataset` {source}: {e}") from None
    if len(ds.unique(KINDS)) > 1:  # Arrow would store the odd rows as JSON text: refuse instead
        marks, numbers = ds[KINDS], ds[ROW]
        odd = next(i for i, m in enumerate(marks) if m != marks[0])
        problem = mixed_kinds(
            numbers[odd], json.loads(marks[odd]), numbers[0], json.loads(marks[0]), plan.layout.name
        )
        raise DataFormatError(f"`data.dataset` {source}: {problem}")
    return ds.remove_columns([ROW, KINDS]), plan


def load_converted(method: str, cfg: DataConfig) -> tuple[Any, DetectedFormat]:
    """The dataset read through its layout into TRL's columns (other columns kept, e.g.
    `constraints` or `category`), refused with a clear error if the layout or the format is
    wrong for `method`."""
    ds = load_rows_dataset(cfg, method, number_rows=True)
    if len(ds) == 0:
        raise DataFormatError(f"`data.dataset` {cfg.dataset} has no rows (split {cfg.split!r})")
    ds, plan = convert_dataset(ds, cfg, cfg.dataset)
    print(f"data: read as {plan.describe()}", flush=True)
    fmt = detect_format(ds.column_names, ds[0])
    check_format_for_method(method, fmt, ds.column_names, cfg.dataset, plan)
    assert fmt is not None
    return ds, fmt


def load_for_method(method: str, cfg: DataConfig, eval_steps: int | None) -> tuple[Any, Any | None]:
    """Train and eval datasets for `method` in TRL's columns, refused with a clear error if the
    layout or the format is wrong."""
    ds, fmt = load_converted(method, cfg)
    if not registry.get(method).keeps_columns:  # RL keeps extra columns: reward functions receive them
        keep = set(FORMAT_COLUMNS[fmt.name])
        ds = ds.remove_columns([c for c in ds.column_names if c not in keep])
    if eval_steps is None or cfg.eval_fraction == 0:
        return ds, None
    parts = ds.train_test_split(test_size=cfg.eval_fraction, seed=cfg.seed)
    return parts["train"], parts["test"]
