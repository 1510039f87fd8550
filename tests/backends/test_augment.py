"""Synthetic data augmentation: dedup by embedding similarity, constraints read back from an
instruction's text, and the `sda` stage end to end on the tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backends.core.data.dedup import greedy_dedup
from backends.core.data.jsonl import read_jsonl
from backends.core.runs.rundir import list_runs
from backends.core.tasks.taskgen import generate_tasks
from backends.core.tasks.taskparse import conflicting, parse_constraints

ROOT = Path(__file__).resolve().parents[2]


def unit(angle_deg: float) -> list[float]:
    a = np.radians(angle_deg)
    return [float(np.cos(a)), float(np.sin(a))]


def test_dedup_keeps_a_diverse_set_and_drops_near_copies() -> None:
    # on the unit circle cos(angle) is the similarity: 10 degrees apart = 0.985, 60 = 0.5
    seeds = np.array([unit(0)])
    cands = np.array([unit(10), unit(60), unit(65), unit(120), unit(180), unit(0)])
    keep, sim = greedy_dedup(seeds, cands, threshold=0.9)
    # 10: too close to the seed; 60: kept; 65: too close to 60 (kept before it); 120: kept
    # (cos 60 = 0.5 to the 60-degree one); 180: kept; 0: a copy of the seed
    assert keep == [False, True, False, True, True, False]
    assert sim == pytest.approx(
        [np.cos(np.radians(10)), 0.5, np.cos(np.radians(5)), 0.5, np.cos(np.radians(60)), 1.0]
    )
    keep, _ = greedy_dedup(seeds, cands, threshold=1.0)
    assert all(keep)  # nothing is above a threshold of 1


def test_constraints_read_back_from_every_generated_prompt() -> None:
    for split in ("train", "heldout", "dev"):
        for t in generate_tasks(split, 300, seed=5):
            got = parse_constraints(t.prompt)
            assert [(c.kind, c.params) for c in got] == [(c.kind, c.params) for c in t.constraints], t.prompt
    made_up = (
        "Tell me about kites. Write everything in lowercase letters. Write everything in capital letters."
    )
    assert conflicting(parse_constraints(made_up)) == [("lowercase", "uppercase")]
    assert parse_constraints("Tell me about kites, please.") == []


def test_new_prompts_are_written_as_the_next_line_of_a_numbered_list() -> None:
    from backends.worker.augment import clean, writing_prompt

    asked = writing_prompt(["Tell me about kites.\nUse exactly 3 sentences.", "Describe rain. Be brief."])
    assert asked.endswith("1. Tell me about kites. Use exactly 3 sentences.\n2. Describe rain. Be brief.\n3.")
    # the model's continuation: its first line is the instruction, the rest (the list going on) is dropped
    assert clean(" Explain tides. Use exactly 2 sentences.\n4. Tell me about owls.") == (
        "Explain tides. Use exactly 2 sentences."
    )
    assert clean(" Hi.\n4. Something longer than twenty characters.") is None  # too short: nothing usable


def test_sda_stage_counts_add_up_and_merge_keeps_the_original(
    runs_dir: Path, tmp_path: Path, tiny_model: str
) -> None:
    preset = tmp_path / "sda.yaml"
    preset.write_text(
        """
method: sda
model: {name_or_path: builtin:tiny-llama}
data: {dataset: builtin:tasks, references: template, max_samples: 40}
train: {bf16: false}
sda:
  new_prompts: 12
  num_samples: 3
  max_new_tokens: 12
  prompt_max_new_tokens: 24
  batch_size: 6
  writer_model: builtin:tiny-llama  # a second model writes the prompts (here the same tiny one)
  judge: {kind: function, path: "tests.backends.rl_rewards:vowel_share"}
"""
    )
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir), "--preset", str(preset)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (run,) = list_runs(runs_dir)
    s = json.loads(run.summary_path.read_text())
    assert s["generated"] == 12 == s["malformed"] + s["duplicate"] + s["kept"]
    assert s["kept"] == s["pairs"] + s["no_contrast"] and len(s["similarity"]) == s["duplicate"] + s["kept"]
    original = read_jsonl(run.data_path("pairs"))
    synthetic = read_jsonl(run.data_path("synthetic"))
    assert len(synthetic) == s["pairs"] and len(original) == s["original_rows"] + s["pairs"]
    assert [r["source"] for r in original].count("original") == s["original_rows"]
    assert all(r["source"] == "synthetic" and r["chosen"] != r["rejected"] for r in synthetic)
    # every written prompt is in written.jsonl with its fate, and the fates give the counts
    fates = [r["fate"] for r in read_jsonl(run.data_path("written"))]
    assert len(fates) == 12
    assert (
        sum(f.startswith("malformed") for f in fates)
        == s["malformed"]
        == sum(s["malformed_reasons"].values())
    )
    assert sum(f.startswith("near-duplicate") for f in fates) == s["duplicate"]
    assert (
        fates.count("pair") == s["pairs"]
        and sum(f.startswith("no contrast") for f in fates) == s["no_contrast"]
    )
    # the report: the counts, and the similarity chart with its threshold (offline HTML)
    report = run.report_md_path.read_text()
    assert "| written | 12 |" in report and f"| kept | {s['kept']} |" in report
    page = run.report_html_path.read_text()
    assert "threshold 0.9" in page and "plotly" in page
    from studio.logic.runs import run_summary

    assert f"**Augmentation:** 12 written · {s['malformed']} malformed" in run_summary(run)


def test_select_ranks_copies_of_the_targets_first(runs_dir: Path, tmp_path: Path, tiny_model: str) -> None:
    from backends.core.data.formats import builtin_rows

    targets = builtin_rows("sft", "dev", 4, 0)
    pool = builtin_rows("sft", "train", 20, 0)
    candidates = pool[:8] + targets[:2] + pool[8:] + [targets[2]]
    (tmp_path / "targets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in targets))
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in candidates))
    preset = tmp_path / "select.yaml"
    preset.write_text(
        f"""
method: select
model: {{name_or_path: builtin:tiny-llama}}
data: {{dataset: {tmp_path / "pool.jsonl"}}}
train: {{bf16: false, max_length: 128}}
select: {{target_dataset: {tmp_path / "targets.jsonl"}, fraction: 0.13, aggregate: max, dim: 512}}
"""
    )
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir), "--preset", str(preset)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (run,) = list_runs(runs_dir)
    selected = read_jsonl(run.data_path("selected"))
    scored = read_jsonl(run.data_path("scored"))
    assert len(scored) == 23 and len(selected) == 3  # round(0.13 * 23)
    # a candidate that is a copy of a target has its gradient: similarity 1, the top of the ranking
    assert sorted(r["completion"][0]["content"] for r in selected) == sorted(
        t["completion"][0]["content"] for t in targets[:3]
    )
    assert all(r["influence"] == pytest.approx(1.0, abs=1e-4) for r in selected)
    s = json.loads(run.summary_path.read_text())
    assert s["targets"] == 4 and s["seconds"] > 0 and s["peak_rss_mb"] > 0


def run_pipeline(runs_dir: Path, preset: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "launch.py", "--headless", "--runs-dir", str(runs_dir), "--preset", preset]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_tiny_sda_study_prints_each_model_against_the_base_beside_the_published_numbers(
    runs_dir: Path, tiny_model: str
) -> None:
    proc = run_pipeline(runs_dir, "presets/tiny/study_sda.yaml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "each model against tiny-llama" in out or "each model against builtin:tiny-llama" in out
    lines = [line for line in out.splitlines() if line.startswith(("reward_model ", "checkers "))]
    by_stage = {line.split()[1]: line for line in lines if line.split()[1] in ("sft", "dpo", "sda_dpo")}
    assert set(by_stage) == {"sft", "dpo", "sda_dpo"}
    assert "0.627" in by_stage["sft"] and "0.656" in by_stage["sda_dpo"]
    pipe = next(r for r in list_runs(runs_dir) if r.read_status().get("kind") == "pipeline")
    md = pipe.report_md_path.read_text()
    assert "each model against" in md and "Published numbers" in md and "Bradley-Terry" in md
    stages = {s["stage"]: s for s in pipe.read_status()["stages"]}
    sda = next(r for r in list_runs(runs_dir) if r.run_id == stages["sda"]["run_id"])
    counts = json.loads(sda.summary_path.read_text())
    dpo_cfg = (runs_dir / stages["sda_dpo"]["run_id"] / "config.yaml").read_text()
    assert (
        str(sda.data_path("pairs")) in dpo_cfg
        and counts["output_rows"] == counts["original_rows"] + counts["pairs"]
    )


def test_tiny_selection_study_compares_selected_random_and_all(runs_dir: Path, tiny_model: str) -> None:
    proc = run_pipeline(runs_dir, "presets/tiny/select.yaml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    pipe = next(r for r in list_runs(runs_dir) if r.read_status().get("kind") == "pipeline")
    stages = {s["stage"]: s for s in pipe.read_status()["stages"]}
    arena = next(r for r in list_runs(runs_dir) if r.run_id == stages["arena"]["run_id"])
    wr = json.loads(arena.winrate_path.read_text())
    assert len(wr["models"]) == 4 and len(wr["bradley_terry"]["checkers"]) == 4
    selected = read_jsonl(
        next(r for r in list_runs(runs_dir) if r.run_id == stages["select"]["run_id"]).data_path("selected")
    )
    assert len(selected) == 8 and all("influence" in r for r in selected)  # 20% of 40


def test_the_checkers_judge_is_refused_before_a_run_for_prompts_without_constraints(tmp_path: Path) -> None:
    from backends.core.data.dataplan import DataFormatError
    from backends.core.data.preflight import preflight
    from backends.core.spec.config import load_preset

    rows = [
        {"prompt": f"Tell me about topic {i}.", "chosen": "A fine answer.", "rejected": "no"}
        for i in range(8)
    ]
    mine = tmp_path / "mine.jsonl"
    mine.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataFormatError) as e:
        preflight(
            load_preset(ROOT / "presets/sda.yaml", [f"data.dataset={mine}", "sda.judge={kind: checkers}"])
        )
    assert "`sda.judge` is checkers, but none of the first 8 prompts carries a constraint" in str(e.value)
    assert "kind: reward_model" in str(e.value)
    # a reward model judges any prompt; the embedded tasks' prompts carry constraints
    preflight(
        load_preset(
            ROOT / "presets/sda.yaml",
            [f"data.dataset={mine}", f"sda.judge={{kind: reward_model, path: {tmp_path}}}"],
        )
    )
    preflight(load_preset(ROOT / "presets/sda.yaml", ["sda.judge={kind: checkers}"]))
