"""`python -m backends.worker.serve --model M --state FILE`: a generation server for one model
(backends/core/runs/genservers.py starts, reuses and stops them).

It speaks the part of OpenAI's HTTP API the studio uses, so vLLM's server can stand in for it
unchanged: `POST /v1/chat/completions` (`messages`, `max_tokens`, `temperature`, `top_p`,
`seed`, `stream`: server-sent events of `choices[0].delta.content`, then `data: [DONE]`) for
the Chat tab; `POST /v1/completions` (a list of `prompt`s, `n` answers each, in one batch) for
runs that generate through a warm server (`eval.warm`, backends/worker/generation.py);
`GET /v1/models`, and `GET /health`.

The engine: vLLM's server where it is installed (backends/worker/serve_vllm.py: on a GPU, or its
CPU build in an environment of its own); elsewhere transformers generates here, one request at
a time: chat answers streamed token by token, completions batched as the workers batch them.

The state file (JSON) says where the server listens and how it is: `loading`, then `ready`
(with device, dtype, engine), or `failed` with the reason. After `--idle` seconds without a
request the server exits and removes it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from backends.core.runs.rundir import atomic_write_text

MAX_NEW_TOKENS = 1024  # a request asking for more is refused, not silently cut


class Model:
    """The loaded model and tokenizer; `stream` yields the answer's text piece by piece."""

    def __init__(self, name: str) -> None:
        import torch

        from backends.core.spec.config import ModelConfig
        from backends.worker.generation import generation_dtype
        from backends.worker.models import load_causal_lm, load_tokenizer

        cfg = ModelConfig(name_or_path=name)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.dtype, _ = generation_dtype(cfg, self.device)
        self.tok = load_tokenizer(cfg)
        self.model = load_causal_lm(cfg, "sdpa", dtype=getattr(torch, self.dtype)).to(self.device).eval()
        self.lock = threading.Lock()  # one generation at a time: a second request waits

    def stream(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float, top_p: float, seed: int
    ):
        import torch
        from transformers import TextIteratorStreamer

        text = self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        enc = self.tok(text, return_tensors="pt", add_special_tokens=False).to(self.device)
        streamer = TextIteratorStreamer(self.tok, skip_prompt=True, skip_special_tokens=True)
        kwargs = {
            **enc,
            "streamer": streamer,
            "max_new_tokens": max_tokens,
            "do_sample": temperature > 0,
            "temperature": temperature if temperature > 0 else None,
            "top_p": top_p if temperature > 0 else None,
            "top_k": None,
            "pad_token_id": self.tok.pad_token_id,
        }
        with self.lock:
            torch.manual_seed(seed)
            errors: list[BaseException] = []

            def run() -> None:
                try:
                    with torch.no_grad():
                        self.model.generate(**kwargs)
                except BaseException as e:  # noqa: BLE001 - re-raised in the request's thread below
                    errors.append(e)
                    streamer.end()

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            yield from (piece for piece in streamer if piece)
            worker.join()
            if errors:
                raise errors[0]

    def complete(
        self, prompts: list[str], n: int, max_tokens: int, temperature: float, seed: int
    ) -> list[list[str]]:
        """`n` answers per prompt (texts as they are, no chat template added), in batches."""
        from backends.worker.generation import GENERATION_BATCH, generate_transformers

        batch = max(1, GENERATION_BATCH.get(self.device, 32) // n)
        with self.lock:
            return generate_transformers(
                self.model, self.tok, prompts, n, max_tokens, temperature, batch, seed
            )


def completion_settings(body: dict[str, Any]) -> tuple[list[str], int, int, float, int]:
    """(prompts, n, max_tokens, temperature, seed) of a completions request, or ValueError."""
    prompts = [body["prompt"]] if isinstance(body.get("prompt"), str) else body.get("prompt")
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise ValueError("`prompt` must be a text or a non-empty list of texts")
    n = body.get("n", 1)
    if not isinstance(n, int) or not 1 <= n <= 64:
        raise ValueError(f"`n` is {n!r}; expected 1 to 64")
    settings = {**body, "messages": [{"role": "user", "content": ""}]}  # the checks chat requests get
    _, max_tokens, temperature, _, seed = request_settings(settings)
    return prompts, n, max_tokens, temperature, seed


def request_settings(body: dict[str, Any]) -> tuple[list[dict[str, str]], int, float, float, int]:
    """The request's messages and sampling settings, or ValueError naming the bad field."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("`messages` must be a non-empty list of {role, content}")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"`messages[{i}].role` must be system, user or assistant")
        if not isinstance(m.get("content"), str):
            raise ValueError(f"`messages[{i}].content` must be text")
    max_tokens = body.get("max_tokens", 256)
    if not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_NEW_TOKENS:
        raise ValueError(f"`max_tokens` is {max_tokens!r}; expected 1 to {MAX_NEW_TOKENS}")
    temperature, top_p = body.get("temperature", 0.7), body.get("top_p", 1.0)
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        raise ValueError(f"`temperature` is {temperature!r}; expected 0 to 2")
    if not isinstance(top_p, int | float) or not 0 < top_p <= 1:
        raise ValueError(f"`top_p` is {top_p!r}; expected more than 0, at most 1")
    seed = body.get("seed", 0)
    if not isinstance(seed, int):
        raise ValueError(f"`seed` is {seed!r}; expected a whole number")
    return messages, max_tokens, float(temperature), float(top_p), seed


def make_handler(model: Model, name: str, touched: list[float]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # one line per request on stderr
            sys.stderr.write(f"serve: {self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

        def _json(self, code: int, obj: Any) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path == "/health":
                self._json(
                    200,
                    {"model": name, "device": model.device, "dtype": model.dtype, "engine": "transformers"},
                )
            elif self.path == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": name, "object": "model"}]})
            else:
                self._json(404, {"error": {"message": f"no such path: {self.path}"}})

        def do_POST(self) -> None:  # noqa: N802
            touched[0] = time.time()
            if self.path == "/v1/completions":
                self._complete()
                return
            if self.path != "/v1/chat/completions":
                self._json(404, {"error": {"message": f"no such path: {self.path}"}})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                settings = request_settings(body)
            except ValueError as e:
                self._json(400, {"error": {"message": str(e)}})
                return
            pieces = model.stream(*settings)
            if not body.get("stream"):
                try:
                    text = "".join(pieces)
                except Exception as e:  # noqa: BLE001 - the client gets the reason, not a dropped connection
                    self._json(500, {"error": {"message": f"{type(e).__name__}: {e}"}})
                    return
                message = {"role": "assistant", "content": text}
                self._json(200, {"model": name, "choices": [{"index": 0, "message": message}]})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for piece in pieces:
                    chunk = {"model": name, "choices": [{"index": 0, "delta": {"content": piece}}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    touched[0] = time.time()
            except Exception as e:  # noqa: BLE001 - the client sees the reason in the stream
                self.wfile.write(
                    f"data: {json.dumps({'error': {'message': f'{type(e).__name__}: {e}'}})}\n\n".encode()
                )
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _complete(self) -> None:
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                prompts, n, max_tokens, temperature, seed = completion_settings(body)
            except ValueError as e:
                self._json(400, {"error": {"message": str(e)}})
                return
            try:
                out = model.complete(prompts, n, max_tokens, temperature, seed)
            except Exception as e:  # noqa: BLE001 - the client gets the reason, not a dropped connection
                self._json(500, {"error": {"message": f"{type(e).__name__}: {e}"}})
                return
            finally:
                touched[0] = time.time()
            choices = [
                {"index": i * n + j, "text": t} for i, texts in enumerate(out) for j, t in enumerate(texts)
            ]
            self._json(200, {"model": name, "object": "text_completion", "choices": choices})

    return Handler


def write_state(path: Path, **fields: Any) -> None:
    atomic_write_text(path, json.dumps({"pid": os.getpid(), **fields}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backends.worker.serve")
    ap.add_argument("--model", required=True)
    ap.add_argument("--state", required=True, type=Path)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument(
        "--idle", type=float, default=600.0, help="exit after this many seconds without a request"
    )
    args = ap.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), BaseHTTPRequestHandler)
    port = server.server_address[1]
    write_state(
        args.state,
        state="loading",
        port=port,
        model=args.model,
        engine="transformers",
        started_at=time.time(),
    )
    import torch

    from backends.worker.serve_vllm import exec_vllm, serve_engine

    engine, python, why = serve_engine("cuda" if torch.cuda.is_available() else "cpu")
    if python is not None:
        server.server_close()
        exec_vllm(args.model, port, args.state, engine, python, why)
    try:
        model = Model(args.model)
    except Exception as e:
        write_state(
            args.state, state="failed", port=port, model=args.model, error=f"{type(e).__name__}: {e}"[:500]
        )
        raise
    touched = [time.time()]
    server.RequestHandlerClass = make_handler(model, args.model, touched)
    write_state(
        args.state,
        state="ready",
        port=port,
        model=args.model,
        engine="transformers",
        device=model.device,
        dtype=model.dtype,
        started_at=time.time(),
    )
    print(f"serve: {args.model} on 127.0.0.1:{port}, transformers, {model.dtype} ({why})", flush=True)

    def idle_watch() -> None:
        while time.time() - touched[0] < args.idle or model.lock.locked():
            time.sleep(min(1.0, args.idle / 4))
        print(f"serve: idle for {args.idle:.0f} s, stopping", flush=True)
        server.shutdown()

    threading.Thread(target=idle_watch, daemon=True).start()
    try:
        server.serve_forever()
    finally:
        args.state.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
