"""Vote latency of the Label tab, as a team feels it: a live studio (`launch.py --auth`, with
logins) and gradio_client annotators voting through its API; prints JSON.

    python bench/label_votes.py [--items 450] [--votes 50] [--annotators 8] [--k 2]
                                [--studio ROOT] [--ssl-verify]

Three phases against the same server: `floor`, a handler that does nothing
(`/label_agreement` with no session: gradio's own cost per call); `alone`, one annotator
voting; `team`, N annotators voting at once (threads in this one process, so the clients
do not take the server's CPU, started together behind a barrier). After the votes, the
label database is read directly: every acknowledged vote must be stored (lost = acked -
stored), nobody may have voted an item twice, no item may have more than K votes.

`--studio ROOT` runs another checkout's studio (e.g. an older commit unpacked with
`git archive`) with the same clients, for a before/after. `--ssl-verify` keeps
gradio_client's default of building a verifying SSL context for every call (about 35 ms
of client CPU per call even on plain http; off by default, as the browser pays nothing
like it). Note that gradio_client polls for its result every 50 ms, which sets a floor
under every figure here; a browser's event stream has no such poll.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

CREATE = """
import sys
from backends.core.labels.store import LabelStore
store = LabelStore(sys.argv[1])
n, k = int(sys.argv[2]), int(sys.argv[3])
for name in ("alone", "team"):
    items = [{"prompt": f"{name} question {i}?", "responses": [f"yes {i}", f"no {i}"]} for i in range(n)]
    try:
        sid = store.create_session(name, items, votes_per_item=k)
    except TypeError:  # a studio from before votes_per_item
        sid = store.create_session(name, items)
    print(sid)
"""


def percentiles(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return {
        "n": len(s),
        "p50_ms": round(pick(0.5), 1),
        "p95_ms": round(pick(0.95), 1),
        "max_ms": round(s[-1], 1),
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    import gradio
    import gradio_client

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "gradio": gradio.__version__,
        "gradio_client": gradio_client.__version__,
        "sqlite": sqlite3.sqlite_version,
    }


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the studio exited with {proc.returncode} before it was up")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the studio did not answer at {url} within {timeout:.0f} s")


def annotate(
    url: str, user: str, sid: int, votes: int, verify: bool, barrier: threading.Barrier, out: dict
) -> None:
    from gradio_client import Client

    try:
        client = Client(url, auth=(user, f"pw-{user}"), verbose=False, ssl_verify=verify)
        first = client.predict(sid, "", api_name="/label_session")
        prompts, ms, acked = [first[1]], [], 0
        barrier.wait()
        for _ in range(votes):
            t = time.perf_counter()
            shown = client.predict("", "", api_name="/label_vote_left")
            ms.append(1000 * (time.perf_counter() - t))
            acked += 1  # the call returned: the studio has stored the vote
            prompts.append(shown[1])
        out[user] = {"ms": ms, "acked": acked, "prompts": prompts[:-1]}
    except BaseException as e:  # reported in the JSON, with the annotator
        out[user] = {"error": repr(e)}
        barrier.abort()


def floor(url: str, verify: bool, calls: int, server: int) -> dict[str, float]:
    from gradio_client import Client

    client = Client(url, auth=("solo", "pw-solo"), verbose=False, ssl_verify=verify)
    client.predict(api_name="/label_agreement")
    ms = []
    cpu0 = cpu_seconds(server)
    for _ in range(calls):
        t = time.perf_counter()
        client.predict(api_name="/label_agreement")
        ms.append(1000 * (time.perf_counter() - t))
    return {
        **percentiles(ms),
        "server_cpu_ms_per_call": round(1000 * (cpu_seconds(server) - cpu0) / calls, 1),
    }


def run_phase(url: str, users: list[str], sid: int, votes: int, verify: bool, server: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    barrier = threading.Barrier(len(users) + 1)
    threads = [
        threading.Thread(target=annotate, args=(url, u, sid, votes, verify, barrier, out)) for u in users
    ]
    for t in threads:
        t.start()
    barrier.wait()
    cpu0, me0, t0 = cpu_seconds(server), time.process_time(), time.time()
    for t in threads:
        t.join()
    wall = time.time() - t0
    errors = {u: r["error"] for u, r in out.items() if "error" in r}
    ms = [m for r in out.values() for m in r.get("ms", [])]
    return {
        "annotators": len(users),
        **percentiles(ms),
        "votes_per_s": round(len(ms) / wall, 1),
        "server_cpu_s": round(cpu_seconds(server) - cpu0, 2),
        "server_cpu_ms_per_vote": round(1000 * (cpu_seconds(server) - cpu0) / max(1, len(ms)), 1),
        "client_cpu_s": round(time.process_time() - me0, 2),
        "wall_s": round(wall, 2),
        "acked": {u: r.get("acked", 0) for u, r in out.items()},
        "seen_twice": sum(len(r["prompts"]) - len(set(r["prompts"])) for r in out.values() if "prompts" in r),
        "errors": errors,
    }


def check(db_path: Path, sid: int, acked: dict[str, int], k: int) -> dict[str, int]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT v.annotator, v.item_id FROM votes v JOIN items i ON i.id = v.item_id "
            "WHERE i.session_id = ? AND v.undone = 0",
            (sid,),
        ).fetchall()
    stored: dict[str, int] = {}
    per_item: dict[int, int] = {}
    for who, item in rows:
        stored[who] = stored.get(who, 0) + 1
        per_item[item] = per_item.get(item, 0) + 1
    return {
        "stored": len(rows),
        "lost": sum(max(0, n - stored.get(u, 0)) for u, n in acked.items()),
        "duplicated": len(rows) - len(set(rows)),
        "items_over_k": sum(n > k for n in per_item.values()),
        "items_labeled": len(per_item),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=450)
    ap.add_argument("--votes", type=int, default=50, help="votes per annotator")
    ap.add_argument("--annotators", type=int, default=8)
    ap.add_argument("--k", type=int, default=2, help="votes_per_item of the sessions")
    ap.add_argument("--studio", type=Path, default=ROOT, help="the checkout whose launch.py to run")
    ap.add_argument("--ssl-verify", action="store_true", help="gradio_client's default SSL context per call")
    ap.add_argument("--port", type=int, default=7977)
    args = ap.parse_args()
    studio = args.studio.resolve()
    users = [f"ann{i}" for i in range(args.annotators)]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        db_path = data / "labels.sqlite"
        made = subprocess.run(
            [sys.executable, "-c", CREATE, str(db_path), str(args.items), str(args.k)],
            cwd=studio,
            capture_output=True,
            text=True,
            check=True,
        )
        alone_sid, team_sid = (int(x) for x in made.stdout.split())
        auth = Path(tmp) / "users.txt"
        auth.write_text("".join(f"{u}:pw-{u}\n" for u in ["solo", *users]))
        url = f"http://127.0.0.1:{args.port}/"
        cmd = [sys.executable, "launch.py", "--runs-dir", str(Path(tmp) / "runs"), "--data-dir", str(data)]
        cmd += ["--port", str(args.port), "--auth", str(auth)]
        proc = subprocess.Popen(cmd, cwd=studio, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_up(url, proc)
            load_before = os.getloadavg()[0]
            result: dict[str, Any] = {
                "machine": machine(),
                "studio": str(studio),
                "client_ssl_verify": args.ssl_verify,
                "items": args.items,
                "k": args.k,
                "votes_per_annotator": args.votes,
                "target_team_p95_ms": 100,
                "floor": floor(url, args.ssl_verify, args.votes, proc.pid),
                "alone": run_phase(url, ["solo"], alone_sid, args.votes, args.ssl_verify, proc.pid),
            }
            result["alone"].update(check(db_path, alone_sid, result["alone"]["acked"], args.k))
            team = run_phase(url, users, team_sid, args.votes, args.ssl_verify, proc.pid)
            team.update(check(db_path, team_sid, team["acked"], args.k))
            result["team"] = team
            result["team_meets_target"] = team["p95_ms"] <= result["target_team_p95_ms"] and team["lost"] == 0
            # Other jobs on the machine move the tail a lot: say how busy it was.
            result["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
