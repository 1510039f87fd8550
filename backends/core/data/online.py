"""Whether this machine can reach the Hugging Face hub, found once per process. No torch.

A hub id on an offline machine used to cost five outbound retries (transformers' and
datasets' own) before failing; the loaders ask here first and say at once that the machine
is offline. `HF_HUB_OFFLINE` / `HF_DATASETS_OFFLINE` answer without a probe; otherwise one TCP
connection to the hub's host (HF_ENDPOINT, else huggingface.co) with a short timeout.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from urllib.parse import urlparse

PROBE_TIMEOUT = 3.0  # seconds


@lru_cache(maxsize=1)
def hub_offline() -> str:
    """Why the hub cannot be reached ("" when it can)."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{var} is set"
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = (
        endpoint.hostname or "huggingface.co",
        endpoint.port or (443 if endpoint.scheme != "http" else 80),
    )
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
    except OSError as e:
        return f"{host} cannot be reached ({e.strerror or type(e).__name__})"
    return ""
