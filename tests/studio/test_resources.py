"""The Train form's resources line: the processes, the command that starts them, the memory
estimate, and the refusal of a run that will not fit; where a run goes and what it asks for."""

from __future__ import annotations

from pathlib import Path

from backends.core.runs.executor_kinds import make_executor
from backends.core.runs.executors import ExecutorConfig
from backends.core.runs.launcher import Launcher
from backends.core.spec.config import load_preset, read_preset
from studio.logic import forms
from studio.logic.resources import form_request, placement, resources

ROOT = Path(__file__).resolve().parents[2]


def test_the_embedded_sft_shows_two_processes_their_command_and_a_fitting_estimate() -> None:
    md, too_big = resources(load_preset(ROOT / "presets/sft.yaml", ["launch.processes=2"]))
    assert md.startswith("**Processes:** 2 (launch.processes: 2)")
    assert "accelerate.commands.launch --multi_gpu" in md and "--num_processes 2" in md
    assert "**Memory:** ~" in md and "x 2 processes" in md
    assert not too_big


def test_a_run_that_cannot_fit_is_flagged() -> None:
    # ~0.9 TB of activations: more than any machine this runs on has free
    md, too_big = resources(
        load_preset(
            ROOT / "presets/sft.yaml",
            ["train.per_device_train_batch_size=4096", "train.max_length=8192", "launch.processes=1"],
        )
    )
    assert too_big and "**will not fit**" in md
    assert "accelerate" not in md  # one process: no launcher command


def test_more_processes_than_gpus_are_refused_on_the_form_but_not_for_a_cluster() -> None:
    two = load_preset(ROOT / "presets/tiny/sft.yaml", ["launch.processes=2"])
    md, refused = resources(two, ["0"])
    assert refused and md.startswith("**Processes:** refused: `launch.processes` is 2 but this run has 1 GPU")
    md, refused = resources(two, ["0"], elsewhere="Ray at http://head:8265")
    assert not refused and md.startswith("**Processes:** 2 (launch.processes: 2)")


def test_on_a_cluster_the_local_estimate_informs_and_never_refuses() -> None:
    huge = ["train.per_device_train_batch_size=4096", "train.max_length=8192", "launch.processes=1"]
    md, too_big = resources(load_preset(ROOT / "presets/sft.yaml", huge), elsewhere="Ray at http://head:8265")
    assert not too_big and "**will not fit**" in md and "whose node may differ" in md


def test_the_form_says_where_a_run_goes_and_what_it_asks_for(tmp_path: Path) -> None:
    values = dict(zip(forms.keys(), forms.form_values(read_preset(ROOT / "presets/sft.yaml")), strict=True))
    local = make_executor(None, Launcher(tmp_path, gpus=[]))
    assert placement(local, values).startswith("**Runs on:** this machine's CPU")
    ray = make_executor(ExecutorConfig("ray", "head:8265"), Launcher(tmp_path, gpus=[]))
    line = "**Runs on:** Ray at http://head:8265 · **request:** "
    assert placement(ray, values) == line + "1 CPU, 0 GPUs, processes: auto"
    values.update({"launch.processes": "2", "train.device": "cuda"})
    assert placement(ray, values) == line + "2 CPUs, 2 GPUs, 2 processes"
    values.update({"launch.cpus": 8, "launch.gpus": 1})
    assert placement(ray, values) == line + "8 CPUs, 1 GPU, 2 processes"
    values["launch.processes"] = "two"  # the form's errors name it; the line says where only
    assert form_request(values) is None and placement(ray, values) == "**Runs on:** Ray at http://head:8265"


def test_the_train_tab_on_ray_shows_the_placement_and_the_headless_flags(tmp_path: Path) -> None:
    from studio.app import build_app
    from studio.context import StudioContext

    config = ExecutorConfig("ray", "head:8265")  # never contacted: nothing is submitted here
    ctx = StudioContext.create(tmp_path / "runs", ROOT / "presets", tmp_path / "data", executor=config)
    blocks = build_app(ctx, "tiny/sft.yaml").blocks.values()
    shown = {b.elem_id: getattr(b, "value", None) for b in blocks if b.elem_id}
    assert shown["run-placement"].startswith("**Runs on:** Ray at http://head:8265 · **request:** 1 CPU")
    assert shown["headless-command"].endswith("--executor ray --ray-address head:8265")
