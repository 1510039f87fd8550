#!/bin/bash
# The device check prepared for a lent GPU machine (docs/GPU_CHECK.md): the fork server on a
# CUDA machine (do forked stages initialise CUDA in the child?), start-up cold against forked
# (bench/startup.py), the fork server's tests, and whether vLLM / flash-attn are on the image.
# Run bench/gpu_prepare.sh here first; then, through the device tool, in the repo root:
#   bash bench/gpu_check.sh        with carry [".whl", ".gpu"], timeout ~580 s (about 8 minutes)
# Six files come back in $OUT: env.txt, pipeline.log, stage_lines.txt, forkserver_tests.log,
# startup_gpu_1.json, startup_gpu_2.json.
export PYTHONUNBUFFERED=1
T0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl > /tmp/pip.log 2>&1 || { tail -20 /tmp/pip.log; exit 1; }
export PYTHONPATH=/tmp/site:$PWD/.gpu/site
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import sys,torch,transformers,trl,peft;print(sys.version.split()[0],'torch',torch.__version__,'cuda',torch.version.cuda,'avail',torch.cuda.is_available(),'transformers',transformers.__version__,'trl',trl.__version__,'peft',peft.__version__)"
  for m in vllm flash_attn; do python3 -c "import $m;print('$m', $m.__version__)" 2>&1 | tail -1; done
  nproc; free -g | head -2
} > $OUT/env.txt 2>&1
cat $OUT/env.txt
echo "--- setup $(( $(date +%s) - T0 )) s"
# 1. the tiny InstructGPT pipeline with its stages forked from the fork server
rm -rf /tmp/r1; S=$(date +%s)
timeout 150 python3 launch.py --preset presets/tiny/instructgpt.yaml --headless --runs-dir /tmp/r1 > $OUT/pipeline.log 2>&1; echo "pipeline rc=$? wall $(( $(date +%s) - S )) s" | tee -a $OUT/pipeline.log
grep -h -o '"device": *"[a-z:0-9]*"' /tmp/r1/*/status.json | sort | uniq -c | tee -a $OUT/pipeline.log
grep -h -i "fork\|cuda\|runtime:\|generation:" /tmp/r1/*/stdout.log | sort | uniq -c | sort -rn | head -30 > $OUT/stage_lines.txt
grep -h "pipeline\|succeeded\|failed\|FAILED\|Error" $OUT/pipeline.log | tail -25
tail -5 $OUT/stage_lines.txt
echo "--- after pipeline $(( $(date +%s) - T0 )) s"
# 2. forked runs train as cold ones, outlive their server (now on CUDA)
timeout 100 python3 -m pytest -q -x -p no:cacheprovider tests/backends/test_forkserver.py > $OUT/forkserver_tests.log 2>&1; echo "forkserver tests rc=$?"; tail -5 $OUT/forkserver_tests.log
echo "--- after tests $(( $(date +%s) - T0 )) s"
# 3. start-up cold vs forked
for r in 1 2; do timeout 160 python3 bench/startup.py --rounds 1 > $OUT/startup_gpu_$r.json 2> /tmp/startup_gpu_$r.err; echo "startup round $r rc=$? at $(( $(date +%s) - T0 )) s"; grep -A8 '"median"' $OUT/startup_gpu_$r.json; grep '_s"\|over_import' $OUT/startup_gpu_$r.json | tail -9; tail -3 /tmp/startup_gpu_$r.err; done
echo "--- total $(( $(date +%s) - T0 )) s"
