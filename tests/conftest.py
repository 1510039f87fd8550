"""Shared fixtures: no network, a private model cache, the tiny model built once."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Set before anything imports huggingface_hub / datasets / gradio.
os.environ.update(
    HF_HUB_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    WANDB_MODE="disabled",
    GRADIO_ANALYTICS_ENABLED="False",
    TOKENIZERS_PARALLELISM="false",
)
# pytest-xdist runs TEST_WORKERS test files at once, each starting workers, studios and servers
# of its own: each gets its share of the cores for its math threads. torch's default (one
# thread per core in every process) oversubscribed 2 cores with 2 workers, and the waiting
# threads' spinning cost the suite ~3 minutes of CPU (docs/BENCHMARKS.md). Set before torch loads.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache for the session. The embedded model's converted copy is reused from the
    user's cache when present (converting takes ~40 s), so tests never write to that cache.
    With several workers (pytest-xdist) they share one cache, so each model is built once
    (backends/worker/builtin_models.build_once locks across processes)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        cache = tmp_path_factory.getbasetemp().parent / "cache"
    else:
        cache = tmp_path_factory.mktemp("cache")
    (cache / "models").mkdir(parents=True, exist_ok=True)
    user = Path.home() / ".cache" / "alignment-studio" / "models" / "smollm2-135m-instruct"
    link = cache / "models" / "smollm2-135m-instruct"
    if (user / "config.json").exists() and not link.exists():
        with contextlib.suppress(FileExistsError):  # another worker made the same link
            link.symlink_to(user)
    os.environ["ALIGNMENT_STUDIO_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session", autouse=True)
def warm_workers(model_cache: Path) -> Iterator[None]:
    """One fork server for the whole suite: the workers its tests start (in-process launchers,
    headless subprocesses, studios) fork from it instead of importing torch each
    (backends/core/runs/forkserver.py); a test that needs a cold start points
    $ALIGNMENT_STUDIO_FORKSERVER elsewhere. Up after ~6 s; workers started before that are cold."""
    from backends.core.runs import forkserver

    sock = Path(tempfile.gettempdir()) / f"alignment-studio-suite-{os.getpid()}.sock"
    os.environ[forkserver.SOCKET_ENV] = str(sock)
    proc = forkserver.start_server(ROOT, sys.executable, model_cache / f"forkserver-{os.getpid()}.log")
    yield
    forkserver.stop_server(proc)
    # generation servers that warm comparisons left loaded (they would exit after 10 idle
    # minutes); the other xdist worker's, while its tests generate through them, stay
    from backends.core.runs.genservers import ServerPool, servers_dir

    ServerPool(servers_dir()).stop_all(keep_leased=True)


@pytest.fixture(scope="session")
def tiny_model(model_cache: Path) -> str:
    """Path of the tiny random Llama (built locally with a trained BPE tokenizer)."""
    from backends.worker.models import resolve_model_path

    return resolve_model_path("builtin:tiny-llama")


@pytest.fixture(scope="session")
def embedded_model(model_cache: Path) -> str:
    """Path of the embedded SmolLM2 (converted from its GGUF once per cache, ~20-40 s)."""
    from backends.worker.models import resolve_model_path

    return resolve_model_path("builtin:smollm2-135m-instruct")


@pytest.fixture()
def runs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runs"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def tiny_reward_model(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A reward model as a `reward` run saves it: the tiny Llama with a scalar head (random,
    seeded: its scores are fixed, and differ from pair to pair)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("tiny-rm") / "model"
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


# The longest files, first: with several workers (`make test` runs two, a whole file each) a
# long file that starts last leaves the other worker idle at the end. Measured on 2 cores:
# the browser files take 40-150 s each, the rest mostly under 30 s.
LONG_FIRST = (
    "tests/studio/test_browser",
    "tests/studio/test_label_browser.py",
    "tests/studio/test_dataview.py",
    "tests/studio/test_app.py",
    "tests/backends/test_ray.py",
    "tests/backends/test_sweep.py",
    "tests/backends/test_processes.py",
    "tests/backends/test_methods.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return next((i for i, p in enumerate(LONG_FIRST) if path.startswith(p)), len(LONG_FIRST))

    items.sort(key=rank)  # stable: the order inside a file is kept
