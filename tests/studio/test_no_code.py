"""No code from the web: a `function` reward typed in the Train form or the pipeline editor must
be one the operator registered at start-up, trust_remote_code is command-line only (the Train
tab says so for a preset that has it), and a worker started on a web run re-checks both before
it imports anything."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client

from backends.core.access.paths import PathPolicy
from backends.core.pipelines.policy import RewardFunctions, StudioPolicy, check_config
from backends.core.runs.rundir import RunDir
from backends.core.spec.config import ConfigError, config_to_yaml, load_preset, read_preset
from studio.logic import forms
from tests.studio.conftest import ROOT, Server, free_port

REGISTERED = "tests.backends.rl_rewards:vowel_share"


@pytest.fixture(scope="module")
def studio_with_rewards(tmp_path_factory: pytest.TempPathFactory, tiny_model: str) -> Iterator[Server]:
    from studio.app import launch_app
    from studio.context import StudioContext

    tmp = tmp_path_factory.mktemp("nocode")
    presets = tmp / "presets"
    (presets / "tiny").mkdir(parents=True)
    for name in ("tiny/grpo.yaml", "tiny/sft_dpo.yaml", "reward.yaml", "dpo.yaml", "sample.yaml"):
        (presets / name).write_text((ROOT / "presets" / name).read_text())
    (presets / "remote.yaml").write_text(
        (ROOT / "presets/tiny/sft.yaml")
        .read_text()
        .replace(
            "name_or_path: builtin:tiny-llama", "name_or_path: builtin:tiny-llama\n  trust_remote_code: true"
        )
    )
    ctx = StudioContext.create(
        tmp / "runs", presets, tmp / "data", reward_functions=RewardFunctions.parse([REGISTERED])
    )
    port = free_port()
    app = launch_app(ctx, "127.0.0.1", port, block=False)
    try:
        yield Server(f"http://127.0.0.1:{port}/", tmp / "runs", ctx)
    finally:
        ctx.stop_scheduler()
        app.close()


def grpo_values(rewards: str) -> list:
    values = forms.form_values(read_preset(ROOT / "presets/tiny/grpo.yaml"))
    values[[f.key for f in forms.form_fields()].index("rl.rewards")] = rewards
    return values


def test_only_registered_reward_functions_from_the_form(studio_with_rewards) -> None:
    server = studio_with_rewards
    client = Client(server.url, verbose=False)
    for path in ("os:system", "tests.backends.rl_rewards:longer_is_better", "builtins:eval"):
        errors, *_ = client.predict(
            "tiny/grpo.yaml", *grpo_values(f"[{{kind: function, path: '{path}'}}]"), api_name="/preview"
        )
        assert f"reward function '{path}' was not registered" in errors
        assert REGISTERED in errors  # it says what is registered
        msg, *_ = client.predict(
            "tiny/grpo.yaml", "", *grpo_values(f"[{{kind: function, path: '{path}'}}]"), api_name="/launch"
        )
        assert "was not registered" in msg
    assert not any(server.runs_dir.iterdir())
    errors, yaml_text, *_ = client.predict(
        "tiny/grpo.yaml", *grpo_values(f"[{{kind: function, path: '{REGISTERED}'}}]"), api_name="/preview"
    )
    assert errors == "" and REGISTERED in yaml_text


def test_the_pipeline_editor_cannot_name_code_either(studio_with_rewards) -> None:
    server = studio_with_rewards
    client = Client(server.url, verbose=False)
    values = grpo_values("[{kind: checkers}]")
    for body in (
        "rl: {rewards: [{kind: function, path: 'os:system'}]}",
        "model: {name_or_path: 'builtin:tiny-llama', trust_remote_code: true}",
    ):
        text = f"stages:\n  - {{stage: a, method: grpo, {body}}}\n"
        msg, *_ = client.predict("tiny/sft_dpo.yaml", text, *values, api_name="/launch")
        assert "was not registered" in msg or "`model.trust_remote_code` is True" in msg, msg
    assert not any(server.runs_dir.iterdir())


def test_trust_remote_code_is_command_line_only_and_the_train_tab_says_so(studio_with_rewards) -> None:
    server = studio_with_rewards
    client = Client(server.url, verbose=False)
    values = forms.form_values(read_preset(server.ctx.presets_dir / "remote.yaml"))
    errors, _, command, _ = client.predict("remote.yaml", *values, api_name="/preview")
    assert "`model.trust_remote_code` is True: it can only be set from the command line" in errors
    assert command.startswith("python launch.py --preset") and "--headless" in command  # the way to run it
    msg, *_ = client.predict("remote.yaml", "", *values, api_name="/launch")
    assert "trust_remote_code" in msg and not any(server.runs_dir.iterdir())
    cfg = load_preset(server.ctx.presets_dir / "remote.yaml")
    assert check_config(cfg, None).model.trust_remote_code  # the command line may


def test_a_registered_module_allows_the_functions_it_defines_only() -> None:
    mod = "tests.backends.rl_rewards"  # defines vowel_share, longer_is_better, ...; imports text_of, Any
    fns = RewardFunctions.parse([mod, "other:score"])
    assert (
        fns.allows(f"{mod}:vowel_share")
        and fns.allows(f"{mod}:longer_is_better")
        and fns.allows("other:score")
    )
    assert not fns.allows(f"{mod}:text_of") and not fns.allows(f"{mod}:Any")  # imported, not defined there
    assert (
        not fns.allows(f"{mod}:_private")
        and not fns.allows("other:evil")
        and not fns.allows(f"{mod}:anything")
    )
    assert not fns.allows("tests.backends:rl_rewards")
    with pytest.raises(ConfigError, match="expected `module` or `module:callable`"):
        RewardFunctions.parse(["os; rm -rf /"])
    with pytest.raises(ConfigError, match="'no_such_pkg.rewards': the module cannot be imported"):
        RewardFunctions.parse(["no_such_pkg.rewards"])


def test_a_worker_on_a_web_run_refuses_an_unregistered_function_before_importing_it(tmp_path: Path) -> None:
    """A run that reached the runs dir some other way still names only what the studio allowed:
    the worker checks the policy recorded in its status and never imports the module."""
    (tmp_path / "pkg").mkdir()
    marker = tmp_path / "imported"
    (tmp_path / "pkg" / "evil_rewards.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\ndef score(prompts, completions, **kw):\n    return [0.0] * len(completions)\n"
    )
    cfg = load_preset(
        ROOT / "presets/tiny/grpo.yaml", ["rl.rewards=[{kind: function, path: 'evil_rewards:score'}]"]
    )
    policy = StudioPolicy(PathPolicy((tmp_path,)), RewardFunctions.parse([REGISTERED]))
    run = RunDir(tmp_path / "runs" / "r")
    run.path.mkdir(parents=True)
    run.config_path.write_text(config_to_yaml(cfg))
    run.init_status(policy=policy.as_dict())
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "pkg")}
    proc = subprocess.run(
        [sys.executable, "-m", "backends.worker", str(run.path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    st = run.read_status()
    assert (
        st["state"] == "failed" and "reward function 'evil_rewards:score' was not registered" in st["error"]
    )
    assert not marker.exists()


def test_the_web_cannot_point_the_augmentation_embedder_at_a_folder(tmp_path: Path) -> None:
    """sda's embedding model loads a folder the path policy has no role for: the web keeps the default."""
    policy = StudioPolicy(PathPolicy((tmp_path,)), RewardFunctions.parse([]))
    default = load_preset(ROOT / "presets/sda.yaml")
    check_config(default, policy)  # the shipped embedder is fine
    elsewhere = load_preset(ROOT / "presets/sda.yaml", [f"sda.embedding_model={tmp_path}"])
    with pytest.raises(ConfigError, match="embedding_model"):
        check_config(elsewhere, policy)
    assert check_config(elsewhere, None).sda.embedding_model == str(tmp_path)  # the command line may
