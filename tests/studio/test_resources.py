"""The Train form's resources line: the processes, the command that starts them, the memory
estimate, and the refusal of a run that will not fit."""

from __future__ import annotations

from pathlib import Path

from backends.core.config import load_preset
from studio.logic.resources import resources

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
