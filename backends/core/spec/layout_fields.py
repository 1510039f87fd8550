"""The fields of each named data layout: the schema `data.columns` is checked against when a
config is read. How a row of each layout becomes TRL's columns is backends/core/data/layouts.py,
which takes each layout's fields from here. No torch."""

from __future__ import annotations

from typing import Literal

from backends.core.tasks.ifeval import COLUMNS as IFEVAL_COLUMNS

LayoutName = Literal["auto", "trl", "alpaca", "sharegpt", "dolly", "shp", "ultrafeedback", "hh", "ifeval"]

# layout -> (required fields, optional fields)
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sharegpt": (("conversations",), ("system", "chosen", "rejected")),
    "hh": (("chosen", "rejected"), ()),
    "shp": (("history", "human_ref_A", "human_ref_B", "labels"), ("score_A", "score_B")),
    "dolly": (("instruction", "response"), ("context",)),
    "alpaca": (("instruction", "output"), ("input", "system", "history")),
    "ifeval": (("prompt", *IFEVAL_COLUMNS), ()),
    "ultrafeedback": (("prompt", "chosen", "rejected"), ("score_chosen", "score_rejected")),
    "trl": ((), ("prompt", "completion", "chosen", "rejected", "label", "text", "messages")),
}
# every field of every layout: what `data.columns` may map with `layout: auto`
ALL_FIELDS: frozenset[str] = frozenset(
    f for required, optional in FIELDS.values() for f in required + optional
)


def layout_fields(layout: str) -> frozenset[str]:
    """The fields `data.columns` may map for `layout` (any layout's with `auto`)."""
    if layout == "auto":
        return ALL_FIELDS
    required, optional = FIELDS[layout]
    return frozenset(required + optional)
