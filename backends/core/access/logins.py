"""Logins: throttled per name and per address, each failure logged, and a user's sessions
ended when their password or role changes. Standard library only.

Gradio calls the studio's check with a name and a password and nothing else, so a small
ASGI middleware (`ClientAddress`, given to Gradio's FastAPI app) notes each request's client
address in a context variable that the check reads. After `FREE_FAILURES` failed logins for a
name, or from an address, within `WINDOW` seconds, further tries are refused (HTTP 429, the
right password too) until a lock of 2, 4, 8 ... seconds (at most `MAX_LOCK`) after the last
failure has passed. A success clears the name's and the address's counts.
"""

from __future__ import annotations

import contextvars
import re
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any

FREE_FAILURES = 5
WINDOW = 15 * 60.0
MAX_LOCK = 300.0

CLIENT: contextvars.ContextVar[str] = contextvars.ContextVar("client_address", default="unknown")


class ClientAddress:
    """ASGI middleware: the request's client address into `CLIENT` for the login check."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("client"):
            CLIENT.set(str(scope["client"][0]))
        await self.app(scope, receive, send)


_API_INFO = re.compile(rb"<script>window\.gradio_api_info = .*?;</script>", re.DOTALL)
_NO_API_INFO = b'<script>window.gradio_api_info = {"named_endpoints": {}, "unnamed_endpoints": {}};</script>'


class LoginPageOnly:
    """ASGI middleware: an anonymous visitor gets the login form and nothing else.

    Gradio's login page (what `/` serves without a session, its config saying
    `auth_required`) also embeds the app's API description, which lists components' current
    choices: data-folder paths, export names, run ids and names. This removes it from that
    page; a logged-in page is passed through untouched."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def sending(message: dict[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if headers.get(b"content-type", b"").startswith(b"text/html"):
                    start = message  # an HTML page: held until its body is complete
                    return
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = b"".join(chunks)
                if b'"auth_required":true' in body:
                    body = _API_INFO.sub(_NO_API_INFO, body, count=1)
                headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
                await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, sending)


class LoginThrottled(Exception):
    """Too many failed logins for a name or from an address; says for how long."""


class LoginGuard:
    """Wraps a `(name, password) -> bool` check with throttling and a log line per failure."""

    def __init__(
        self,
        check: Callable[[str, str], bool],
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.check, self.clock = check, clock
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._failures: dict[str, list[float]] = {}  # "name:x" / "addr:y" -> failure times
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < WINDOW]
        self._failures[key] = times
        return times

    def wait(self, name: str, address: str) -> float:
        """Seconds until `name` may try again from `address` (0: now)."""
        now = self.clock()
        with self._lock:
            waits = []
            for key in (f"name:{name}", f"addr:{address}"):
                times = self._recent(key, now)
                if len(times) >= FREE_FAILURES:
                    lock = min(2.0 ** (len(times) - FREE_FAILURES + 1), MAX_LOCK)
                    waits.append(times[-1] + lock - now)
            return max([0.0, *waits])

    def verify(self, name: str, password: str) -> bool:
        address = CLIENT.get()
        wait = self.wait(name, address)
        if wait > 0:
            self.log(f"login: refused for {name!r} from {address}: too many failures, {wait:.0f} s left")
            raise LoginThrottled(f"too many failed logins; try again in {wait:.0f} s")
        if self.check(name, password):
            with self._lock:
                self._failures.pop(f"name:{name}", None)
                self._failures.pop(f"addr:{address}", None)
            return True
        now = self.clock()
        with self._lock:
            for key in (f"name:{name}", f"addr:{address}"):
                self._failures.setdefault(key, []).append(now)
            n = len(self._recent(f"name:{name}", now))
        self.log(f"login: failed for {name!r} from {address} ({n} for this name in {WINDOW / 60:.0f} min)")
        return False


def end_sessions(
    tokens: MutableMapping[str, str], names: set[str], log: Callable[[str], None] | None = None
) -> int:
    """Forget the session tokens of `names` (Gradio's token -> user map); returns how many."""
    gone = [t for t, user in list(tokens.items()) if user in names]
    for t in gone:
        tokens.pop(t, None)
    if gone:
        (log or (lambda line: print(line, file=sys.stderr, flush=True)))(
            f"login: ended {len(gone)} session(s) of {', '.join(sorted(names))}: password or role changed"
        )
    return len(gone)
