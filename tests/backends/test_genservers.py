"""The Chat tab's generation servers: one process per model, started on first use, streaming
OpenAI-style chat completions, reused while warm, at most `max_loaded` at once, gone when idle."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from backends.core.runs.genservers import ServerError, ServerPool, chat_stream
from backends.core.runs.pids import pid_alive
from tests.backends.headless import stand_in_server

ROOT = Path(__file__).resolve().parents[2]

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]


def test_a_server_streams_the_greedy_answer_piece_by_piece_and_is_reused(
    tmp_path: Path, tiny_model: str
) -> None:
    pool = ServerPool(tmp_path / "servers", idle_s=120)
    pool.ensure(tiny_model)
    info = pool.wait_ready(tiny_model, timeout_s=180)
    assert info.engine == "transformers" and info.device == "cpu" and info.memory_mb() > 50
    try:
        pieces = list(chat_stream(info, CHAT, max_tokens=24, temperature=0.0))
        again = list(chat_stream(info, CHAT, max_tokens=24, temperature=0.0))
        assert len(pieces) > 3 and "".join(pieces) == "".join(again)  # streamed, and greedy repeats
        # the same tokens plain transformers gives (the server adds nothing of its own)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tiny_model)
        model = AutoModelForCausalLM.from_pretrained(tiny_model)
        ids = tok.apply_chat_template(CHAT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        out = model.generate(**ids, max_new_tokens=24, do_sample=False, pad_token_id=tok.pad_token_id)
        expected = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        assert "".join(pieces) == expected
        assert pool.ensure(tiny_model).pid == info.pid  # warm: no second process
        with pytest.raises(ServerError, match="max_tokens"):
            list(chat_stream(info, CHAT, max_tokens=0))
    finally:
        pool.stop_all()
    deadline = time.time() + 20
    while pid_alive(info.pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not pid_alive(info.pid) and pool.servers() == []


def test_at_most_max_loaded_servers_and_an_idle_one_stops_itself(tmp_path: Path, tiny_model: str) -> None:
    import shutil

    other = tmp_path / "tiny-copy"
    shutil.copytree(tiny_model, other)
    pool = ServerPool(tmp_path / "servers", max_loaded=1, idle_s=3)
    try:
        first = pool.wait_ready(pool.ensure(tiny_model).model, timeout_s=180)
        second = pool.wait_ready(pool.ensure(str(other)).model, timeout_s=180)
        assert [s.model for s in pool.servers()] == [str(other)]  # the first was stopped for it
        deadline = time.time() + 30
        while (pid_alive(first.pid) or pid_alive(second.pid)) and time.time() < deadline:
            time.sleep(0.3)
        assert not pid_alive(second.pid), "the idle server did not stop itself"
        assert pool.servers() == []  # it removed its state file
    finally:
        pool.stop_all()


def test_a_server_a_live_run_leases_is_never_stopped_for_room(tmp_path: Path, monkeypatch) -> None:
    """Two warm runs with different models share the servers folder: a new server stops the
    least recently used one that no live run holds, and exceeds the cap rather than stop one a
    run generates through. Stand-in processes play the servers (their state files as a server
    writes them) and the runs; the rule is the pool's alone."""
    import json
    import subprocess

    from backends.core.runs import genservers

    procs: list[subprocess.Popen[bytes]] = []

    def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
        model, state = cmd[cmd.index("--model") + 1], Path(cmd[cmd.index("--state") + 1])
        procs.append(stand_in_server())
        state.write_text(json.dumps({"model": model, "pid": procs[-1].pid, "port": 1, "state": "ready"}))
        return procs[-1]

    monkeypatch.setattr(genservers, "start_detached", start)
    pool = ServerPool(tmp_path / "servers", max_loaded=2)
    run = stand_in_server()  # a live run generating through model a
    procs.append(run)
    try:
        pool.ensure("a")
        pool.lease("a", pid=run.pid)
        pool.ensure("b")
        pool.used["a"] = 0.0  # a is the least recently used: the rule alone would stop it
        pool.ensure("c")
        assert {s.model for s in pool.servers()} == {"a", "c"}  # b went, a is leased
        pool.lease("c", pid=run.pid)  # the run (a comparison) now also generates through c
        pool.ensure("d")
        assert {s.model for s in pool.servers()} == {"a", "c", "d"}  # over the cap: both held
        run.kill()
        run.wait()
        assert not pool.in_use("a")  # the run ended: its leases are stale
        pool.ensure("e")
        assert {s.model for s in pool.servers()} == {"d", "e"}
        assert not list(pool.folder.glob("*.lease-*"))  # and were removed when read
    finally:
        pool.stop_all()
        for p in procs:
            p.kill()
            p.wait()


def test_a_model_that_cannot_load_says_why(tmp_path: Path) -> None:
    pool = ServerPool(tmp_path / "servers")
    missing = str(tmp_path / "no-such-model")
    pool.ensure(missing)
    with pytest.raises(ServerError, match="no-such-model"):
        pool.wait_ready(missing, timeout_s=120)


def test_a_warm_comparison_generates_through_servers_the_next_one_finds_loaded(
    tmp_path: Path, tiny_model: str
) -> None:
    """`eval.warm`: each model is loaded once, in its server; the next generation with the same
    model finds it loaded, and the answers are the ones of a model loaded in the process."""
    import json
    import shutil
    import subprocess
    import sys

    from backends.core.runs.genservers import servers_dir
    from backends.core.runs.launcher import Launcher
    from backends.core.spec.config import ModelConfig, validate_config
    from backends.worker.generation import Generator, server_pool

    other = tmp_path / "copy"
    shutil.copytree(tiny_model, other)
    models = [tiny_model, str(other)]
    cfg = validate_config(
        {
            "method": "eval",
            "model": {"name_or_path": tiny_model},
            "data": {"dataset": "builtin:tasks", "split": "heldout", "max_samples": 6},
            "eval": {
                "models": models,
                "max_new_tokens": 12,
                "temperature": 0.0,
                "batch_size": 3,
                "warm": True,
                "judges": [{"kind": "function", "path": "tests.backends.rl_rewards:longer_is_better"}],
            },
            "train": {"bf16": False},
        },
        "test",
    )
    pool = ServerPool(servers_dir())
    try:
        run = Launcher(tmp_path / "runs").create_run(cfg)
        cmd = [sys.executable, "-m", "backends.worker", str(run.path)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.count("engine transformers server") == 2 and "the server started" in proc.stdout
        assert {s.model for s in pool.servers()} == set(models)  # still loaded after the run
        rows = [json.loads(x) for x in run.samples_path.read_text().splitlines()]
        answers = [r["response"] for r in rows if r["model"] == tiny_model]
        # the next user of the model finds its server loaded, and gets the same answers
        prompts = [r["prompt"] for r in _heldout_prompts(6)]
        warm = Generator(ModelConfig(name_or_path=tiny_model), "cpu", "sdpa", server_pool(True))
        assert "the server was loaded" in warm.why and warm.server.pid == pool.info(tiny_model).pid
        again = [o[0] for i in (0, 3) for o in warm.generate(prompts[i : i + 3], 1, 12, 0.0, 3, seed=0)]
        # ... which are those of the model loaded in this process, at the same batch
        here = Generator(ModelConfig(name_or_path=tiny_model), "cpu", "sdpa")
        local = [o[0] for i in (0, 3) for o in here.generate(prompts[i : i + 3], 1, 12, 0.0, 3, seed=0)]
        assert answers == again == local and len(answers) == 6
    finally:
        pool.stop_all()


def _heldout_prompts(n: int) -> list[dict]:
    from backends.core.data.formats import load_for_method
    from backends.core.spec.sections import DataConfig

    ds, _ = load_for_method("eval", DataConfig(dataset="builtin:tasks", split="heldout", max_samples=n), None)
    return list(ds)
