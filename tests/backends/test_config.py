"""Strict presets: every shipped preset loads; each kind of mistake gives its message."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.core.pipelines.pipeline import is_pipeline, load_pipeline, stage_dicts
from backends.core.spec.config import (
    ConfigError,
    RunConfig,
    config_from_yaml,
    config_to_yaml,
    load_preset,
    read_preset,
)

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted((ROOT / "presets").rglob("*.yaml"))


def test_presets_exist() -> None:
    names = {str(p.relative_to(ROOT / "presets")) for p in PRESETS}
    assert {"sft.yaml", "tiny/sft.yaml"} <= names


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: str(p.relative_to(ROOT / "presets")))
def test_every_shipped_preset_loads_and_round_trips(path: Path) -> None:
    raw = read_preset(path)
    if is_pipeline(raw):
        stages = stage_dicts(load_pipeline(path), str(path))
        assert len(stages) >= 1
        return
    cfg = load_preset(path)
    assert isinstance(cfg, RunConfig)
    assert config_from_yaml(config_to_yaml(cfg), "round trip") == cfg


def test_every_method_and_classic_pipeline_has_a_preset_and_a_tiny_twin() -> None:
    from backends.core.spec import registry

    names = {p.stem for p in PRESETS if p.parent.name == "presets"}
    tiny = {p.stem for p in PRESETS if p.parent.name == "tiny"}
    expected = set(registry.names()) | {"ipo", "instructgpt", "sft_dpo", "grpo_r1"}
    assert expected <= names and expected <= tiny


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


def problems(path: Path, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_preset(path, overrides)
    return e.value.problems


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    p = write(tmp_path, "method: sft\ntrain:\n  learning_rat: 0.1\n")
    (msg,) = problems(p)
    assert "`train.learning_rat` is not a known key" in msg and str(p) in msg


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "method: sft\ntrain:\n  learning_rate: -0.1\n  per_device_train_batch_size: two\nlora:\n  r: 0\n",
    )
    found = problems(p)
    assert len(found) == 3
    text = "\n".join(found)
    assert "`train.learning_rate`: Input should be greater than 0, got -0.1" in text
    assert "`train.per_device_train_batch_size`" in text and "'two'" in text
    assert "`lora.r`" in text


def test_wrong_method_and_wrong_section_type(tmp_path: Path) -> None:
    p = write(tmp_path, "method: magic\ntrain: 3\n")
    text = "\n".join(problems(p))
    assert "`method`" in text and "'magic'" in text
    assert "`train`" in text


def test_cross_field_check(tmp_path: Path) -> None:
    p = write(tmp_path, "data:\n  eval_fraction: 0\ntrain:\n  eval_steps: 5\n")
    (msg,) = problems(p)
    assert "`train.eval_steps`" in msg and "`data.eval_fraction` is 0" in msg


def test_bad_yaml_and_non_mapping(tmp_path: Path) -> None:
    assert "is not valid YAML" in problems(write(tmp_path, "train: [unclosed\n"))[0]
    assert "must be a mapping" in problems(write(tmp_path, "- a\n- b\n"))[0]
    assert "does not exist" in problems(tmp_path / "missing.yaml")[0]


def test_yaml_scientific_notation_without_dot_is_accepted(tmp_path: Path) -> None:
    # PyYAML reads `2e-4` as a string; it must still become the float a user meant.
    cfg = load_preset(write(tmp_path, "train:\n  learning_rate: 2e-4\n"))
    assert cfg.train.learning_rate == pytest.approx(2e-4)


def test_overrides(tmp_path: Path) -> None:
    p = write(tmp_path, "train:\n  max_steps: 10\n")
    cfg = load_preset(p, ["train.max_steps=3", "lora.enabled=false", "model.name_or_path=/x/y"])
    assert cfg.train.max_steps == 3 and cfg.lora.enabled is False and cfg.model.name_or_path == "/x/y"
    assert "with --set" in problems(p, ["train.nope=1"])[0]
    assert "must look like key.sub=value" in problems(p, ["justakey"])[0]
    assert "is not a section" in problems(p, ["train.max_steps.x=1"])[0]


def test_pipeline_references_are_checked(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
name: p
stages:
  - {stage: sft, method: sft}
  - {stage: rm, method: reward, data: {dataset: "@sft.pairs"}}
  - {stage: ppo, method: ppo, model: {name_or_path: "@later"}, train: {learning_rate: -1}}
  - {stage: later, method: sft}
""",
    )
    with pytest.raises(ConfigError) as e:
        load_pipeline(p)
    text = "\n".join(e.value.problems)
    assert "`@sft.pairs`: stage `sft` (sft) writes no datasets, only a model" in text
    assert "`@later` does not name an earlier stage" in text
    assert "stages[2] (ppo)" in text and "learning_rate" in text


def test_grpo_batch_must_hold_whole_groups(tmp_path: Path) -> None:
    p = write(tmp_path, "method: grpo\nrl:\n  num_generations: 4\ntrain:\n  per_device_train_batch_size: 6\n")
    (msg,) = problems(p)
    assert "multiple of `rl.num_generations` (4)" in msg


def test_cluster_gpus_for_a_cpu_run_are_refused_naming_both_fields() -> None:
    with pytest.raises(ConfigError, match=r"`launch.gpus` is 1 but `train.device` is cpu"):
        load_preset(ROOT / "presets/tiny/sft.yaml", ["launch.gpus=1", "train.device=cpu"])
    cfg = load_preset(ROOT / "presets/tiny/sft.yaml", ["launch.cpus=4", "launch.gpus=0"])
    assert (cfg.launch.cpus, cfg.launch.gpus) == (4, 0)
