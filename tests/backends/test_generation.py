"""The Generator says in the log which engine, weight dtype and batch it used."""

from __future__ import annotations

import pytest

from backends.core.spec.config import ModelConfig
from backends.worker.generation import GENERATION_BATCH, Generator


def test_the_log_line_names_engine_dtype_and_batch(
    tiny_model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = Generator(ModelConfig(name_or_path="builtin:tiny-llama", dtype="float32"), "cpu", "sdpa")
    prompts = [[{"role": "user", "content": f"say {i}"}] for i in range(3)]
    outs = gen.generate(prompts, 2, 4, 1.0, 2, seed=0)
    assert [len(o) for o in outs] == [2, 2, 2]
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("generation:")]
    assert line == [
        "generation: engine transformers, dtype float32, batch 2 prompt(s) x 2 sample(s) = 4 sequences "
        "per call (no GPU for vLLM; model.dtype)"
    ]
    gen.generate(prompts, 2, 4, 1.0, 2, seed=1)  # the same batch again: no new line
    assert "generation:" not in capsys.readouterr().out
    gen.generate(prompts, 4, 4, 1.0, None, seed=1)  # no batch: the measured default, in sequences
    again = capsys.readouterr().out
    per_call = GENERATION_BATCH["cpu"] // 4
    assert f"batch {per_call} prompt(s) x 4 sample(s) = {per_call * 4} sequences" in again
    assert str(gen.model.dtype) == "torch.float32"
