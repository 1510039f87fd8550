"""Reward functions for RL runs and judges for the `sample` stage, built from `RewardSpec`s.

Every reward has TRL's reward-function signature, `f(prompts, completions, **columns) ->
list[float]`, where prompts and completions are strings or conversations, so the same
objects serve GRPO, RLOO, PPO and best-of-N sampling.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from backends.core.data.formats import text_of
from backends.core.pipelines.policy import check_config, recorded_policy
from backends.core.runs.rundir import RunDir
from backends.core.spec.config import RunConfig
from backends.core.spec.params import RewardSpec
from backends.core.tasks.tasks import score_response

RewardFn = Callable[..., list[float]]


def checker_reward(
    prompts: list[Any], completions: list[Any], constraints: list[str] | None = None, **_: Any
) -> list[float]:
    """Share of the task's constraints that the completion meets (0..1)."""
    if constraints is None:
        raise ValueError(
            "the `checkers` reward needs a `constraints` column (the embedded tasks have one); use a "
            "reward_model or function reward for other prompt sets"
        )
    return [score_response(c, text_of(m)) for c, m in zip(constraints, completions, strict=True)]


def reward_model_reward(path: str, batch_size: int = 16) -> RewardFn:
    import torch

    from backends.worker.models import load_reward_model

    model, tok = load_reward_model(path)
    # on the run's GPU when it has one (a CPU run on a GPU machine sees none: the launcher
    # hides them); scores come back as Python floats either way
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else None
    if device is not None:
        model = model.to(device)

    def reward_model(prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        texts = []
        for p, c in zip(prompts, completions, strict=True):
            if isinstance(p, list):
                conv = p + (c if isinstance(c, list) else [{"role": "assistant", "content": c}])
                texts.append(tok.apply_chat_template(conv, tokenize=False))
            else:
                texts.append(str(p) + text_of(c))
        scores: list[float] = []
        for i in range(0, len(texts), batch_size):
            enc = tok(
                texts[i : i + batch_size], return_tensors="pt", padding=True, truncation=True, max_length=1024
            )
            if device is not None:
                enc = enc.to(device)
            with torch.no_grad():
                scores += model(**enc).logits[:, 0].float().tolist()
        return scores

    return reward_model


def check_origin(cfg: RunConfig, run: RunDir) -> None:
    """A run the studio created (it recorded its policy in the run's status, or in its
    pipeline's) is checked against that policy again before anything is imported or loaded:
    only the reward functions the operator registered, only paths under the served folders,
    no command-line-only fields. Runs from the command line name any function."""
    policy = recorded_policy(run.read_status(), run.path.parent)
    if policy is not None:
        check_config(cfg, policy)


def function_reward(path: str) -> RewardFn:
    module, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"a `function` reward path must be `module:callable`, got {path!r}")
    fn = getattr(importlib.import_module(module), attr)
    if not callable(fn):
        raise ValueError(f"reward function {path!r} is not callable")
    return fn


def build_reward(spec: RewardSpec) -> RewardFn:
    if spec.kind == "checkers":
        return checker_reward
    if spec.kind == "ifeval":
        from backends.worker.ifeval import IFEvalReward

        return IFEvalReward()
    if spec.kind == "quality":
        from backends.worker.quality_reward import QualityReward

        return QualityReward()
    assert spec.path is not None
    if spec.kind == "reward_model":
        return reward_model_reward(spec.path)
    return function_reward(spec.path)


class SampleRecorder:
    """Writes a few completions per logging step, with their rewards, to samples.jsonl."""

    def __init__(self, run: RunDir, per_step: int, main_process: bool = True) -> None:
        self.run, self.per_step, self.main_process = run, per_step, main_process
        self.step = 0
        self._written: dict[tuple[int, str], int] = {}

    def wrap(self, fn: RewardFn, name: str) -> RewardFn:
        def recorded(prompts: list[Any], completions: list[Any], **kw: Any) -> list[float]:
            scores = fn(prompts, completions, **kw)
            self.record(name, prompts, completions, scores)
            return scores

        recorded.__name__ = name  # TRL names its reward metrics after the function
        return recorded

    def record(self, name: str, prompts: list[Any], completions: list[Any], scores: list[float]) -> None:
        key = (self.step, name)
        room = self.per_step - self._written.get(key, 0)
        if room <= 0 or not self.main_process:  # one writer per run (multi-process runs)
            return
        with open(self.run.samples_path, "a", encoding="utf-8") as f:
            for p, c, s in list(zip(prompts, completions, scores, strict=True))[:room]:
                text = text_of(c)
                row = {
                    "step": self.step,
                    "reward_fn": name,
                    "prompt": text_of(p),
                    "completion": text,
                    "reward": s,
                    "length": len(text.split()),
                }
                f.write(json.dumps(row) + "\n")
        self._written[key] = self._written.get(key, 0) + min(room, len(scores))


class StepForRecorder(TrainerCallback):
    """Keeps a SampleRecorder's step in line with the trainer's."""

    def __init__(self, recorder: SampleRecorder) -> None:
        self.recorder = recorder

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.recorder.step = state.global_step + 1


def reward_names(specs: list[RewardSpec]) -> list[str]:
    names = []
    for i, spec in enumerate(specs):
        base = spec.kind if spec.kind != "function" else (spec.path or "function").rsplit(":", 1)[-1]
        names.append(base if [s.kind for s in specs].count(spec.kind) == 1 else f"{base}_{i}")
    return names
