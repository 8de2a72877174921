"""Registry throughput and listing latency, on a registry this script builds in a temporary folder.

- metric rows/s written by one worker process, and by 4 at once (each its own Registry), in
  batches of 100 rows as the tracker flushes them;
- `Registry.runs()` latency on 10,000 runs and 1,000,000 metric rows (median of several calls),
  and the wall time of a fresh `python -c` that opens the registry and lists 50 runs, which is
  what `ssnas runs` costs before its own formatting.

    python bench/registry_speed.py [--runs 10000] [--metric-rows 1000000] [--batches 400]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ssnas.registry import Registry

BATCH = 100
CONFIG = {
    "run": {"name": "bench", "stage": "search", "seed": 0, "device": "cuda", "tags": ["bench"]},
    "data": {"dataset": "mmimdb", "path": "data/mmimdb.h5", "label_ratio": 0.1, "batch_size": 96},
    "space": {"cells": 2, "steps": 1, "C": 192, "L": 16, "cell_multiplier": 2,
              "primitives": ["zero", "sum", "attention", "linear_glu", "concat_fc"]},
    "search": {"objective": "ssl", "epochs": 12, "lr": 1e-3, "arch_lr": 3e-4, "temperature": 0.1, "order": 1},
    "views": {"policy": "cross_modal", "noise": 0.1, "channel_dropout": 0.1, "position_mask": 0.1},
    "pretrain": {"epochs": 20, "lr": 1e-3}, "finetune": {"epochs": 20, "lr": 1e-4},
}


def write_batches(path: str, run_id: str, batches: int, start_at: float) -> float:
    """One writer process: `batches` flushes of BATCH rows; returns its own seconds of writing."""
    registry = Registry(path)
    rows = [[(run_id, b * BATCH + i, b, "train", "loss", 1.0 / (i + 1), 0.0) for i in range(BATCH)]
            for b in range(batches)]
    time.sleep(max(0.0, start_at - time.time()))
    began = time.perf_counter()
    for batch in rows:
        registry.add_metrics(batch)
    elapsed = time.perf_counter() - began
    registry.close()
    return elapsed


def writers_at_once(path: str, count: int, batches: int) -> float:
    """Rows/s of `count` writer processes started together (total rows over the slowest writer's time)."""
    with Registry(path) as registry:
        run_ids = [registry.create_run(name=f"writer{k}", stage="search", config={}) for k in range(count)]
    start_at = time.time() + 1.5  # all have imported and opened by then
    code = ("import sys; from bench.registry_speed import write_batches as w; "
            "print(w(*sys.argv[1:3], int(sys.argv[3]), float(sys.argv[4])))")
    procs = [subprocess.Popen([sys.executable, "-c", code, path, run_id, str(batches), str(start_at)],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
             for run_id in run_ids]
    slowest = max(float(p.communicate()[0]) for p in procs)
    if any(p.returncode for p in procs):
        raise SystemExit("a writer failed")
    return count * batches * BATCH / slowest


def build(path: str, runs: int, metric_rows: int) -> list[str]:
    """A registry shaped like a long project: sweeps of search/pretrain/finetune runs, most finished."""
    rng = random.Random(0)
    per_run = max(1, metric_rows // runs)
    ids = []
    with Registry(path) as registry:
        for k in range(runs):
            stage = ("search", "pretrain", "finetune")[k % 3]
            config = json.loads(json.dumps(CONFIG))
            config["search"]["epochs"] = rng.choice([4, 8, 12])
            config["data"]["label_ratio"] = rng.choice([0.01, 0.05, 0.1, 0.5, 1.0])
            ids.append(registry.create_run(
                name=f"run{k}", stage=stage, config=config, dataset="mmimdb", seed=k % 5,
                label_ratio=config["data"]["label_ratio"], objective="ssl", group_id=f"g{k // 30}",
                parent_id=ids[-1] if stage != "search" else None, tags=["bench"] if k % 7 else ["bench", "best"],
            ))
            registry.update_run(ids[-1], status=rng.choice(["finished"] * 8 + ["failed", "killed"]))
        rows = []
        for k, run_id in enumerate(ids):
            dev = 5 if k % 3 == 2 else 0
            for step in range(per_run - dev - (1 if dev else 0)):
                rows.append((run_id, step, step // 10, "train", "loss", rng.random(), 0.0))
            for epoch in range(dev):
                rows.append((run_id, 1000 + epoch, epoch, "dev", "f1_weighted", rng.random(), 0.0))
            if dev:
                rows.append((run_id, 2000, dev, "test", "f1_weighted", rng.random(), 0.0))
            if len(rows) >= 100_000:
                registry.add_metrics(rows)
                rows = []
        registry.add_metrics(rows)
    return ids


def median_ms(call, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--metric-rows", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=400, help="batches of 100 rows per writer")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        rows = []
        one = writers_at_once(f"{folder}/w1.db", 1, args.batches)
        rows.append(("write: 1 writer process, batches of 100", f"{one:,.0f} rows/s"))
        four = writers_at_once(f"{folder}/w4.db", 4, args.batches)
        rows.append(("write: 4 writer processes at once, batches of 100", f"{four:,.0f} rows/s (total)"))

        path = f"{folder}/big.db"
        began = time.perf_counter()
        ids = build(path, args.runs, args.metric_rows)
        rows.append((f"build: {args.runs:,} runs + {args.metric_rows:,} metric rows", f"{time.perf_counter() - began:.1f} s"))
        with Registry(path) as registry:
            queries = {
                "runs(limit=50)": lambda: registry.runs(limit=50),
                "runs() all": lambda: registry.runs(),
                "runs(status='finished', stage='finetune', limit=50)":
                    lambda: registry.runs(status="finished", stage="finetune", limit=50),
                "runs(where=\"search.epochs >= 8 AND label_ratio < 0.1\", limit=50)":
                    lambda: registry.runs(where="search.epochs >= 8 AND label_ratio < 0.1", limit=50),
                "runs(where=\"metric.test.f1_weighted > 0.5\")":
                    lambda: registry.runs(where="metric.test.f1_weighted > 0.5"),
                "runs(sort='-metric.test.f1_weighted', limit=50)":
                    lambda: registry.runs(sort="-metric.test.f1_weighted", limit=50),
                "runs(tag='best', sort='-best_f1', limit=50)": lambda: registry.runs(tag="best", sort="-best_f1", limit=50),
                "runs_changed_since(latest)": lambda: registry.runs_changed_since(args.runs * 2),
                "get_run(8-char prefix)": lambda: registry.get_run(ids[len(ids) // 2][:8]),
                "metrics(run, after=last-10)": lambda: registry.metrics(ids[-1], after=args.metric_rows - 10),
            }
            for name, call in queries.items():
                rows.append((name, f"{median_ms(call):.2f} ms"))
        code = f"from ssnas.registry import Registry; Registry({path!r}, create=False).runs(limit=50)"
        cold = median_ms(lambda: subprocess.run([sys.executable, "-c", code], check=True), repeat=5)
        rows.append(("fresh process: import + open + runs(limit=50)", f"{cold:.0f} ms"))
        runs_dir = Path(folder) / "cli"
        runs_dir.mkdir()
        os.replace(path, runs_dir / "registry.db")
        command = [sys.executable, "-m", "ssnas.cli", "--runs", str(runs_dir), "runs"]
        cli = median_ms(lambda: subprocess.run(command, check=True, capture_output=True), repeat=5)
        rows.append(("`ssnas runs` (a whole CLI process, table of 50)", f"{cli:.0f} ms"))
        where = [*command, "--where", "metric.test.f1_weighted > 0.5", "--sort", "-test_f1"]
        cli_where = median_ms(lambda: subprocess.run(where, check=True, capture_output=True), repeat=5)
        rows.append(("`ssnas runs --where ... --sort -test_f1` (CLI process)", f"{cli_where:.0f} ms"))

    width = max(len(name) for name, _ in rows)
    print(f"SQLite {sqlite3.sqlite_version}, Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 24}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
