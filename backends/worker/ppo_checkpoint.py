"""PPO's checkpoints (backends/worker/ppo.py): what a checkpoint holds (the policy, adapter or
full, the tokenizer, the value head, and for `--resume` the optimizer, the KL coefficient, the
step and the random state) and how a run picks them up again. `ppo_state.json` is written
last: a checkpoint without it was cut short, and --resume passes it over.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from backends.core.spec.config import ModelConfig
from backends.worker.models import load_causal_lm

if TYPE_CHECKING:
    from backends.worker.ppo import PPORunner


def save(runner: PPORunner, folder: Path, step: int, checkpoint: bool = True) -> None:
    """The policy (adapter or full), tokenizer and value head; a checkpoint also keeps the
    optimizer, the KL coefficient, the step and the random state, for `--resume`."""
    model = runner.acc.unwrap_model(runner.model)
    folder.mkdir(parents=True, exist_ok=True)
    model.lm.save_pretrained(folder)
    runner.tok.save_pretrained(folder)
    torch.save(model.value_head.state_dict(), folder / "value_head.pt")
    if checkpoint:
        torch.save(runner.opt.state_dict(), folder / "optimizer.pt")
        torch.save({"torch": torch.get_rng_state(), "python": random.getstate()}, folder / "rng.pt")
    # written last: a checkpoint without it was cut short and --resume passes it over
    (folder / "ppo_state.json").write_text(json.dumps({"step": step, "kl_coef": runner.kl.value}))


def load_weights(runner: PPORunner, ckpt: Path) -> None:
    """The policy and value head of a checkpoint, into the runner's model."""
    from safetensors.torch import load_file

    if not (ckpt / "ppo_state.json").exists():
        raise ValueError(f"`resume_from` {ckpt} is not a PPO checkpoint (no ppo_state.json)")
    if runner.cfg.lora.enabled:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(runner.model.lm, load_file(ckpt / "adapter_model.safetensors"))
    else:
        runner.model.lm.load_state_dict(
            load_causal_lm(ModelConfig(name_or_path=str(ckpt)), runner.rt.attn_implementation).state_dict()
        )
    runner.model.value_head.load_state_dict(torch.load(ckpt / "value_head.pt"))


def load_state(runner: PPORunner, ckpt: Path) -> None:
    """The optimizer, KL coefficient, step and random state of a checkpoint."""
    state = json.loads((ckpt / "ppo_state.json").read_text())
    runner.start_step, runner.kl.value = int(state["step"]), float(state["kl_coef"])
    runner.opt.load_state_dict(torch.load(ckpt / "optimizer.pt"))
    rng = torch.load(ckpt / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["torch"])
    random.setstate(rng["python"])
    print(
        f"ppo: resumed from {ckpt} at step {runner.start_step} (KL coefficient {runner.kl.value:.4g})",
        flush=True,
    )
