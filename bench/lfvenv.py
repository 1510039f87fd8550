"""Install LLaMA-Factory 0.9.5 into its own virtual environment, beside the project's torch.

    python bench/lfvenv.py [--venv /work/lf-venv]

Why each step (shared/FIELD_NOTES.md, re-checked here): torch is installed first and pinned
with a constraints file (else pip pulls torch 2.14 with CUDA wheels through torchvision);
torchvision and torchaudio are removed after (with torch 2.13 CPU they fail at import and
break `transformers`; text-only SFT/DPO never call them). LLaMA-Factory 0.9.5 still imports
torchaudio at module import (`llamafactory/data/mm_plugin.py`), so a stub package stands in
for it: importing works, using it raises and says why.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

LF_VERSION = "0.9.5"
TORCH = "torch==2.13.0"


def pip(venv: Path, *args: str) -> None:
    cmd = [str(venv / "bin" / "python"), "-m", "pip", *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def install(venv: Path) -> Path:
    """Create `venv` with LLaMA-Factory; return its `llamafactory-cli`."""
    cli = venv / "bin" / "llamafactory-cli"
    if cli.exists():
        write_torchaudio_stub(venv)
        return cli
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip(venv, "install", "-q", "--upgrade", "pip")
    # The CPU wheel of the project's torch (PIP_FIND_LINKS holds it here; else PyPI's).
    pip(venv, "install", "-q", TORCH)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(TORCH + "\n")
    pip(venv, "install", "-q", "-c", f.name, f"llamafactory=={LF_VERSION}")
    # Installed by llamafactory's requirements but broken against torch 2.13 CPU (see above).
    pip(venv, "uninstall", "-y", "torchvision", "torchaudio")
    write_torchaudio_stub(venv)
    return cli


STUB = '''"""Stand-in for torchaudio (bench/lfvenv.py): LLaMA-Factory imports it at module import, and
the registry's torchaudio does not load against torch 2.13 CPU. Text-only training never uses it."""


def __getattr__(name):
    raise ImportError(f"torchaudio.{name}: this venv has a stub torchaudio (audio data is not supported here)")
'''


def write_torchaudio_stub(venv: Path) -> None:
    purelib = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stub = Path(purelib) / "torchaudio"
    stub.mkdir(exist_ok=True)
    (stub / "__init__.py").write_text(STUB, encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", default="/work/lf-venv")
    print(install(Path(ap.parse_args().venv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
