"""A plain TRL 1.16 script for the bench's SFT / DPO job: no studio code on the training path.

    python bench/plain_trl.py sft|dpo DATA.jsonl MODEL_DIR OUT_DIR STEPS

Prints one JSON line per logged step (`{"step", "loss", "time"}`) to OUT_DIR/log.jsonl.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def main() -> int:
    job, data, model_dir, out, steps = sys.argv[1:6]
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    log = Path(out) / "log.jsonl"

    class Log(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                with open(log, "a") as f:
                    f.write(
                        json.dumps({"step": state.global_step, "loss": logs["loss"], "time": time.time()})
                        + "\n"
                    )

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa")
    ds = load_dataset("json", data_files=data, split="train")
    common = dict(
        output_dir=out,
        max_steps=int(steps),
        per_device_train_batch_size=4 if job == "sft" else 2,
        learning_rate=1e-4 if job == "sft" else 5e-5,
        lr_scheduler_type="cosine",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=True,
        activation_checkpointing=True,
        max_length=256,
        disable_tqdm=True,
        seed=42,
    )
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    if job == "sft":
        trainer: Any = SFTTrainer(
            model=model,
            args=SFTConfig(**common, completion_only_loss=True),
            train_dataset=ds,
            processing_class=tok,
            peft_config=lora,
            callbacks=[Log()],
        )
    else:
        trainer = DPOTrainer(
            model=model,
            args=DPOConfig(**common, beta=0.1, loss_type=["sigmoid"]),
            train_dataset=ds,
            processing_class=tok,
            peft_config=lora,
            callbacks=[Log()],
        )
    trainer.train()
    trainer.save_model(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
