"""`ssnas tune` on the synthetic set: does a small study find a better search.arch_lr than the default?

In one fresh runs folder it runs bench/tune_arch_lr.toml as it is (a self-supervised search and the
searched genotype fine-tuned from scratch, at base.toml's arch_lr 3e-2), then an Optuna study of
`--trials` trials over search.arch_lr on the same recipe (TPE, median pruner, two trials in flight,
max-parallel 2), and prints side by side the default's dev and test F1 weighted and the best trial's,
the best chosen on dev F1 alone, then every trial and the budget (trials, wall time). Both use the same
seeds: the data, the labeled subset and the initialization are the same, only arch_lr differs. With
`--seeds N` every chain, the default's and each trial's, runs for seeds 0..N-1 (a sweep over run.seed)
and its scores are means over them: the objective a study should have when one seed's dev F1 moves in
steps as large as the differences it is asked to find. With `--record` (at the default trials and seeds) the
bench's whole wall time becomes the figure docs/tune.md quotes (bench/timings.py).

    python bench/tune_arch_lr.py [--trials 12] [--seeds 1] [--keep DIR] [--record]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import timings  # noqa: E402

from ssnas.recipe import load_recipe  # noqa: E402
from ssnas.registry import Registry  # noqa: E402
from ssnas.runs import launching  # noqa: E402
from ssnas.runs.launching import LaunchOptions  # noqa: E402
from ssnas.tune.summary import study_summary  # noqa: E402
from ssnas.tune.trials import chain_ends, kept_value  # noqa: E402
from ssnas.tune.tuner import TuneRequest, tune  # noqa: E402

RECIPE = ROOT / "bench" / "tune_arch_lr.toml"
KEY = "search.arch_lr"
STUDY = "tune_arch_lr"


def run_default(runs: Path, overrides: list[str], options: LaunchOptions) -> tuple[float, float, float]:
    """(dev F1 weighted at the kept epoch, test F1 weighted, seconds) of the recipe as it is: means over its
    chains (one per seed)."""
    started = time.perf_counter()
    launched = launching.submit(runs, str(RECIPE), ['run.tags=["default"]', *overrides], options)
    launching.wait_for(runs, launched.run_ids)
    seconds = time.perf_counter() - started
    with Registry(runs / "registry.db", create=False, readonly=True) as registry:
        runs_of_chains = [registry.get_run(run_id) for run_id in launched.run_ids]
        bad = [run for run in runs_of_chains if run.status != "finished"]
        if bad:
            raise SystemExit(f"the default chain did not finish: {bad[0].short_id} {bad[0].status} {bad[0].error}")
        ends = chain_ends(runs_of_chains)
        devs = [kept_value(registry, end, "f1_weighted") for end in ends]
    tests = [end.test_f1 for end in ends]
    assert all(value is not None for value in devs + tests)
    return statistics.fmean(devs), statistics.fmean(tests), seconds  # type: ignore[arg-type]


def aligned(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=1, help="chains per trial, seeds 0..N-1; scores are means")
    parser.add_argument("--keep", type=Path, help="runs folder to use and keep (default: a temporary one)")
    parser.add_argument("--record", action="store_true", help="store the bench's wall time and rewrite the docs")
    args = parser.parse_args()
    if args.record and (args.trials, args.seeds) != (12, 1):
        parser.error("--record stores the figure docs/tune.md quotes, of 12 trials of 1 seed: leave those out")
    began = time.perf_counter()
    runs = args.keep or Path(tempfile.mkdtemp(prefix="tune-bench-"))
    options = LaunchOptions(max_parallel=2)
    overrides = [f"sweep.seed={list(range(args.seeds))}"] if args.seeds > 1 else []
    default_lr = load_recipe(RECIPE).search[KEY.split(".")[1]]
    load_before = os.getloadavg()[0]
    print(f"runs folder {runs}; {platform.machine()}, {os.cpu_count()} CPUs, load average {load_before:.1f}",
          flush=True)
    try:
        dev, test, default_seconds = run_default(runs, overrides, options)
        print(f"default ({KEY}={default_lr:g}): dev {dev:.4f}, test {test:.4f}, {minutes(default_seconds)}", flush=True)
        started = time.perf_counter()
        request = TuneRequest(str(RECIPE), tuple(overrides), study=STUDY, trials=args.trials, launch=options)
        states = tune(runs, request,
                      lambda line: print(f"[{minutes(time.perf_counter() - started)}] {line}", flush=True))
        study_seconds = time.perf_counter() - started
        with Registry(runs / "registry.db", create=False, readonly=True) as registry:
            summary = study_summary(registry, STUDY)
    finally:
        if args.keep is None:
            shutil.rmtree(runs, ignore_errors=True)
    best = next(row for row in summary.trials if row.number == summary.best)
    assert best.value is not None and best.test_f1 is not None
    print()
    print(aligned([["", KEY, "dev F1 weighted", "test F1 weighted"],
                   ["default", f"{default_lr:.4g}", f"{dev:.4f}", f"{test:.4f}"],
                   [f"best trial ({best.number})", f"{best.params[KEY]:.4g}", f"{best.value:.4f}",
                    f"{best.test_f1:.4f}"],
                   ["best - default", "", f"{best.value - dev:+.4f}", f"{best.test_f1 - test:+.4f}"]]))
    told = ", ".join(f"{n} {state}" for state, n in states.items())
    print(f"budget: {args.trials} trials ({told}) of {args.seeds} seed(s) each, 2 in flight, max-parallel 2; "
          f"study wall {minutes(study_seconds)}"
          f" (the default chain: {minutes(default_seconds)}); load average {load_before:.1f} -> "
          f"{os.getloadavg()[0]:.1f}")
    print()
    print(aligned([summary.columns(), *summary.cells()]))
    for line in summary.notes():
        print(line)
    if args.record:
        machine = timings.loaded_machine([load_before, os.getloadavg()[0]])
        timings.publish({"tune_arch_lr_bench": (time.perf_counter() - began, "s")}, machine)


if __name__ == "__main__":
    main()
