"""GRPO and RLOO with TRL's trainers; rewards from the checkers, a reward-model run, a
function, or a weighted mix. A few completions per step go to samples.jsonl.

On a GPU with vLLM installed, generation uses vLLM (colocated); otherwise transformers'
generate, and the log says so.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from transformers import TrainerCallback

from backends.callbacks import RunDirCallback
from backends.config import RunConfig
from backends.data import load_for_method
from backends.methods.common import peft_config, run_and_save, trainer_kwargs
from backends.models import load_causal_lm, load_tokenizer
from backends.rewards import SampleRecorder, build_reward, reward_names
from backends.rundir import RunDir, RunState
from backends.runtime import Runtime


class _StepForRecorder(TrainerCallback):
    def __init__(self, recorder: SampleRecorder) -> None:
        self.recorder = recorder

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.recorder.step = state.global_step + 1


def use_vllm(rt: Runtime) -> bool:
    if rt.device != "cuda":
        return False
    if importlib.util.find_spec("vllm") is None:
        print("generation: vLLM is not installed, using transformers generate", flush=True)
        return False
    print("generation: vLLM (colocate mode)", flush=True)
    return True


def train(cfg: RunConfig, run: RunDir, rt: Runtime) -> RunState:
    train_ds, eval_ds = load_for_method(cfg.method, cfg.data, cfg.train.eval_steps)
    tokenizer = load_tokenizer(cfg.model)
    model = load_causal_lm(cfg.model, rt.attn_implementation)
    recorder = SampleRecorder(run, cfg.rl.samples_per_log)
    names = reward_names(cfg.rl.rewards)
    funcs = [
        recorder.wrap(build_reward(spec), name) for spec, name in zip(cfg.rl.rewards, names, strict=True)
    ]
    rl = cfg.rl
    common: dict[str, Any] = dict(
        **trainer_kwargs(cfg, run, rt),
        num_generations=rl.num_generations,
        max_completion_length=rl.max_completion_length,
        temperature=rl.temperature,
        beta=rl.beta,
        reward_weights=[s.weight for s in rl.rewards],
        use_vllm=use_vllm(rt),
        vllm_mode="colocate",
    )
    if cfg.method == "grpo":
        from trl import GRPOConfig as Config
        from trl import GRPOTrainer as Trainer
    else:
        from trl import RLOOConfig as Config
        from trl import RLOOTrainer as Trainer
    args = Config(**common)
    callback = RunDirCallback(run)
    trainer = Trainer(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config(cfg),
        callbacks=[callback, _StepForRecorder(recorder)],
    )
    return run_and_save(trainer, cfg, run, callback, tokenizer)
