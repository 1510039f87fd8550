""" "Train on this": what the Data tab hands the Train tab, and the form it becomes. No gradio.

The request carries the method that fits, the dataset, and how to read it (`data.layout`,
`data.columns`); the Train tab switches to a preset of that method (next to the one selected,
so tiny presets stay tiny) and names the run after the method and the dataset.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from backends.core.data.formats import methods_for
from backends.core.spec.config import EMBEDDED_DATA
from studio.logic import forms
from studio.logic.dataview import DataView


@dataclass(frozen=True)
class TrainRequest:
    method: str
    dataset: str
    layout: str = "auto"
    columns: dict[str, str] = field(default_factory=dict)
    fits: tuple[str, ...] = ()  # every method this data fits (a preset of one keeps it)

    def to_text(self) -> str:
        """JSON with a time stamp, so asking twice for the same thing is still a change."""
        return json.dumps({**self.__dict__, "fits": list(self.fits), "at": time.time()})

    @classmethod
    def from_text(cls, text: str) -> TrainRequest:
        raw = json.loads(text)
        return cls(
            raw["method"],
            raw["dataset"],
            raw.get("layout", "auto"),
            raw.get("columns") or {},
            tuple(raw.get("fits") or (raw["method"],)),
        )


def parse_mapping(text: str | None) -> dict[str, str]:
    """The Data tab's mapping box (YAML: `{prompt: question}` or one `field: column` a line)."""
    import yaml

    if not text or not text.strip():
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"the column mapping is not valid YAML: {e}") from None
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"the column mapping must map field names to column names, got {value!r}")
    return value


def mapping_text(mapping: dict[str, str]) -> str:
    """`{field: column, ...}` on one line, as the Train form shows YAML fields."""
    import yaml

    if not mapping:
        return ""
    return yaml.safe_dump(mapping, default_flow_style=True, sort_keys=False, width=10_000).strip()


def preset_method(path: Path) -> str | None:
    """The method a preset runs (None for a pipeline or a file that is not a preset)."""
    from backends.core.spec.config import ConfigError, read_preset

    try:
        raw = read_preset(path)
    except ConfigError:
        return None  # the Train tab says what is wrong with it when it is picked
    if not isinstance(raw, dict) or "stages" in raw:
        return None
    return str(raw.get("method", "sft"))


def preset_for(
    method: str, presets: list[str], current: str | None, method_of: Callable[[str], str | None]
) -> str | None:
    """A preset of `method`: `<method>.yaml` beside the selected preset, else another preset of
    that method there, else the same anywhere; None when no preset runs it."""
    folder = str(PurePosixPath(current).parent) if current else "."
    same_folder = [p for p in presets if str(PurePosixPath(p).parent) == folder]
    others = [p for p in presets if p not in same_folder]
    for group in (same_folder, others):
        exact = [p for p in group if PurePosixPath(p).stem == method and method_of(p) == method]
        fitting = exact or [p for p in group if method_of(p) == method]
        if fitting:
            return fitting[0]
    return None


def run_name(method: str, dataset: str) -> str:
    """`dpo-prefs` for runs/…/prefs.jsonl; `dpo-tasks` for builtin:tasks."""
    stem = Path(dataset).stem if not dataset.startswith("builtin:") else dataset.split(":")[1]
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:40]
    return f"{method}-{safe}" if safe else method


def request_values(req: TrainRequest, preset_raw: dict[str, Any], source: str) -> list[Any]:
    """The Train form's values: the preset with the request's method, data and run name."""
    raw = copy.deepcopy(preset_raw)
    values = {
        "method": req.method,
        "name": run_name(req.method, req.dataset),
        "data.dataset": req.dataset,
        "data.layout": req.layout,
        "data.columns": dict(req.columns),
    }
    for key, value in values.items():
        forms.put(raw, key, value)
    return forms.form_values(raw, source)


def kept_values(request: str, preset_raw: dict[str, Any], name: str) -> tuple[list[Any] | None, str]:
    """A preset chosen by hand after "Train on this": the preset's form with the data carried
    from the Data tab when the preset's method fits that data, and a note saying which happened
    (the form never drops the carried dataset without a word). (None, "") when nothing is carried."""
    if not request:
        return None, ""
    req = TrainRequest.from_text(request)
    method = preset_raw.get("method", "sft")
    if method not in req.fits:
        return None, (
            f"The dataset `{req.dataset}` from the Data tab fits {', '.join(req.fits)}, not "
            f"`{method}`: the form holds preset {name}'s own data. Choose a preset of "
            f"{' or '.join(req.fits)} to train on it."
        )
    kept = TrainRequest(method, req.dataset, req.layout, req.columns, req.fits)
    how = f" (read as {req.layout})" if req.layout != "auto" else ""
    return request_values(kept, preset_raw, f"preset {name}"), (
        f"Kept the dataset `{req.dataset}`{how} from the Data tab in preset {name}'s form; "
        "edit the dataset field to train on another."
    )


def request_for(view: DataView, dataset: str) -> TrainRequest | None:
    """What "Train on this" asks for: the method that fits, and how to read the data (the
    layout found, and the fields whose column differs from their name)."""
    fits = tuple(methods_for(view.fmt))
    if not fits:
        return None
    if view.plan is None or dataset == EMBEDDED_DATA:
        return TrainRequest(fits[0], dataset, fits=fits)
    columns = {f: c for f, c in view.plan.fields.items() if f != c}
    return TrainRequest(fits[0], dataset, view.plan.layout.name, columns, fits)
