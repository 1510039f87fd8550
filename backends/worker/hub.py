"""Pushing an export to the Hugging Face Hub (`launch.py --export RUN --to DIR --push-to-hub
USER/NAME`): huggingface_hub's create_repo + upload_folder, after the folder is complete.
Offline (the studio's one rule, backends/core/data/online.py) the push is refused, naming the
step, and the export on disk stays as written."""

from __future__ import annotations

from pathlib import Path

from backends.core.data.online import hub_offline


class HubError(RuntimeError):
    """The push did not happen; the message names the step and why."""


def push_folder(folder: Path, repo_id: str, private: bool = True) -> str:
    """Upload `folder` as the model repo `repo_id`; returns the repo's URL."""
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError(f"push to the Hub refused: repo {repo_id!r} is not of the form user/name")
    reason = hub_offline()  # the one offline rule every loader uses
    if reason:
        raise HubError(
            f"push to the Hub refused: this machine is offline ({reason}); the export in {folder} is "
            f"complete: push it later with `hf upload {repo_id} {folder}`"
        )
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="Alignment Studio export")
    except Exception as e:  # a token, permission or network problem: say which step failed
        raise HubError(f"push to the Hub failed while uploading {folder} to {repo_id}: {e}") from e
    return str(url)
