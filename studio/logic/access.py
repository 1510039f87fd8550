"""Who may call which of the studio's endpoints. No gradio import.

Two roles (backends/core/access/accounts.py): a `labeler` labels and looks; an `operator` also
starts and stops things. Every endpoint of the app is classified here by its api name, and
studio/access.py enforces it in one place, for the page and the API alike. A public endpoint
missing from both lists counts as operator-only, so a new button that starts something
is closed to labelers until someone decides otherwise (tests/studio/test_roles.py lists it).
"""

from __future__ import annotations

from backends.core.access.accounts import Role

# Endpoints that start, stop or create runs and processes, or write shared datasets.
OPERATOR_ONLY = frozenset(
    {
        "launch",  # Train: a run or a pipeline
        "stop",  # Train: stop a run
        "rerun",  # Train: "Edit and rerun" fills the form to launch
        "resume",  # Train: a new run from a failed or stopped run's checkpoint
        "export",  # Train: writes a run's model to the data folder (a child process loads it)
        "monitor_rerun",  # Monitor: "Edit and rerun"
        "monitor_resume",  # Monitor: Resume
        "data_mix",  # Data: writes a mixture file
        "data_train",  # Data: "Train on this" fills the Train form to launch
        "data_action",  # Data: an augmentation or selection run
        "label_generate",  # Label: candidate-sampling runs
        "label_train",  # Label: a run on the exported labels
        "label_order",  # Label: a run that orders a session by a reward model's uncertainty
        "arena_start",  # Arena: a comparison run
        "arena_to_label",  # Arena: a labeling session from a comparison
        "chat_to_label",  # Chat: a labeling session from the last two answers
        "chat_stop",  # Chat: stops every generation server
    }
)

# Endpoints a labeler may call: the Label tab's own work and every read-only view.
LABELER_OK = frozenset(
    {
        "data_open",
        "data_rows",
        "data_row",
        "preview",
        "runs",
        "run_details",
        "monitor_select",  # the chart, the config diff and a selected sweep's table and chart
        "monitor_tick",
        "monitor_view",  # chart options (x axis, log y); writes the chart's CSV for download
        "run_diff",
        "label_session",
        "label_create",
        "label_vote_left",
        "label_vote_right",
        "label_vote_tie",
        "label_vote_both_bad",
        "label_skip",
        "label_undo",
        "label_agreement",
        "label_export",
        "label_rank",
        "label_guidelines",  # the store lets only a session's owner change them
        "arena_show",
        "chat_servers",  # Chat: the generation servers' table
        "chat_send",  # Chat: a labeler's message goes to a running server only (the tab checks)
    }
)


def operator_only(api_name: str | None, public: bool) -> bool:
    """Whether an endpoint needs the operator role. Private endpoints (the page's own
    helpers: page loads, timers, follow-ups) are open unless listed; public ones are closed
    unless listed as a labeler's."""
    if api_name in OPERATOR_ONLY:
        return True
    return public and api_name not in LABELER_OK


def may_call(role: Role, api_name: str | None, public: bool) -> bool:
    return role == "operator" or not operator_only(api_name, public)


def role_banner(user: str | None, role: Role, with_accounts: bool) -> str:
    if not with_accounts:
        return ""
    if role == "operator":
        return f"Signed in as **{user}** (operator)."
    return (
        f"Signed in as **{user}** (labeler): label in the Label tab; Data, Train, Monitor and Arena "
        "are read-only for you (an operator starts runs and comparisons)."
    )
