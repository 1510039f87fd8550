"""A method that lives outside backends/methods/, loaded through $ALIGNMENT_STUDIO_METHODS:
the whole of what adding a method takes (tests/backends/test_plugin_method.py). It trains as
SFT does (sharing the `sft` section) and declares what the control plane asks of a method:
several processes, two sequences a row and a reference copy for the memory estimate, a report
section of its own."""

from __future__ import annotations

from typing import Any

from backends.core.spec.registry import LANGUAGE, MethodSpec
from backends.methods.sft import SFTParams
from backends.methods.sft import train as sft_train


def report(run: Any, label: str) -> list[Any]:
    from backends.core.reports.report import Section

    lines = run.metrics_path.read_text().splitlines() if run.metrics_path.exists() else []
    return [Section(f"{label}: what the plugin says", text=[f"plugin report: {len(lines)} metric lines"])]


METHOD = MethodSpec(
    name="plugsft",
    help="SFT from a plugin module (a test).",
    run=sft_train,
    formats=LANGUAGE,
    section="sft",
    params=SFTParams,
    charts=("loss",),
    multi_process=True,
    sequences_per_row=2,
    reference_model=lambda cfg: True,
    report=report,
    order=998,
)
