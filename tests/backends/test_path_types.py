"""A path is a type: every config field that names a file, a folder, a dataset, a model or a
config is path-typed, so the one path policy sees it at every entry point. A new field that
holds a path and is a plain `str` fails here."""

from __future__ import annotations

import re
import typing

import pytest
from pydantic import BaseModel

from backends.core.access.paths import PathPolicy
from backends.core.pipelines.policy import StudioPolicy, check_config
from backends.core.spec.config import ConfigError, config_model, validate_config
from backends.core.spec.params import path_role

PATHY = re.compile(r"file|path|dataset|model|config|folder|director", re.IGNORECASE)
# str fields whose words sound like a path but that hold none, each with why
NOT_PATHS = {
    ("RunConfig", "name"): "a run name, sanitized into the run directory's name",
    ("TrainConfig", "metric_for_best_model"): "a metric's name",
    ("HarnessParams", "tasks"): "lm-evaluation-harness task names (a task folder is harness.include_path)",
}


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    todo = [root]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.append(m)
        for info in m.model_fields.values():
            stack = [info.annotation]
            while stack:
                t = stack.pop()
                if isinstance(t, type) and issubclass(t, BaseModel):
                    todo.append(t)
                stack += list(typing.get_args(t))
    return seen


def _holds_text(t: typing.Any) -> bool:
    return t is str or any(_holds_text(a) for a in typing.get_args(t))


def test_every_field_that_names_a_path_has_the_path_type() -> None:
    untyped = []
    models = _models(config_model())
    assert len(models) > 15  # every method's section and the shared specs are walked
    for m in models:
        for name, info in m.model_fields.items():
            words = " ".join(filter(None, [name, info.title, info.description]))
            if not (_holds_text(info.annotation) and PATHY.search(words)) or path_role(info):
                continue
            hints = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if hints.get("ui_form") is False or (m.__name__, name) in NOT_PATHS:
                continue  # command-line only: the web keeps the default (backends/core/pipelines/policy.py)
            untyped.append(f"{m.__name__}.{name}")
    assert untyped == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"method": "select", "select": {"target_dataset": "/etc/hostname"}},
        {"method": "reward", "reward": {"eval_dataset": "/etc/hostname"}},
        {"method": "sft", "launch": {"accelerate_config": "/etc/passwd"}},
    ],
    ids=["select.target_dataset", "reward.eval_dataset", "launch.accelerate_config"],
)
def test_the_three_fields_the_walk_found_are_under_the_policy(tmp_path, overrides) -> None:
    cfg = validate_config(overrides, "test")
    policy = StudioPolicy(PathPolicy(roots=(tmp_path,)))
    with pytest.raises(ConfigError, match="is not under the folders this studio serves"):
        check_config(cfg, policy)
