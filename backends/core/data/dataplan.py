"""How a dataset will be read: its layout, found or named, and the column for each field.

`resolve_plan` is the one decision the Data tab, the preflight and the worker share: given
the columns, the first rows, `data.layout` and `data.columns`, it picks the layout (or names
the nearest one and what is missing), and `Plan.convert` turns a row into TRL's columns.
`check_rows` converts the first rows and names every problem by row and column, including a
column that is text in one row and a conversation in another. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.core.data.layouts import LAYOUTS, TRL_COLUMNS, Cells, Layout, Row, trl_format
from backends.core.data.turns import RowError, is_conversation, looks_like_transcript
from backends.core.spec.registry import FORMAT_COLUMNS


class DataFormatError(ValueError):
    """A dataset that does not fit the layout or the format a method needs; names the columns."""


@dataclass(frozen=True)
class Plan:
    layout: Layout
    fields: dict[str, str]  # layout field -> source column, for the fields present
    auto: bool  # found by detection, not named in `data.layout`
    min_score_gap: float | None = None

    def convert(self, row: Row, row_no: int) -> Row:
        """TRL columns, plus the source's other columns (reward functions read them, e.g.
        `constraints`). Raises RowError naming the row, the column and this layout."""
        try:
            out = self.layout.convert(Cells(row, self.fields, row_no))
        except RowError as e:
            raise RowError(f"{e} (layout {self.layout.name})") from None
        used = set(self.fields.values())
        extra = {k: v for k, v in row.items() if k not in used and k not in TRL_COLUMNS and k not in out}
        return {**out, **extra}

    def keep(self, row: Row) -> bool:
        """False for a pair whose scores differ by less than `data.min_score_gap`."""
        if self.min_score_gap is None or self.layout.scores is None:
            return True
        a, b = (row.get(self.fields.get(f, f)) for f in self.layout.scores)
        try:
            return abs(float(a) - float(b)) >= self.min_score_gap  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False  # an unscored pair says nothing about its gap

    def describe(self) -> str:
        """One line for people: the layout, how it was chosen, and what each column becomes."""
        how = "found from the columns" if self.auto else "named in `data.layout`"
        gap = f"; pairs with a score gap under {self.min_score_gap} dropped" if self.min_score_gap else ""
        if self.layout.name == "trl":
            fmt = (trl_format(self.fields) or "?").replace("_", " ")
            cols = [f"`{c}`" if f == c else f"`{c}` as {f}" for f, c in self.fields.items()]
            return f"TRL {fmt} ({how}): " + ", ".join(cols) + gap
        parts = [f"`{col}` -> {self.layout.reads.get(f, f)}" for f, col in self.fields.items()]
        return f"{self.layout.title} ({how}): " + "; ".join(parts) + gap


def _mapped(layout: Layout, columns: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """The layout's fields found among `columns`: the mapped column, else the same name."""
    return {f: mapping.get(f, f) for f in layout.fields if mapping.get(f, f) in columns}


def _fits(layout: Layout, fields: dict[str, str], first: Row) -> bool:
    if layout.name == "trl":
        return trl_format(fields) is not None
    if not set(layout.required) <= set(fields):
        return False
    if layout.name == "sharegpt":  # `conversations` of turns in either spelling
        return is_conversation(first.get(fields["conversations"]))
    if layout.name == "hh":
        return "prompt" not in first and looks_like_transcript(first.get(fields["chosen"]))
    if layout.name == "ifeval":  # a text prompt and nothing to train on: prompts for RL and comparisons
        return isinstance(first.get(fields["prompt"]), str) and not set(first) & (TRL_COLUMNS - {"prompt"})
    if layout.name == "ultrafeedback":  # the TRL layout reads it too; this one also knows its scores
        return all(f in fields for f in ("score_chosen", "score_rejected"))
    return True


def _nearest(columns: list[str], mapping: dict[str, str]) -> str:
    """The layout (or TRL format) with most of its required columns present, what it lacks,
    and a mapping to try: the missing fields paired with the unused columns, in order."""
    candidates = [(n, cols) for n, cols in FORMAT_COLUMNS.items()]
    candidates += [(lay.name, lay.required) for lay in LAYOUTS.values() if lay.required]
    present = set(columns) | set(mapping)

    def score(item: tuple[str, tuple[str, ...]]) -> float:
        return len(set(item[1]) & present) / len(item[1])

    name, needed = max(candidates, key=score)
    if score((name, needed)) == 0:
        name, needed = "prompt_completion", FORMAT_COLUMNS["prompt_completion"]
    missing = [c for c in needed if c not in present]
    free = [c for c in columns if c not in needed and c not in mapping.values()]
    guess = dict(zip(missing, free, strict=False))
    example = ", ".join(f"{f}: {guess.get(f, '<your column>')}" for f in missing)
    title = LAYOUTS[name].title if name in LAYOUTS else "TRL " + name.replace("_", " ")
    return (
        f"nearest layout: {title} (needs {', '.join(needed)}; missing {', '.join(missing)}); "
        f"map your columns, e.g. `data.columns: {{{example}}}`"
        + (f" with `data.layout: {name}`" if name in LAYOUTS else "")
    )


def _detect(columns: list[str], first: Row, mapping: dict[str, str]) -> tuple[Layout, dict[str, str]] | None:
    """The first layout (most specific first) whose fields the columns provide."""
    for candidate in LAYOUTS.values():
        if not set(mapping) <= set(candidate.fields):
            continue  # a mapping names the layout's fields: only layouts with those fields fit
        fields = _mapped(candidate, columns, mapping)
        sharegpt_messages = is_conversation(first.get("messages")) and "from" in first["messages"][0]
        if candidate.name == "sharegpt" and "conversations" not in fields and sharegpt_messages:
            fields = {"conversations": "messages", **fields}  # ShareGPT turns under TRL's column name
        if _fits(candidate, fields, first):
            return candidate, fields
    return None


def resolve_plan(
    columns: list[str],
    rows: list[Row],
    layout: str = "auto",
    mapping: dict[str, str] | None = None,
    min_score_gap: float | None = None,
    source: str = "the dataset",
) -> Plan:
    """The plan for reading a dataset, or DataFormatError naming the columns and the nearest layout."""
    mapping = dict(mapping or {})
    missing = [f"`data.columns.{f}` names column `{c}`" for f, c in mapping.items() if c not in columns]
    if missing:
        raise DataFormatError(f"{'; '.join(missing)}, which {source} does not have; its columns: {columns}")
    first = rows[0] if rows else {}
    if layout != "auto":
        chosen = LAYOUTS[layout]
        fields = _mapped(chosen, columns, mapping)
        if not _fits(chosen, fields, first):
            needs = (
                f"columns {list(chosen.required)}"
                if chosen.required
                else "the columns of one of TRL's formats: "
                + "; ".join(", ".join(c) for c in FORMAT_COLUMNS.values())
            )
            found = _detect(columns, first, {})
            hint = (
                f"it reads as {found[0].title}: use `data.layout: auto` (or {found[0].name})"
                if found
                else _nearest(columns, mapping)
            )
            with_map = f" with `data.columns` {mapping}" if mapping else ""
            raise DataFormatError(
                f"`data.layout` {layout}: {source} has columns {columns}, but {chosen.title} needs "
                f"{needs}{with_map}; {hint}"
            )
        plan = Plan(chosen, fields, auto=False, min_score_gap=min_score_gap)
    else:
        found = _detect(columns, first, mapping)
        if found is None:
            raise DataFormatError(
                f"{source} has columns {columns}, which fit no known layout"
                + (f" with `data.columns` {mapping}" if mapping else "")
                + f"; {_nearest(columns, mapping)}"
            )
        plan = Plan(found[0], found[1], auto=True, min_score_gap=min_score_gap)
    if min_score_gap is not None and not (
        plan.layout.scores and all(f in plan.fields for f in plan.layout.scores)
    ):
        raise DataFormatError(
            f"`data.min_score_gap` is {min_score_gap}, but {source} read as {plan.layout.title} has no "
            "score columns (shp: score_A / score_B; ultrafeedback: score_chosen / score_rejected)"
        )
    return plan


def mixed_kinds(
    later: int, later_kinds: dict[str, str], first: int, first_kinds: dict[str, str], layout: str
) -> str:
    """A row whose columns are conversations where an earlier row has text (or the reverse)."""
    cols = [c for c, k in later_kinds.items() if first_kinds.get(c, k) != k]
    kind = later_kinds[cols[0]]
    other = "text" if kind == "conversation" else "conversations"
    return (
        f"row {later} has {'conversations' if kind == 'conversation' else 'text'} in "
        f"{', '.join(f'`{c}`' for c in cols)} where row {first} has {other}: a column must be all text "
        f"or all conversations (layout {layout})"
    )


def kinds(row: Row) -> dict[str, str]:
    """`text` or `conversation` per TRL column of a converted row."""
    return {c: "conversation" if isinstance(v, list) else "text" for c, v in row.items() if c in TRL_COLUMNS}


def check_rows(plan: Plan, rows: list[Row], first_row_no: int = 1) -> tuple[list[Row], list[str]]:
    """(converted rows, problems) for `rows`, numbered from `first_row_no`. A problem names the
    row and column: a row the layout cannot read, or a column whose kind (text or conversation)
    differs from the first row's."""
    out: list[Row] = []
    problems: list[str] = []
    first: tuple[int, dict[str, str]] | None = None
    for i, row in enumerate(rows, first_row_no):
        if "__error__" in row:
            problems.append(str(row["__error__"]))
            continue
        if not plan.keep(row):
            continue
        try:
            converted = plan.convert(row, i)
        except RowError as e:
            problems.append(str(e))
            continue
        row_kinds = kinds(converted)
        if first is None:
            first = (i, row_kinds)
        elif any(first[1].get(c, k) != k for c, k in row_kinds.items()):
            problems.append(mixed_kinds(i, row_kinds, first[0], first[1], plan.layout.name))
        out.append(converted)
    return out, problems


def refuse(problems: list[str], source: str, limit: int = 5) -> None:
    if problems:
        more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
        raise DataFormatError(f"{source}: " + "; ".join(problems[:limit]) + more)
