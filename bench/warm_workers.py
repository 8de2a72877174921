"""The paper's synthetic sweep with cold workers and warm ones: same results, less time (issue 15).

Runs `ssnas run recipes/paper_synthetic.toml --max-parallel 2` (by default one seed and two label ratios)
twice in one invocation, each in a fresh runs folder: first with every worker a fresh interpreter
(`SSNAS_WARM_WORKERS=0`), then with workers forked by the scheduler's fork server (the default;
ssnas.scheduling.warm). It prints wall time, the runs' summed wall time (`run s`), the run count and the
load average around each variant, then checks that every chain (arm, label ratio, seed) trained the same
genotype and scored the same test F1 in both; the exit status is 1 when one differs.

    python bench/warm_workers.py [--full] [--warm-first] [--record] [--max-parallel 2] [--keep DIR]
                                 [--set KEY=VALUE ...]

`--full` runs the whole recipe (three seeds, five ratios: about an hour for both variants on 2 cores).
`--record`, when both variants agree, stores what a warm worker saves per run and, with `--full` alone, the
warm sweep's wall time as the figures the docs quote (bench/timings.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timings  # noqa: E402
from shared_stages import QUICK, chains, print_sweep_command, report_chains, run_sweep  # noqa: E402

VARIANTS = (("cold", "0"), ("warm", "1"))


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def figures(results: dict, whole_recipe: bool) -> dict[str, tuple[float, str]]:
    """What the docs quote from a run of this benchmark: the run-seconds a warm worker saves per run and, for the
    whole recipe at its defaults, the warm sweep's wall time."""
    (_, cold, *_), (warm_seconds, warm, *_) = results["cold"], results["warm"]
    runs = sum(warm[stage] for stage in ("search", "pretrain", "finetune"))
    found = {"warm_worker_saving": ((cold["run seconds"] - warm["run seconds"]) / runs, "s")}
    if whole_recipe:
        found["paper_synthetic_sweep"] = (warm_seconds, "s")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/paper_synthetic.toml", help="relative to the repository root")
    parser.add_argument("--full", action="store_true", help="every seed and ratio (default: " + " ".join(QUICK) + ")")
    parser.add_argument("--max-parallel", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--keep", type=Path, help="leave the two runs folders here (default: removed)")
    parser.add_argument("--warm-first", action="store_true", help="run the warm variant first (load drifts)")
    parser.add_argument("--record", action="store_true", help="store the figures the docs quote and rewrite them")
    args = parser.parse_args()
    timings.refuse_other_recipes(parser, args)
    overrides = [*([] if args.full else QUICK), *args.overrides]

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="ssnas-warm-workers-"))
    results = {}
    try:
        for name, setting in VARIANTS[::-1] if args.warm_first else VARIANTS:
            runs = scratch / name
            if runs.exists():
                shutil.rmtree(runs)
            os.environ["SSNAS_WARM_WORKERS"] = setting  # the scheduler `ssnas run` starts inherits it
            before = load()
            seconds = run_sweep(runs, args.recipe, overrides, args.max_parallel, share=True)
            counts, found = chains(runs)
            results[name] = (seconds, counts, found, before, load())
            print(f"  {name}: {seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)

    print_sweep_command(args.recipe, args.max_parallel, overrides)
    print(f"{'variant':<8} {'wall s':>8} {'run s':>7} {'runs':>5} {'finished':>9}  load before / after (1, 5, 15 min)")
    for name, (seconds, counts, _, before, after) in results.items():
        runs = sum(counts[stage] for stage in ("search", "pretrain", "finetune"))
        print(f"{name:<8} {seconds:>8.1f} {counts['run seconds']:>7} {runs:>5} {counts['status finished']:>9}  "
              f"{before} / {after}")
    (cold_seconds, _, cold, _, _), (warm_seconds, _, warm, _, _) = results["cold"], results["warm"]
    print(f"speed-up: {cold_seconds / warm_seconds:.2f}x ({warm_seconds / cold_seconds:.0%} of the time)")

    status = report_chains({"cold": cold, "warm": warm})
    if args.record and status == 0:
        loads = [float(text.split()[0]) for *_, before, after in results.values() for text in (before, after)]
        whole_recipe = args.full and not args.overrides and args.max_parallel == 2
        timings.publish(figures(results, whole_recipe), timings.loaded_machine(loads))
    elif args.record:
        print("not recorded: the variants differ", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
