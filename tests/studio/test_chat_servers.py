"""The Chat tab and warm runs share the machine's generation servers: the tab lists the servers
a run keeps loaded (and says which a running run uses), and its Stop keeps those."""

from __future__ import annotations

import json
from pathlib import Path

from backends.core.runs.genservers import ServerPool, servers_dir
from studio.context import StudioContext
from studio.logic.chat import server_rows, stop_servers
from tests.backends.headless import stand_in_server

ROOT = Path(__file__).resolve().parents[2]


def test_the_chat_tab_sees_the_servers_warm_runs_keep_and_its_stop_spares_a_running_runs(
    tmp_path: Path,
) -> None:
    from backends.worker.generation import server_pool

    ctx = StudioContext.create(tmp_path / "runs", ROOT / "presets", tmp_path / "data")
    # by default the tab's pool is the folder warm runs use (a model the Arena kept loaded is
    # the Chat's too, and the tab lists it)
    assert ctx.servers.folder == servers_dir() == server_pool(True).folder

    pool = ServerPool(tmp_path / "servers")
    ctx.servers = pool
    procs = [stand_in_server(), stand_in_server(), stand_in_server()]
    try:
        for model, proc in (("kept-by-a-run", procs[0]), ("idle", procs[1])):
            pool.state_path(model).write_text(
                json.dumps({"model": model, "pid": proc.pid, "port": 1, "state": "ready", "started_at": 1.0})
            )
        pool.lease("kept-by-a-run", pid=procs[2].pid)  # a warm comparison running in another process
        states = {row[0]: row[1] for row in server_rows(ctx)}
        assert states == {"kept-by-a-run": "ready, a run uses it", "idle": "ready"}
        said = stop_servers(ctx)
        assert "kept 1 that a running run generates through: kept-by-a-run" in said
        assert [s.model for s in pool.servers()] == ["kept-by-a-run"]
        procs[2].kill()
        procs[2].wait()  # the run ended
        assert stop_servers(ctx) == "Every generation server was stopped."
        assert pool.servers() == []
    finally:
        for p in procs:
            p.kill()
            p.wait()
