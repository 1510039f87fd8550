"""Generation servers for the Chat tab and for runs that keep their models loaded (`eval.warm`):
one process per model (backends/worker/serve.py, or vLLM's server on a GPU), started on first
use, reused while warm, stopped after an idle time, and at most `max_loaded` at once (the least
recently used one goes first, unless a live run holds a lease on it: `lease`). The studio
process loads no model: it only starts these, reads their state files and talks HTTP to them.
Torch-free.

Each server has a state file `<folder>/<key>.json` (key: a hash of the model's name) written by
the server itself: its pid, port, model and state (`loading`, `ready`, `failed`). A server
outlives the studio that started it (its own session, like a run) and is found again by the
next studio from its state file; a file whose pid is gone is stale and removed.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.core.runs.launcher import start_detached
from backends.core.runs.pids import pid_alive, process_running


class ServerError(RuntimeError):
    """A generation server failed to start or to answer; the message says why."""


@dataclass
class ServerInfo:
    model: str
    state: str  # loading | ready | failed | starting
    pid: int | None = None
    port: int | None = None
    engine: str = ""
    device: str = ""
    dtype: str = ""
    error: str = ""
    last_used: float = 0.0

    def memory_mb(self) -> float | None:
        """The process's resident memory (GPU memory is not counted)."""
        try:
            import psutil

            return psutil.Process(self.pid).memory_info().rss / 2**20 if self.pid else None
        except Exception:  # noqa: BLE001 - a process that just ended has no memory to show
            return None


class ServerPool:
    def __init__(
        self, folder: Path, max_loaded: int = 2, idle_s: float = 600.0, python: str = sys.executable
    ) -> None:
        self.folder, self.max_loaded, self.idle_s, self.python = Path(folder), max_loaded, idle_s, python
        self.folder.mkdir(parents=True, exist_ok=True)
        self.used: dict[str, float] = {}  # model -> when this studio last asked for it
        # model -> the server process this pool started (its handle, not its pid: see _starting)
        self.started: dict[str, Any] = {}
        self.lock = threading.Lock()  # two chats asking for one model start one server

    def state_path(self, model: str) -> Path:
        return self.folder / f"{hashlib.sha1(model.encode()).hexdigest()[:16]}.json"

    def info(self, model: str) -> ServerInfo | None:
        """The model's server as its state file says, or None (no file, or its process is gone)."""
        path = self.state_path(model)
        try:
            st = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            return ServerInfo(model, "starting")  # being written
        if st.get("state") != "failed" and not pid_alive(int(st.get("pid") or 0)):
            path.unlink(missing_ok=True)
            return None
        fields = {k: st.get(k) or "" for k in ("engine", "device", "dtype", "error")}
        return ServerInfo(
            model,
            st.get("state", "starting"),
            st.get("pid"),
            st.get("port"),
            **fields,
            last_used=self.used.get(model, st.get("started_at", 0.0)),
        )

    def servers(self) -> list[ServerInfo]:
        out = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                model = json.loads(path.read_text()).get("model")
            except (OSError, ValueError):
                continue
            info = self.info(model) if model else None
            if info is not None:
                out.append(info)
        return out

    def ensure(self, model: str) -> ServerInfo:
        """The model's server, started when there is none (a failed one is started again)."""
        with self.lock:
            return self._ensure(model)

    def _ensure(self, model: str) -> ServerInfo:
        self.used[model] = time.time()
        info = self.info(model)
        if info is not None and info.state != "failed":
            return info
        if info is None and self._starting(model):
            return ServerInfo(model, "starting", self.started[model].pid)
        self.state_path(model).unlink(missing_ok=True)
        # at most max_loaded at once: the least recently used goes, unless a live run generates
        # through it (a leased server is never stopped for room: the cap is exceeded instead)
        others = [s for s in self.servers() if s.model != model]
        free = sorted((s for s in others if not self.in_use(s.model)), key=lambda s: s.last_used)
        for old in free[: max(0, len(others) - self.max_loaded + 1)]:
            self.stop(old.model)
        cmd = [self.python, "-m", "backends.worker.serve", "--model", model]
        cmd += ["--state", str(self.state_path(model)), "--idle", str(self.idle_s)]
        log = self.folder / f"{self.state_path(model).stem}.log"
        proc = start_detached(cmd, log)
        self.started[model] = proc
        return ServerInfo(model, "starting", proc.pid)

    def _lease_path(self, model: str, pid: int) -> Path:
        return self.folder / f"{self.state_path(model).stem}.lease-{pid}"

    def lease(self, model: str, pid: int | None = None) -> None:
        """Mark `model`'s server as in use by process `pid` (this one: a run generating through
        it) until that process ends or releases it. Two warm runs with different models share
        this folder: without leases, the second's start stopped the first's server mid-run."""
        self._lease_path(model, pid or os.getpid()).write_text(model, encoding="utf-8")

    def release(self, model: str, pid: int | None = None) -> None:
        self._lease_path(model, pid or os.getpid()).unlink(missing_ok=True)

    def in_use(self, model: str) -> bool:
        """Leased by another process that still runs (a lease whose process is gone is removed;
        this process's own leases count as its own business: a comparison sizes the pool for
        its models)."""
        held = False
        for path in self.folder.glob(f"{self.state_path(model).stem}.lease-*"):
            pid = int(path.name.rsplit("-", 1)[1])
            if not process_running(pid):
                path.unlink(missing_ok=True)
            elif pid != os.getpid():
                held = True
        return held

    def wait_ready(self, model: str, timeout_s: float = 300.0) -> ServerInfo:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            info = self.info(model)
            if info is not None and info.state == "failed":
                raise ServerError(f"the server for {model} failed: {info.error}")
            if info is not None and info.state == "ready" and info.port:
                return info
            if info is not None and info.engine.startswith("vllm") and info.port and _healthy(info.port):
                return info  # vLLM writes no `ready`: its /health answers once it is
            if info is None and not self._starting(model):
                log = self.folder / f"{self.state_path(model).stem}.log"
                tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
                raise ServerError(f"the server for {model} exited before it was ready: {tail.strip()}")
            time.sleep(0.2)
        raise ServerError(f"the server for {model} was not ready after {timeout_s:.0f} s")

    def _starting(self, model: str) -> bool:
        """Started by this pool and still running, its state file not written yet. Asked of the
        process handle: between fork and exec a new server's /proc cmdline is still this
        process's, so `pid_alive` (which checks it) called it gone, and a server that was about
        to load was reported as "exited before it was ready" (seen once in a loaded suite)."""
        proc = self.started.get(model)
        return proc is not None and proc.poll() is None

    def stop(self, model: str) -> bool:
        info = self.info(model)
        self.state_path(model).unlink(missing_ok=True)
        if info is None or not info.pid:
            return False
        try:
            os.killpg(info.pid, signal.SIGTERM)  # its own session: the group is the server
        except ProcessLookupError:
            return False
        return True

    def stop_all(self, keep_leased: bool = False) -> list[str]:
        """Stop every server (with `keep_leased`, those another live process generates through
        are kept); return the models kept."""
        kept = []
        for s in self.servers():
            if keep_leased and self.in_use(s.model):
                kept.append(s.model)
            else:
                self.stop(s.model)
        return kept


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False


def servers_dir() -> Path:
    """Where runs keep their generation servers (`eval.warm`): one folder per machine and cache,
    so the next run that asks for the same model finds it loaded."""
    from backends.core.spec.places import cache_dir

    return cache_dir() / "servers"


def server_error(info: ServerInfo, status: int, body: str) -> ServerError:
    """A refused request's error: OpenAI's `error.message` when the body has one, else the body."""
    try:
        body = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        pass
    return ServerError(f"{info.model}: {status} {body}")


def complete(info: ServerInfo, prompts: list[str], n: int, **settings: Any) -> list[list[str]]:
    """`n` answers per prompt, in one request (OpenAI's completions: choice i * n + j is prompt
    i's answer j). The prompts are sent as they are: the caller applies the chat template."""
    conn = http.client.HTTPConnection("127.0.0.1", int(info.port or 0), timeout=1800)
    # add_special_tokens: vLLM's extension; the worker's own tokenizing adds none either
    body = {"model": info.model, "prompt": prompts, "n": n, "add_special_tokens": False, **settings}
    try:
        conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read().decode(errors="replace")
    except OSError as e:
        raise ServerError(f"{info.model}: the server did not answer ({e})") from e
    finally:
        conn.close()
    if resp.status != 200:
        raise server_error(info, resp.status, data)
    choices = sorted(json.loads(data)["choices"], key=lambda c: c["index"])
    if len(choices) != len(prompts) * n:
        raise ServerError(f"{info.model}: {len(choices)} answers for {len(prompts)} prompts x {n}")
    return [[c["text"] for c in choices[i * n : (i + 1) * n]] for i in range(len(prompts))]


def chat_stream(info: ServerInfo, messages: list[dict[str, str]], **settings: Any) -> Iterator[str]:
    """The answer's text as it is generated (OpenAI's streamed chat completions)."""
    conn = http.client.HTTPConnection("127.0.0.1", int(info.port or 0), timeout=600)
    body = json.dumps({"model": info.model, "messages": messages, "stream": True, **settings})
    try:
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise server_error(info, resp.status, resp.read().decode(errors="replace"))
        for raw in resp:
            line = raw.decode(errors="replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            event = json.loads(data)
            if "error" in event:
                raise ServerError(f"{info.model}: {event['error'].get('message')}")
            piece = event["choices"][0].get("delta", {}).get("content")
            if piece:
                yield piece
    except OSError as e:
        raise ServerError(f"{info.model}: the server did not answer ({e})") from e
    finally:
        conn.close()
