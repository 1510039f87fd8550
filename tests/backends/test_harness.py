"""`method: harness`: lm-evaluation-harness on local tasks, as a run and as a pipeline stage;
offline, a task whose data is not on the machine is refused before any model loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from backends.core.runs.rundir import RunDir
from tests.conftest import ROOT

TASK = ROOT / "backends/core/tasks/harness/studio_basics.jsonl"


def headless(runs: Path, preset: Path, *sets: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs), "--preset", str(preset)]
    cmd += [x for s in sets for x in ("--set", s)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def accuracy_by_hand(model_dir: str, n: int) -> float:
    """The task's accuracy computed here: the choice with the highest log-likelihood after the
    question (lm-evaluation-harness's `acc` for multiple_choice: " " + choice as continuation)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    rows = [json.loads(line) for line in TASK.read_text().splitlines()[:n]]
    right = 0
    for r in rows:
        ctx = f"Question: {r['question']}\nAnswer:"
        scores = []
        for choice in r["choices"]:
            c_ids = tok(ctx, add_special_tokens=False)["input_ids"]
            w_ids = tok(ctx + " " + choice, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = model(torch.tensor([w_ids])).logits[0, :-1].log_softmax(-1)
            cont = range(len(c_ids), len(w_ids))
            scores.append(sum(float(logp[i - 1, w_ids[i]]) for i in cont))
        right += int(max(range(len(scores)), key=scores.__getitem__) == r["answer"])
    return right / len(rows)


def test_a_harness_stage_after_training_compares_base_and_trained_in_the_report(
    runs_dir: Path, tiny_model: str, tmp_path: Path
) -> None:
    own = tmp_path / "my_tasks"  # a task folder of one's own: the same questions under another name
    own.mkdir()
    task = yaml.safe_load((TASK.parent / "studio_basics.yaml").read_text())
    task.update(task="my_basics", dataset_kwargs={"data_files": {"test": str(TASK)}})
    (own / "my_basics.yaml").write_text(yaml.safe_dump(task))
    preset = tmp_path / "sft_harness.yaml"
    preset.write_text(
        yaml.safe_dump(
            {
                "name": "tiny-sft-harness",
                "defaults": {"model": {"name_or_path": "builtin:tiny-llama"}, "train": {"bf16": False}},
                "stages": [
                    {
                        "stage": "sft",
                        "method": "sft",
                        "lora": {"enabled": False},
                        "data": {
                            "dataset": "builtin:tasks",
                            "references": "template",
                            "max_samples": 64,
                            "eval_fraction": 0.0,
                        },
                        "train": {
                            "learning_rate": 5e-3,
                            "max_steps": 8,
                            "per_device_train_batch_size": 4,
                            "max_length": 128,
                            "save_steps": 8,
                            "activation_checkpointing": False,
                        },
                    },
                    {
                        "stage": "bench",
                        "method": "harness",
                        "harness": {
                            "tasks": ["studio_basics", "my_basics"],
                            "include_path": str(own),
                            "models": ["builtin:tiny-llama", "@sft"],
                            "limit": 8,
                            "batch_size": 4,
                        },
                    },
                ],
            }
        )
    )
    proc = headless(runs_dir, preset)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (bench,) = [p for p in runs_dir.iterdir() if "tiny-sft-harness-bench" in p.name]
    data = json.loads((bench / "harness.json").read_text())
    base, trained = data["models"]
    assert base == "builtin:tiny-llama" and trained.endswith("/model")
    acc = data["models"][base]["studio_basics"]["acc"]
    assert acc["value"] == accuracy_by_hand(tiny_model, 8)  # the library scored the model we named
    assert 0 < acc["stderr"] < 0.5
    assert data["models"][trained]["studio_basics"]["acc"]["stderr"] is not None
    assert data["models"][base]["my_basics"]["acc"] == acc  # include_path's task: same data, same score
    # the pipeline's report has the side-by-side table, one column per model
    (pdir,) = [p for p in runs_dir.iterdir() if "pipeline" in p.name]
    report = RunDir(pdir).report_md_path.read_text()
    assert "bench: benchmark" in report and "| studio_basics | acc |" in report
    assert f"{acc['value']:.3f} ± {acc['stderr']:.3f}" in report


def test_a_task_whose_data_is_not_on_the_machine_is_refused_before_a_model_loads(
    runs_dir: Path, tiny_model: str
) -> None:
    proc = headless(runs_dir, ROOT / "presets/tiny/harness.yaml", "harness.tasks=[arc_easy]")
    assert proc.returncode != 0
    (run,) = [RunDir(p) for p in runs_dir.iterdir()]
    error = run.read_status()["error"]
    assert "arc_easy" in error and "allenai/ai2_arc" in error and "load_dataset" in error, error
    assert "harness: tiny-llama" not in run.log_path.read_text()  # no model was loaded
