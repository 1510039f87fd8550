"""Ordering a labeling session by a reward model's uncertainty, as the Label tab offers it:
which reward runs can order it, the config of the scoring run (an `uncertainty` run, started
in the background like any run; the studio never loads the model), and what the page says
about an ordered session. No gradio import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backends.core.labels.agreement import judge_agreement, ranking_report
from backends.core.labels.store import LabelStore, Ordering, Ranking, Vote
from backends.core.pipelines.policy import StudioPolicy
from backends.core.runs.rundir import list_runs
from backends.core.spec import registry
from backends.core.spec.config import ConfigError, RunConfig
from studio.logic.forms import build_config
from studio.logic.runs import resolve_run, run_method


def reward_runs(runs_dir: Path) -> list[str]:
    """Finished reward runs with a model, newest first: what can order a session."""
    out = []
    for run in reversed(list_runs(runs_dir)):
        if (
            getattr(registry.find(run_method(run)), "scores_answers", False)
            and run.model_dir.is_dir()
            and run.read_status()["state"] == "succeeded"
        ):
            out.append(run.run_id)
    return out


def order_config(
    runs_dir: Path, store: LabelStore, session_id: int | None, rm_run: str | None, policy: StudioPolicy
) -> RunConfig:
    """The scoring run's config for this session and reward run, through the one form route
    (`build_config`: the studio's path policy, then the checks). ConfigError says what is wrong."""
    if session_id is None:
        raise ConfigError(["pick a labeling session first: the order is the session's"])
    run = resolve_run(runs_dir, rm_run)
    if run is None:
        raise ConfigError([f"reward model run {rm_run!r} is not a run in {runs_dir}; pick one of the list"])
    method, state = run_method(run), run.read_status()["state"]
    if (
        not getattr(registry.find(method), "scores_answers", False)
        or state != "succeeded"
        or not run.model_dir.is_dir()
    ):
        raise ConfigError(
            [
                f"run `{run.run_id}` is a {state} `{method}` run"
                + ("" if run.model_dir.is_dir() else " without a model/ folder")
                + ": the order needs a succeeded `reward` run's model"
            ]
        )
    values: dict[str, Any] = {
        "name": "label-order",
        "method": "uncertainty",
        "uncertainty.reward_model": str(run.model_dir),
        "uncertainty.session": store.session(session_id).name,
        "uncertainty.store": str(store.path),
    }
    return build_config({}, values, "Label tab: order by uncertainty", policy)[0]


def ordering_note(o: Ordering, kind: str) -> str:
    """The line that says a session is served most uncertain first, and by which model."""
    what = "pairs" if kind == "pair" else "items (by their two closest answers)"
    return (
        f"Served **most uncertain first**: reward model `{o.model_name}` scored the {what}, and the "
        f"smaller its |margin|, the sooner one comes (run `{o.run_id}`)."
    )


def rm_agreement_lines(o: Ordering, kind: str, votes: list[Vote], rankings: list[Ranking]) -> list[str]:
    """How often people agree with the reward model that ordered the session."""
    if kind == "ranking":
        tau = ranking_report(rankings, o.scores)["judge_tau"]
        if tau is None:
            return [
                f"Kendall's tau with reward model `{o.model_name}` (it ordered this session): no ranking yet"
            ]
        return [f"Kendall's tau with reward model `{o.model_name}` (it ordered this session): {tau:.2f}"]
    share = judge_agreement(votes, o.scores)
    n = sum(v.preferred is not None and v.item_id in o.scores for v in votes)
    name = f"reward model `{o.model_name}` (it ordered this session)"
    if share is None:
        return [f"Agreement with {name}: no decisive vote yet"]
    return [f"Agreement with {name}: {100 * share:.0f}% of {n} decisive votes"]
