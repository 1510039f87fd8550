"""The check before a run directory exists: everything the worker would refuse, refused first.

`preflight(cfg)` reads the first rows of a local dataset without loading it (no torch, no
Arrow copy), reads them through the same plan the worker uses (`backends/core/data/dataplan.py`),
and refuses: a file that is missing or broken, a mapping that names a missing column, rows
the layout cannot read (in any of the first rows, not only the first), a column mixing text
and conversations, a format the method does not take, and a reward that needs a column the
data lacks (the `checkers` need `constraints`). Every message names the column, the row and
the layout expected.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.core.data.datacheck import DataCheckError, RowChecker, parquet_columns, peek_csv, peek_json
from backends.core.data.dataplan import DataFormatError, Plan, check_rows, refuse, resolve_plan
from backends.core.data.formats import _FILE_BUILDERS, builtin_rows, check_format_for_method, detect_format
from backends.core.data.jsonl import JsonlError, check_jsonl
from backends.core.spec import registry
from backends.core.spec.config import EMBEDDED_DATA
from backends.core.spec.params import JudgeSpec, Params, RewardSpec
from backends.core.tasks.ifeval import COLUMNS as IFEVAL_COLUMNS

if TYPE_CHECKING:
    from backends.core.spec.config import RunConfig

ROWS = 100  # rows read through the plan before a run starts
CHECKER_COLUMNS = ("constraints",)  # what the `checkers` reward and judge read from each row
COLUMNS_OF = {"checkers": CHECKER_COLUMNS, "ifeval": IFEVAL_COLUMNS}  # what each such reward / judge reads


def peek_rows(path: Path, n: int = ROWS) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and the first `n` rows of a local dataset: JSON lines (every line among the
    first 200,000 parsed, broken ones named), a JSON array, a CSV, a parquet file, a folder
    saved by `datasets`. What the worker's loader would choke on (not UTF-8, not JSON, ragged
    CSV rows, a parquet file of the wrong types, rows of two formats) is refused by row or line
    (backends/core/data/datacheck.py)."""
    suffix = path.suffix.lower()
    try:
        if path.is_dir():
            return _peek_saved(path, n)
        if suffix == ".jsonl":
            return _peek_jsonl(path, n)
        if suffix == ".csv":
            header, _ = peek_csv(path)  # ragged rows and encoding, over the whole file
            with open(path, newline="", encoding="utf-8-sig") as f:
                rows = [row for _, row in zip(range(n), csv.DictReader(f), strict=False)]
            return header, rows
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            names, type_problem = parquet_columns(path)
            problems = [p for p in map(type_problem, names) if p]
            if problems:
                raise DataCheckError("; ".join(problems))
            batch = next(pq.ParquetFile(path).iter_batches(batch_size=n), None)
            return names, batch.to_pylist() if batch is not None else []
        if suffix == ".json":
            return _peek_json(path, n)
    except DataCheckError as e:
        raise DataFormatError(f"`data.dataset` {e}") from None
    raise DataFormatError(
        f"`data.dataset` {path}: unsupported file type {path.suffix!r}; use one of {sorted(_FILE_BUILDERS)}"
    )


def _peek_jsonl(path: Path, n: int) -> tuple[list[str], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    checker = RowChecker(str(path))

    def keep(row: dict[str, Any]) -> None:
        checker(row)
        if len(rows) < n:
            rows.append(row)

    try:
        first = check_jsonl(path, limit=200_000, keep=keep)
    except JsonlError as e:
        raise DataFormatError(f"`data.dataset` {e}") from None
    checker.raise_if_any()
    if first is None:
        raise DataFormatError(f"`data.dataset` {path} has no rows")
    return list(first), rows


def _peek_json(path: Path, n: int) -> tuple[list[str], list[dict[str, Any]]]:
    """A JSON array of objects (Alpaca's files), an object of columns, or JSON lines under a
    .json name (the `datasets` json loader reads all three)."""
    if path.stat().st_size > 200_000_000:
        return [], []  # too big to parse here; the worker reads it
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataCheckError(f"{path} is not UTF-8 text (byte {e.start})") from None
    try:
        json.loads(text)
    except json.JSONDecodeError:
        if text.lstrip().startswith("{"):  # maybe JSON lines
            try:
                rows = [json.loads(line) for line in text.splitlines()[: n * 2] if line.strip()]
            except json.JSONDecodeError:
                rows = []
            if rows and all(isinstance(r, dict) for r in rows):
                return list(rows[0]), rows[:n]
    columns, _ = peek_json(path)  # names what is wrong: not JSON, not an array of objects, row types
    data = json.loads(text)
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        data = [dict(zip(data, vals, strict=False)) for vals in zip(*data.values(), strict=False)]
    elif isinstance(data, dict):
        data = [data]
    return columns, data[:n]


def _peek_saved(path: Path, n: int) -> tuple[list[str], list[dict[str, Any]]]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except FileNotFoundError as e:
        raise DataFormatError(
            f"`data.dataset` {path} is a folder but not one saved by `datasets` ({e})"
        ) from None
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    return list(ds.column_names), ds.select(range(min(n, len(ds)))).to_list()


def reward_needs(cfg: RunConfig) -> dict[str, str]:
    """Column -> the setting that needs it: every checkers reward or judge in the method's section."""
    spec = registry.get(cfg.method)
    if spec.column_needs is not None:
        return spec.column_needs(cfg)
    if spec.section is None:
        return {}
    needs: dict[str, str] = {}

    def walk(node: Any, where: str) -> None:
        if isinstance(node, RewardSpec | JudgeSpec) and node.kind in COLUMNS_OF:
            for col in COLUMNS_OF[node.kind]:
                needs.setdefault(
                    col, f"`{where}` is the {node.kind} {'judge' if 'judge' in where else 'reward'}"
                )
        elif isinstance(node, Params):
            for name in type(node).model_fields:
                walk(getattr(node, name), f"{where}.{name}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")

    walk(getattr(cfg, spec.section), spec.section)
    return needs


def preflight(cfg: RunConfig) -> Plan | None:
    """Refuse, before a run is created, a local dataset the worker would refuse for this run.
    Returns how the data will be read (None where only the worker can see it: `@stage`
    references and hub ids)."""
    data = cfg.data
    name = data.dataset
    if name.startswith("@"):
        return None  # checked when its stage starts, once the earlier stage has written it
    if name == EMBEDDED_DATA:  # cheap to make (~20 ms): a layout or mapping set for it is checked too
        rows = builtin_rows(cfg.method, data.split, ROWS, data.seed, data.references)
        columns = list(rows[0]) if rows else []
    else:
        path = Path(name).expanduser()
        if not path.exists():
            if path.suffix.lower() in _FILE_BUILDERS or name.startswith(("/", ".", "~")):
                raise DataFormatError(f"`data.dataset` {name} does not exist")
            return None  # a hub id
        columns, rows = peek_rows(path)
    if not columns:
        return None
    source = f"`data.dataset` {name}"
    plan = resolve_plan(columns, rows, data.layout, data.columns, data.min_score_gap, source)
    converted, problems = check_rows(plan, rows)
    refuse(problems, source)
    if not converted:
        raise DataFormatError(
            f"{source}: none of the first {len(rows)} rows has a score gap of at least "
            f"{data.min_score_gap} (`data.min_score_gap`)"
        )
    out_columns = list(converted[0])
    check_format_for_method(cfg.method, detect_format(out_columns, converted[0]), out_columns, name, plan)
    missing = {c: why for c, why in reward_needs(cfg).items() if c not in out_columns}
    if missing:
        raise DataFormatError(
            "; ".join(
                f"{why}, which reads a `{c}` column; {source} (read as {plan.layout.title}) has columns "
                f"{columns}: add a `{c}` column, or use a reward_model or function reward"
                for c, why in missing.items()
            )
        )
    spec = registry.get(cfg.method)
    if spec.check_rows is not None and (found := spec.check_rows(cfg, converted)):
        raise DataFormatError("; ".join(f"{source}: {p}" for p in found))
    return plan
