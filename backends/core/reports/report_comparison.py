"""The report's sections for a comparison (an eval run's winrate.json): the verdict first, then
each judge's scores and the paired differences with their intervals, the quality signals,
IFEval's verifiers, and the tallies. Rendered by backends/core/reports/report.py; torch-free.
"""

from __future__ import annotations

import json
from typing import Any

from backends.core.reports.comparison import short
from backends.core.reports.report import Section, interval, num, write_report
from backends.core.reports.verdicts import headline, ifeval_table, quality_table, verdict_line
from backends.core.runs.rundir import RunDir


def comparison_sections(wr: dict[str, Any], title: str = "Comparison") -> list[Section]:
    import plotly.graph_objects as go

    ps, sampling = wr["prompt_set"], wr["sampling"]
    head = Section(title)
    head.text.append(
        f"{wr['prompts_done']} prompts of `{ps['dataset']}` ({ps['split']}), {sampling.get('samples_per_prompt', 1)} "
        f"answer(s) per prompt and model, temperature {sampling['temperature']}, {sampling['max_new_tokens']} new "
        f"tokens at most, generated with {sampling['engine']}. Models: "
        + ", ".join(f"`{short(m)}`" for m in wr["models"])
        + f". Intervals: {wr['ci_method']}."
    )
    out = [head]
    if verdicts := headline(wr):
        head.text += [f"**{line}**" for line in verdicts]
    if wr.get("quality"):
        qs = Section("Answer quality")
        qs.text.append(
            "Signals of the answers themselves, per model (95% interval); after the first model, the paired "
            f"difference to `{short(wr['models'][0])}`, marked worse where it is worse at 95%."
        )
        qs.tables.append(quality_table(wr))
        out.append(qs)
    if wr.get("ifeval"):
        headers, rows, note = ifeval_table(wr)
        sec = Section("IFEval's verifiers")
        sec.tables.append((headers, rows))
        if note:
            sec.text.append(note[0].upper() + note[1:] + ".")
        out.append(sec)
    for judge, by_model in wr.get("scores", {}).items():
        sec = Section(f"Scores by {judge}")
        sec.tables.append(
            (
                ["model", "mean score", "95% interval", "prompts"],
                [[short(m), num(s["mean"]), interval(s["ci95"]), s["n"]] for m, s in by_model.items()],
            )
        )
        pairs = [p for p in wr["pairs"] if p["judge"] == judge and "diff" in p]
        sec.tables.append(
            (
                ["A", "B", "mean A", "mean B", "B - A", "95% interval (paired)", "verdict"],
                [
                    [
                        short(p["a"]),
                        short(p["b"]),
                        num(p["mean_a"]),
                        num(p["mean_b"]),
                        num(p["diff"], sign=True),
                        interval(p["diff_ci95"], True),
                        verdict_line(p),
                    ]
                    for p in pairs
                ],
            )
        )
        names = [short(m) for m in by_model]
        means = [s["mean"] or 0.0 for s in by_model.values()]
        fig = go.Figure(
            go.Bar(
                x=names,
                y=means,
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=[s["ci95"][1] - (s["mean"] or 0) for s in by_model.values()],
                    arrayminus=[(s["mean"] or 0) - s["ci95"][0] for s in by_model.values()],
                ),
            )
        )
        fig.update_layout(
            title=f"mean {judge} score per model (95% interval)", template="plotly_white", height=360
        )
        sec.figures.append(fig)
        out.append(sec)
    tallies = Section("Win rates")
    tallies.tables.append(
        (
            [
                "judge",
                "A",
                "B",
                "W",
                "T",
                "L",
                "win rate A",
                "95% CI",
                "mean words A",
                "mean words B",
                "length-controlled",
            ],
            [
                [
                    p["judge"],
                    short(p["a"]),
                    short(p["b"]),
                    p["wins"],
                    p["ties"],
                    p["losses"],
                    num(p["win_rate"]),
                    interval(p["ci95"]),
                    num(p["mean_len_a"], 1),
                    num(p["mean_len_b"], 1),
                    num(p.get("lc_win_rate")),
                ]
                for p in wr["pairs"]
            ],
        )
    )
    for judge, rows in wr.get("bradley_terry", {}).items():
        tallies.tables.append(
            (
                [f"Bradley-Terry ({judge})", "score", "95% CI"],
                [[short(r["model"]), num(r["score"], 2, True), interval(r["ci95"], True)] for r in rows],
            )
        )
    if wr.get("judge_agreement"):
        tallies.text.append(
            "Judge agreement: " + "; ".join(f"{k}: {100 * v:.0f}%" for k, v in wr["judge_agreement"].items())
        )
    out.append(tallies)
    return out


def write_comparison_report(run: RunDir) -> None:
    wr = json.loads(run.winrate_path.read_text())
    write_report(run, f"Comparison {run.run_id}", comparison_sections(wr))
