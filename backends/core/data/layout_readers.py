"""How one row of each named layout becomes TRL's columns (backends/core/data/layouts.py names the
layouts and their fields): Alpaca, Dolly, ShareGPT, SHP, HH, IFEval, and TRL's own formats
normalized. Each reader takes the row's cells (`Cells`: the user's columns through
`data.columns`) and returns the converted row or raises RowError naming the field. No torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from backends.core.data.turns import (
    RowError,
    parse_transcript,
    read_text,
    read_turns,
    split_prompt,
    strip_prompt,
)
from backends.core.spec.registry import FORMAT_COLUMNS
from backends.core.tasks.ifeval import read_instructions

Row = dict[str, Any]
TRL_COLUMNS = frozenset(c for cols in FORMAT_COLUMNS.values() for c in cols)


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


class Cells:
    """One source row seen through a layout's field -> column mapping."""

    def __init__(self, row: Row, fields: dict[str, str], row_no: int) -> None:
        self.row, self.fields, self.row_no = row, fields, row_no

    def has(self, field: str) -> bool:
        return field in self.fields and self.row.get(self.fields[field]) not in (None, "")

    def where(self, field: str) -> str:
        return f"row {self.row_no} `{self.fields.get(field, field)}`"

    def raw(self, field: str) -> Any:
        """A required field's value; empty text passes (the Data tab counts it), a missing one not."""
        value = self.row.get(self.fields[field]) if field in self.fields else None
        if value is None:
            raise RowError(f"{self.where(field)} is missing")
        return value

    def text(self, field: str) -> str:
        return read_text(self.raw(field), self.where(field))

    def side(self, field: str) -> str | list[dict[str, str]]:
        """Text, or a conversation in any spelling read as `{role, content}` turns."""
        value = self.raw(field)
        return read_turns(value, self.where(field)) if isinstance(value, list) else self.text(field)


def _system(c: Cells) -> list[dict[str, str]]:
    return [{"role": "system", "content": c.text("system")}] if c.has("system") else []


def _history(c: Cells) -> list[dict[str, str]]:
    """Alpaca's `history`: earlier [user, assistant] pairs."""
    if not c.has("history"):
        return []
    turns = []
    for i, pair in enumerate(c.raw("history")):
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise RowError(f"{c.where('history')} item {i} is {pair!r}, expected [user text, assistant text]")
        turns += _user(pair[0]) + _assistant(pair[1])
    return turns


def alpaca(c: Cells) -> Row:
    user = c.text("instruction")
    if c.has("input"):
        user += "\n" + c.text("input")  # LLaMA-Factory's join
    prompt = _system(c) + _history(c) + _user(user)
    return {"prompt": prompt, "completion": _assistant(c.text("output"))}


def dolly(c: Cells) -> Row:
    user = c.text("instruction") + ("\n\n" + c.text("context") if c.has("context") else "")
    return {"prompt": _user(user), "completion": _assistant(c.text("response"))}


def sharegpt(c: Cells) -> Row:
    turns = read_turns(c.raw("conversations"), c.where("conversations"))
    if turns[0]["role"] != "system":
        turns = _system(c) + turns
    if not (c.has("chosen") or c.has("rejected")):
        return {"messages": turns}
    # LLaMA-Factory's ShareGPT preference rows: the prompt turns, then one chosen and one rejected turn
    pair = []
    for field in ("chosen", "rejected"):
        value = c.raw(field)
        pair.append(read_turns(value if isinstance(value, list) else [value], c.where(field)))
    return {"prompt": turns, "chosen": pair[0], "rejected": pair[1]}


def _label(c: Cells, field: str) -> bool:
    value = c.raw(field)
    if isinstance(value, str) and value.strip().lower() in ("1", "0", "true", "false"):
        return value.strip().lower() in ("1", "true")
    if isinstance(value, bool | int) and value in (0, 1):
        return bool(value)
    raise RowError(f"{c.where(field)} is {value!r}, expected 1 / 0 (or true / false)")


def shp(c: Cells) -> Row:
    a, b = c.text("human_ref_A"), c.text("human_ref_B")
    a_wins = _label(c, "labels")  # SHP: 1 when A is preferred
    chosen, rejected = (a, b) if a_wins else (b, a)
    return {
        "prompt": _user(c.text("history")),
        "chosen": _assistant(chosen),
        "rejected": _assistant(rejected),
    }


def hh(c: Cells) -> Row:
    chosen = parse_transcript(c.raw("chosen"), c.where("chosen"))
    rejected = parse_transcript(c.raw("rejected"), c.where("rejected"))
    prompt, chosen, rejected = split_prompt(chosen, rejected, f"row {c.row_no}")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def ifeval(c: Cells) -> Row:
    """IFEval's rows: a text prompt and its verifiable instructions (`kwargs` kept as JSON
    text, so rows with different instructions share one column type)."""
    try:
        ids, kwargs = read_instructions(c.raw("instruction_id_list"), c.raw("kwargs"), f"row {c.row_no}")
    except ValueError as e:
        raise RowError(str(e)) from None
    return {"prompt": _user(c.text("prompt")), "instruction_id_list": ids, "kwargs": json.dumps(kwargs)}


def _as_conversation(value: str | list[dict[str, str]], wrap: Callable[[str], list]) -> list:
    return value if isinstance(value, list) else wrap(value)


def preference(c: Cells) -> Row:
    chosen, rejected = c.side("chosen"), c.side("rejected")
    prompt = c.side("prompt") if c.has("prompt") else None
    if not any(isinstance(v, list) for v in (prompt, chosen, rejected)):
        return {"chosen": chosen, "rejected": rejected, **({} if prompt is None else {"prompt": prompt})}
    chosen, rejected = _as_conversation(chosen, _assistant), _as_conversation(rejected, _assistant)
    if prompt is not None:
        turns = _as_conversation(prompt, _user)
        stripped = strip_prompt(turns, chosen), strip_prompt(turns, rejected)
        if stripped[0] is not None and stripped[1] is not None:  # UltraFeedback: chosen repeats the prompt
            return {"prompt": turns, "chosen": stripped[0], "rejected": stripped[1]}
        if chosen[0]["role"] == "assistant" and rejected[0]["role"] == "assistant":
            return {"prompt": turns, "chosen": chosen, "rejected": rejected}
    prompt, chosen, rejected = split_prompt(chosen, rejected, f"row {c.row_no}")  # an implicit prompt
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _prompt_completion(c: Cells) -> Row:
    prompt, completion = c.side("prompt"), c.side("completion")
    if isinstance(prompt, list) or isinstance(completion, list):
        prompt, completion = _as_conversation(prompt, _user), _as_conversation(completion, _assistant)
        completion = strip_prompt(prompt, completion) or completion
    return {"prompt": prompt, "completion": completion}


def trl_format(fields: dict[str, str]) -> str | None:
    """The first TRL format (most specific first) whose columns the mapping provides."""
    return next((n for n, cols in FORMAT_COLUMNS.items() if set(cols) <= set(fields)), None)


def trl(c: Cells) -> Row:
    fmt = trl_format(c.fields)
    if fmt in ("preference", "implicit_preference"):
        return preference(c)
    if fmt == "unpaired_preference":
        return {**_prompt_completion(c), "label": _label(c, "label")}
    if fmt == "prompt_completion":
        return _prompt_completion(c)
    if fmt == "conversational_language_modeling":
        return {"messages": read_turns(c.raw("messages"), c.where("messages"))}
    if fmt == "language_modeling":
        return {"text": c.text("text")}
    return {"prompt": c.side("prompt")}
