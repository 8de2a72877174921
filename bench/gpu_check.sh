#!/usr/bin/env bash
# The device check, prepared to run once on a lent GPU machine from the repository root (about 9 minutes):
# installs, runs the tests that need CUDA, then the speed benchmarks of issue 15. Output lands in $OUT.
#
# BM-NAS's own step is measured beside ours when BMNAS_PATH names a BM-NAS checkout that travelled with
# the working tree (the device machine reaches no network): e.g. clone it to bench/.bmnas here (ignored
# by git) and pass `carry: ["bench/.bmnas"]`, then BMNAS_PATH=bench/.bmnas bash bench/gpu_check.sh.
set -euo pipefail
OUT=${OUT:-/tmp/ssnas-gpu}
mkdir -p "$OUT"
python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
.venv/bin/pytest -q tests/test_device.py tests/test_networks.py tests/test_optimized_path.py 2>&1 | tee "$OUT/tests.txt"
# ours against BM-NAS's step, both relaxations, batch 96 and 512 (eager and optimized tables as well)
for batch in 96 512; do
  .venv/bin/python bench/search_speed.py --steps 50 --batch "$batch" --device cuda --relaxations softmax,gumbel \
    --stages search:supervised,search:ssl ${BMNAS_PATH:+--bmnas "$BMNAS_PATH"} 2>&1 | tee "$OUT/search_speed_$batch.txt"
done
# a 12-epoch MM-IMDB-sized SSL search: eager, bf16 and compiled (CUDA graphs)
.venv/bin/python bench/search_time.py --device cuda --bf16 --compile 2>&1 | tee "$OUT/search_time.txt"
.venv/bin/python bench/pipeline_speed.py --repeats 1 2>&1 | tee "$OUT/pipeline_speed.txt"
