"""Dataset loading and format detection, in TRL's dataset formats.

Formats (https://huggingface.co/docs/trl/dataset_formats), each standard or conversational:
language modeling (`text` / `messages`), prompt-completion, preference (`chosen`,
`rejected`, with an explicit or implicit prompt), unpaired preference (`prompt`,
`completion`, `label`) and prompt-only. `detect_format` works on plain rows, so the studio
can call it without torch; loading goes through `datasets` (Arrow, memory-mapped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.core import registry
from backends.core.config import EMBEDDED_DATA, DataConfig
from backends.core.datacheck import DataCheckError, RowChecker, parquet_columns, peek_csv, peek_json
from backends.core.jsonl import JsonlError, check_jsonl
from backends.core.registry import FORMAT_COLUMNS

_FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


class DataFormatError(ValueError):
    """A dataset that does not fit the format a method needs; names the columns."""


@dataclass(frozen=True)
class DetectedFormat:
    name: str
    conversational: bool
    columns: tuple[str, ...]

    def describe(self) -> str:
        kind = "conversational" if self.conversational else "standard"
        return f"{self.name.replace('_', ' ')} ({kind}; columns {', '.join(self.columns)})"


def _is_conversation(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
    )


def detect_format(columns: list[str], first_row: dict[str, Any] | None = None) -> DetectedFormat | None:
    """The first TRL format whose columns are all present (most specific first), else None."""
    present = set(columns)
    for name, needed in FORMAT_COLUMNS.items():
        if set(needed) <= present:
            key = needed[-1] if name != "unpaired_preference" else "completion"
            conv = _is_conversation((first_row or {}).get(key))
            return DetectedFormat(name, conv, tuple(columns))
    return None


def text_of(message: Any) -> str:
    """The text of a completion: a plain string or the content of a conversation's last turn."""
    if isinstance(message, list):
        return str(message[-1]["content"]) if message else ""
    return str(message)


def methods_for(fmt: DetectedFormat | None) -> list[str]:
    """The methods that accept a dataset of this format."""
    return [s.name for s in registry.specs() if fmt is not None and fmt.name in s.formats]


def check_format_for_method(method: str, fmt: DetectedFormat | None, columns: list[str], source: str) -> None:
    needed = registry.get(method).formats
    if fmt is not None and fmt.name in needed:
        return
    wants = " or ".join(f"[{', '.join(FORMAT_COLUMNS[n])}]" for n in needed)
    found = fmt.describe() if fmt else "no known format"
    raise DataFormatError(
        f"`data.dataset` {source} does not fit method `{method}`: found {found}, columns "
        f"{columns}; `{method}` needs columns {wants}"
    )


def builtin_rows(method: str, split: str, n: int, seed: int) -> list[dict[str, Any]]:
    """`builtin:tasks` shaped for `method`: prompt-completion for SFT, pairs for preference
    methods, unpaired rows for KTO, prompt-only (with the checkers) for RL and sampling."""
    from backends.core import taskgen

    if split not in ("train", "heldout"):
        raise DataFormatError(f"`data.split` for {EMBEDDED_DATA} must be train or heldout, got {split!r}")
    shape = registry.get(method).formats[0]  # the first format a method lists is the one it prefers
    if shape in ("preference", "implicit_preference"):
        return taskgen.pair_rows(split, n, seed)  # type: ignore[arg-type]
    if shape == "unpaired_preference":
        return taskgen.unpaired_rows(split, n, seed)  # type: ignore[arg-type]
    return taskgen.task_rows(split, n, seed, with_completion=shape == "prompt_completion")  # type: ignore[arg-type]


def load_rows_dataset(cfg: DataConfig, method: str = "sft") -> Any:
    """Load `cfg.dataset` as a `datasets.Dataset` (the split named by `cfg.split`)."""
    import datasets

    name = cfg.dataset
    if name == EMBEDDED_DATA:
        return datasets.Dataset.from_list(builtin_rows(method, cfg.split, cfg.max_samples or 1000, cfg.seed))
    path = Path(name).expanduser()
    if path.is_dir():
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            if cfg.split not in ds:
                raise DataFormatError(f"`data.split` {cfg.split!r} is not in {path}; splits: {list(ds)}")
            ds = ds[cfg.split]
    elif path.exists():
        builder = _FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise DataFormatError(
                f"`data.dataset` {path}: unsupported file type {path.suffix!r}; use one of {sorted(_FILE_BUILDERS)}"
            )
        ds = datasets.load_dataset(builder, data_files=str(path), split="train")
    else:
        try:
            ds = datasets.load_dataset(name, split=cfg.split)
        except (OSError, ValueError) as e:  # not found, offline (ConnectionError is an OSError)
            raise DataFormatError(
                f"`data.dataset` {name!r} is not a local file or folder, and loading it from the "
                f"hub failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); without network "
                "use a local jsonl/json/csv/parquet file or a folder saved by `datasets`"
            ) from e
    if cfg.max_samples is not None and len(ds) > cfg.max_samples:
        ds = ds.shuffle(seed=cfg.seed).select(range(cfg.max_samples))
    return ds


def load_for_method(method: str, cfg: DataConfig, eval_steps: int | None) -> tuple[Any, Any | None]:
    """Train and eval datasets for `method`, refused with a clear error if the format is wrong."""
    ds = load_rows_dataset(cfg, method)
    if len(ds) == 0:
        raise DataFormatError(f"`data.dataset` {cfg.dataset} has no rows (split {cfg.split!r})")
    fmt = detect_format(ds.column_names, ds[0])
    check_format_for_method(method, fmt, ds.column_names, cfg.dataset)
    assert fmt is not None
    if not registry.get(method).keeps_columns:  # RL keeps extra columns: reward functions receive them
        keep = set(FORMAT_COLUMNS[fmt.name])
        ds = ds.remove_columns([c for c in ds.column_names if c not in keep])
    if eval_steps is None or cfg.eval_fraction == 0:
        return ds, None
    parts = ds.train_test_split(test_size=cfg.eval_fraction, seed=cfg.seed)
    return parts["train"], parts["test"]


def peek(path: Path) -> tuple[list[str], dict[str, Any] | None]:
    """Column names and first row of a local dataset without loading it (no torch, no Arrow
    copy): the first JSON line, a CSV header, a parquet schema, a saved dataset's info."""
    import json

    suffix = path.suffix.lower()
    if path.is_dir():
        for info in (path / "dataset_info.json", *path.glob("*/dataset_info.json")):
            if info.exists():
                return list(json.loads(info.read_text()).get("features", {})), None
        return [], None
    if suffix == ".jsonl":
        return _peek_jsonl(path)
    if suffix == ".csv":
        return peek_csv(path)
    if suffix == ".parquet":
        names, type_problem = parquet_columns(path)
        problems = [p for p in map(type_problem, names) if p]
        if problems:
            raise DataCheckError("; ".join(problems))
        return names, None
    if suffix == ".json":
        return peek_json(path)
    raise DataFormatError(
        f"`data.dataset` {path}: unsupported file type {path.suffix!r}; use one of {sorted(_FILE_BUILDERS)}"
    )


def _peek_jsonl(path: Path, max_lines: int = 200_000) -> tuple[list[str], dict[str, Any] | None]:
    """First row of a JSON-lines file; malformed lines among the first `max_lines` rows are
    reported by number (up to 5), so a broken file is refused before a run starts."""
    rows = RowChecker(str(path))
    try:
        first = check_jsonl(path, limit=max_lines, keep=rows)
        rows.raise_if_any()
    except (JsonlError, DataCheckError) as e:
        raise DataFormatError(f"`data.dataset` {e}") from None
    if first is None:
        raise DataFormatError(f"`data.dataset` {path} has no rows")
    return list(first), first


def preflight(method: str, cfg: DataConfig) -> None:
    """Refuse, before a run is created, a local dataset that is missing or does not fit `method`.
    Builtin data, hub ids and `@stage` references are checked by the worker instead."""
    name = cfg.dataset
    if name == EMBEDDED_DATA or name.startswith("@"):
        return
    path = Path(name).expanduser()
    if not path.exists():
        if path.suffix.lower() in _FILE_BUILDERS or name.startswith(("/", ".", "~")):
            raise DataFormatError(f"`data.dataset` {name} does not exist")
        return  # a hub id
    try:
        columns, row = peek(path)
    except DataCheckError as e:
        raise DataFormatError(f"`data.dataset` {e}") from None
    if columns:
        check_format_for_method(method, detect_format(columns, row), columns, str(path))
