"""PPO for language models (InstructGPT's third stage), written here on torch + transformers +
peft + accelerate because TRL removed its PPOTrainer in 1.13 (huggingface/trl#7020).

One update = one rollout batch: sample a response per prompt, score it with the frozen
reward (checkers, a reward-model run, a function, or a weighted mix), turn the score into
per-token rewards with a KL penalty to the reference (the policy with its LoRA adapter
disabled, or a frozen copy for full fine-tuning), estimate advantages with GAE from a
value head on the policy's last hidden state, whiten them, then run `rl.ppo_epochs`
epochs of clipped policy and value updates over `rl.num_mini_batches` minibatches.
The arithmetic (and the value head) is in ppo_math.py and unit-tested there.
"""

from __future__ import annotations

import copy
import random
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backends.core.data.formats import load_for_method
from backends.core.runs.rundir import RunState
from backends.worker import ppo_checkpoint, rollouts
from backends.worker import ppo_math as pm
from backends.worker.context import RunContext
from backends.worker.models import load_policy, load_tokenizer
from backends.worker.rewards import SampleRecorder, build_reward, reward_names
from backends.worker.trainers import peft_config


class PPORunner:
    def __init__(self, ctx: RunContext) -> None:
        from accelerate import Accelerator

        cfg, run, rt = ctx.cfg, ctx.run, ctx.runtime
        self.cfg, self.run, self.rt, self.rl, self.progress = cfg, run, rt, cfg.rl, ctx.progress
        torch.manual_seed(cfg.train.seed)
        random.seed(cfg.train.seed)
        trackers = list(cfg.train.report_to)
        self.acc = Accelerator(
            cpu=rt.device == "cpu",
            mixed_precision="bf16" if rt.bf16 else "no",
            log_with=trackers or None,
            project_dir=str(run.path / "tensorboard"),
        )
        if trackers:
            self.acc.init_trackers("ppo")
        self.tok = load_tokenizer(cfg.model)
        self.tok.padding_side = "left"
        lm = load_policy(cfg.model, rt.attn_implementation)
        self.ref: nn.Module | None = None
        if cfg.lora.enabled:
            from peft import get_peft_model

            lm = get_peft_model(lm, peft_config(cfg))
        elif self.rl.beta > 0:
            self.ref = copy.deepcopy(lm).eval().requires_grad_(False)
        self.model = pm.PolicyWithValue(lm)
        self.kl = pm.AdaptiveKLController(self.rl.beta, self.rl.target_kl)
        self.start_step = 0
        resume = Path(cfg.resume_from) if cfg.resume_from else None
        if resume is not None:  # weights before the optimizer is built; its state after
            ppo_checkpoint.load_weights(self, resume)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=cfg.train.learning_rate, weight_decay=cfg.train.weight_decay)
        self.model, self.opt = self.acc.prepare(self.model, self.opt)
        if resume is not None:
            ppo_checkpoint.load_state(self, resume)
        if rollouts.wanted(rt, self.rl.rollouts):
            rollouts.install(self.acc.unwrap_model(self.model).lm)
        self.names = reward_names(self.rl.rewards)
        self.rewards = [build_reward(s) for s in self.rl.rewards]
        self.recorder = SampleRecorder(run, self.rl.samples_per_log, ctx.main_process)
        ds, _ = load_for_method("ppo", cfg.data, None)
        self.rows = list(ds)

    # --- rollout -----------------------------------------------------------------------
    def _batches(self):
        bs = self.cfg.train.per_device_train_batch_size
        while True:
            order = list(range(len(self.rows)))
            random.shuffle(order)
            for i in range(0, len(order) - bs + 1, bs):
                yield [self.rows[j] for j in order[i : i + bs]]

    def _score(self, rows: list[dict[str, Any]], texts: list[str]) -> tuple[torch.Tensor, dict[str, float]]:
        prompts = [r["prompt"] for r in rows]
        completions = [
            [{"role": "assistant", "content": t}] if isinstance(p, list) else t
            for p, t in zip(prompts, texts, strict=True)
        ]
        extra = {k: [r[k] for r in rows] for k in rows[0] if k != "prompt"}
        total = torch.zeros(len(rows))
        means = {}
        for spec, name, fn in zip(self.rl.rewards, self.names, self.rewards, strict=True):
            scores = fn(prompts, completions, **extra)
            self.recorder.record(name, prompts, completions, scores)
            total += spec.weight * torch.tensor(scores, dtype=torch.float32)
            means[f"rewards/{name}/mean"] = float(sum(scores) / len(scores))
        return total, means

    def _forward_ref(self, ids: torch.Tensor, attn: torch.Tensor, p_len: int) -> torch.Tensor:
        pos = (attn.long().cumsum(-1) - 1).clamp(min=0)
        if self.ref is not None:
            logits = self.ref(input_ids=ids, attention_mask=attn, position_ids=pos).logits
        else:
            lm = self.acc.unwrap_model(self.model).lm
            with lm.disable_adapter():
                logits = lm(input_ids=ids, attention_mask=attn, position_ids=pos).logits
        return pm.response_logprobs(logits, ids, p_len)

    @torch.no_grad()
    def rollout(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        model = self.acc.unwrap_model(self.model)
        model.eval()
        texts = [
            self.tok.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True)
            if isinstance(r["prompt"], list)
            else r["prompt"]
            for r in rows
        ]
        enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.acc.device)
        p_len = enc["input_ids"].shape[1]
        with self.acc.autocast():
            seq = model.lm.generate(
                **enc,
                do_sample=True,
                temperature=self.rl.temperature,
                top_k=0,
                top_p=1.0,
                max_new_tokens=self.rl.max_completion_length,
                pad_token_id=self.tok.pad_token_id,
                eos_token_id=self.tok.eos_token_id,
            )
        resp = seq[:, p_len:]
        mask = pm.response_mask(resp, self.tok.eos_token_id, self.tok.pad_token_id)
        attn = torch.cat([enc["attention_mask"], mask.long()], 1)
        decoded = self.tok.batch_decode(
            resp * mask.long() + self.tok.pad_token_id * (1 - mask.long()), skip_special_tokens=True
        )
        scores, means = self._score(rows, decoded)
        with self.acc.autocast():
            logits, values = model(seq, attn)
            ref_lp = self._forward_ref(seq, attn, p_len) if self.rl.beta > 0 else None
        logprobs = pm.response_logprobs(logits, seq, p_len)
        values = values[:, p_len - 1 : -1].float()
        ref_lp = logprobs if ref_lp is None else ref_lp
        rewards, kl = pm.per_token_rewards(scores.to(logprobs.device), logprobs, ref_lp, mask, self.kl.value)
        adv, returns = pm.gae(rewards, values, mask, self.rl.gamma, self.rl.lam)
        if self.rl.whiten_advantages:
            adv = pm.masked_whiten(adv, mask)
        return dict(
            seq=seq,
            attn=attn,
            p_len=p_len,
            mask=mask,
            logprobs=logprobs,
            values=values,
            adv=adv,
            returns=returns,
            scores=scores,
            kl=kl,
            means=means,
        )

    # --- optimisation ------------------------------------------------------------------
    def update(self, b: dict[str, Any]) -> dict[str, float]:
        self.model.train()
        n = b["seq"].shape[0]
        mb = max(1, n // self.rl.num_mini_batches)
        stats: dict[str, list[float]] = {}
        for _ in range(self.rl.ppo_epochs):
            perm = torch.randperm(n)
            for i in range(0, n, mb):
                idx = perm[i : i + mb]
                mask = b["mask"][idx]
                with self.acc.autocast():
                    logits, vpred = self.model(b["seq"][idx], b["attn"][idx])
                p = b["p_len"]
                lp = pm.response_logprobs(logits, b["seq"][idx], p)
                vpred = vpred[:, p - 1 : -1].float()
                pg, clipfrac, approx_kl = pm.policy_loss(
                    lp, b["logprobs"][idx], b["adv"][idx], mask, self.rl.cliprange
                )
                vf, vf_clipfrac = pm.value_loss(
                    vpred, b["values"][idx], b["returns"][idx], mask, self.rl.cliprange_value
                )
                ent = pm.masked_mean(pm.entropy_from_logits(logits[:, p - 1 : -1]), mask)
                loss = pg + self.rl.vf_coef * vf - self.rl.entropy_coef * ent
                self.acc.backward(loss)
                grad_norm = self.acc.clip_grad_norm_(self.model.parameters(), self.cfg.train.max_grad_norm)
                self.opt.step()
                self.opt.zero_grad()
                for k, v in (
                    ("loss/policy", pg),
                    ("loss/value", vf),
                    ("clipfrac", clipfrac),
                    ("approx_kl", approx_kl),
                    ("value_clipfrac", vf_clipfrac),
                    ("entropy", ent),
                    ("grad_norm", grad_norm),
                ):
                    stats.setdefault(k, []).append(float(v.detach()) if torch.is_tensor(v) else float(v))
        return {k: sum(v) / len(v) for k, v in stats.items()}

    # --- the loop ----------------------------------------------------------------------
    def train(self) -> RunState:
        t = self.cfg.train
        total = (
            t.max_steps
            if t.max_steps > 0
            else max(1, int(len(self.rows) * t.num_train_epochs) // t.per_device_train_batch_size)
        )
        self.progress.begin("training", total, first=self.start_step)
        print(
            f"ppo: {total} updates of {t.per_device_train_batch_size} rollouts, reference = "
            f"{'adapter disabled' if self.cfg.lora.enabled else 'frozen copy'}",
            flush=True,
        )
        batches = self._batches()
        for step in range(self.start_step + 1, total + 1):
            self.recorder.step = step
            t0 = time.time()
            b = self.rollout(next(batches))
            stats = self.update(b)
            kl_seq = float(b["kl"].sum(1).mean())
            if self.rl.adaptive_kl:
                self.kl.update(kl_seq, t.per_device_train_batch_size)
            row: dict[str, Any] | None = None
            if step % t.logging_steps == 0 or step == total:
                row = {
                    "reward": float(b["scores"].mean()),
                    "reward_std": float(b["scores"].std()) if len(b["scores"]) > 1 else 0.0,
                    "kl": kl_seq,
                    "kl_coef": self.kl.value,
                    "response_length": float(b["mask"].sum(1).mean()),
                    "returns": float(pm.masked_mean(b["returns"], b["mask"])),
                    "seconds_per_step": time.time() - t0,
                    "learning_rate": t.learning_rate,
                    **b["means"],
                    **stats,
                }
                if self.cfg.train.report_to:
                    self.acc.log({k: v for k, v in row.items() if isinstance(v, int | float)}, step=step)
            self.progress.step(step, row)
            if self.progress.should_stop():
                print(f"STOP file found at step {step}: saving and stopping", flush=True)
                ppo_checkpoint.save(self, self.run.checkpoints_dir / f"checkpoint-{step}", step)
                ppo_checkpoint.save(self, self.run.model_dir, step, checkpoint=False)
                return RunState.STOPPED
            if step % t.save_steps == 0 and step < total:
                ppo_checkpoint.save(self, self.run.checkpoints_dir / f"checkpoint-{step}", step)
        self.progress.phase("saving")
        ppo_checkpoint.save(self, self.run.model_dir, total, checkpoint=False)
        if self.cfg.train.report_to:
            self.acc.end_training()
        return RunState.SUCCEEDED
