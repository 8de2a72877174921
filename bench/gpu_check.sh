#!/usr/bin/env bash
# The device check, prepared to run once on a lent GPU machine from the repository root:
# installs, runs the tests that need CUDA, then the search benchmark. Output lands in $OUT.
set -euo pipefail
OUT=${OUT:-/tmp/ssnas-gpu}
mkdir -p "$OUT"
python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
.venv/bin/pytest -q tests/test_device.py tests/test_networks.py 2>&1 | tee "$OUT/tests.txt"
.venv/bin/python bench/search_speed.py --steps 50 --device cuda 2>&1 | tee "$OUT/search_speed.txt"
