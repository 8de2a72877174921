#!/usr/bin/env bash
# The device check, prepared to run once on a lent GPU machine from the repository root (about
# 8 minutes): installs, runs the tests that need CUDA, then the speed benchmarks. Output lands in $OUT.
set -euo pipefail
OUT=${OUT:-/tmp/ssnas-gpu}
mkdir -p "$OUT"
python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
.venv/bin/pytest -q tests/test_device.py tests/test_networks.py tests/test_optimized_path.py 2>&1 | tee "$OUT/tests.txt"
.venv/bin/python bench/search_speed.py --steps 50 --device cuda 2>&1 | tee "$OUT/search_speed.txt"
.venv/bin/python bench/search_time.py --device cuda --bf16 --compile 2>&1 | tee "$OUT/search_time.txt"
.venv/bin/python bench/pipeline_speed.py --repeats 1 2>&1 | tee "$OUT/pipeline_speed.txt"
