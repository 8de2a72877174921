"""The paper's synthetic sweep with label-free stages shared and without: same results, less time.

Runs `ssnas run recipes/paper_synthetic.toml --max-parallel 2` twice in one invocation, each in a
fresh runs folder: first with sharing off (`--no-share`: one search -> pretrain -> finetune chain per
arm x sweep point, as before issue 12), then on (one SSL search and one pretraining per seed, linked to
every chain that needs it; ssnas.stage_key). It prints wall time and run counts per variant, then
checks that every chain (arm, label ratio, seed) trained the same genotype and scored the same test
F1 in both, printing any difference; the exit status is 1 when one differs. `run s` is the runs' own
wall times summed (`ended_at - started_at`): the work done, less what waiting between runs adds.

    python bench/shared_stages.py [--quick] [--max-parallel 2] [--keep DIR] [--set KEY=VALUE ...]

`--quick` runs one seed and two label ratios (a sanity check of a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ssnas.recipe import arm_of  # noqa: E402
from ssnas.registry import Registry  # noqa: E402
from ssnas.runs.lookup import run_folder  # noqa: E402

QUICK = ["sweep.seed=[0]", "sweep.label_ratio=[0.1, 1.0]"]


def run_sweep(runs: Path, recipe: str, overrides: list[str], max_parallel: int, share: bool) -> float:
    """Seconds for one `ssnas run` of the recipe into `runs`."""
    sets = [arg for text in overrides for arg in ("--set", text)]
    arguments = ["--runs", str(runs), "run", recipe, "--max-parallel", str(max_parallel), *sets]
    command = [sys.executable, "-m", "ssnas.cli", *arguments, "--share" if share else "--no-share"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"ssnas run failed ({done.returncode}) in {runs}")
    return seconds


def chains(runs: Path) -> tuple[Counter, dict[tuple, tuple[str | None, float | None, str]]]:
    """Runs by stage and status (and their summed wall time), and per chain (arm, r, seed): its genotype (JSON),
    test F1 weighted and status."""
    with Registry(runs / "registry.db", create=False, readonly=True) as registry:
        every = registry.runs(config=False)
        counts = Counter(run.stage for run in every) + Counter(f"status {run.status}" for run in every)
        counts["run seconds"] = round(sum(run.ended_at - run.started_at for run in every
                                          if run.started_at and run.ended_at))
        found = {}
        for run in every:
            if run.stage != "finetune":
                continue
            folder = run_folder(runs, run)
            genotype = folder / "genotype.json"
            results = folder / "results.json"
            f1 = json.loads(results.read_text())["test"]["weighted"] if results.is_file() else None
            found[(arm_of(run.tags) or "-", run.label_ratio, run.seed)] = (
                json.dumps(json.loads(genotype.read_text()), sort_keys=True) if genotype.is_file() else None,
                f1, run.status)
    return counts, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/paper_synthetic.toml", help="relative to the repository root")
    parser.add_argument("--quick", action="store_true", help="one seed, two label ratios: " + " ".join(QUICK))
    parser.add_argument("--max-parallel", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--keep", type=Path,
                        help="leave the two runs folders here (default: a temporary folder, removed)")
    args = parser.parse_args()
    overrides = [*(QUICK if args.quick else []), *args.overrides]

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="ssnas-shared-stages-"))
    results = {}
    try:
        for name, share in (("sharing off", False), ("sharing on", True)):
            runs = scratch / name.replace(" ", "-")
            if runs.exists():
                shutil.rmtree(runs)
            seconds = run_sweep(runs, args.recipe, overrides, args.max_parallel, share)
            counts, found = chains(runs)
            results[name] = (seconds, counts, found)
            print(f"  {name}: {seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)

    print_sweep_command(args.recipe, args.max_parallel, overrides)
    print(f"{'variant':<12} {'wall s':>8} {'run s':>7} {'runs':>5} {'searches':>9} {'pretrains':>10} "
          f"{'finetunes':>10} {'finished':>9}")
    for name, (seconds, counts, _) in results.items():
        runs = sum(counts[stage] for stage in ("search", "pretrain", "finetune"))
        print(f"{name:<12} {seconds:>8.1f} {counts['run seconds']:>7} {runs:>5} {counts['search']:>9} "
              f"{counts['pretrain']:>10} {counts['finetune']:>10} {counts['status finished']:>9}")
    (off_seconds, _, off), (on_seconds, _, on) = results["sharing off"], results["sharing on"]
    print(f"speed-up: {off_seconds / on_seconds:.2f}x ({on_seconds / off_seconds:.0%} of the time)")

    return report_chains({"off": off, "on": on})


def print_sweep_command(recipe: str, max_parallel: int, overrides: list[str]) -> None:
    """The `ssnas run` both variants ran, and the machine."""
    sets = [f"--set '{text}'" for text in overrides]
    command = " ".join(["ssnas run", recipe, f"--max-parallel {max_parallel}", *sets])
    print(f"{command}: {platform.machine()}, {os.cpu_count()} CPUs")


def report_chains(variants: dict[str, dict]) -> int:
    """Print whether every chain (arm, r, seed) of two variants trained the same genotype to the same test
    F1; 1 when one differs (the exit status), else 0."""
    (first, a), (second, b) = variants.items()
    differences = []
    for chain in sorted(set(a) | set(b), key=lambda c: (c[0], c[1] or 0, c[2] or 0)):
        before, after = a.get(chain), b.get(chain)
        if before is None or after is None:
            differences.append(f"{chain}: only {second if before is None else first}")
        elif before[2] != "finished" or after[2] != "finished":
            differences.append(f"{chain}: status {first} {before[2]}, {second} {after[2]}")
        elif before[:2] != after[:2]:
            what = [w for w, x, y in (("genotype", before[0], after[0]), ("test F1", before[1], after[1])) if x != y]
            differences.append(f"{chain}: {' and '.join(what)} differ: {first} F1 {before[1]}, "
                               f"{second} F1 {after[1]}")
    print(f"chains compared: {len(set(a) | set(b))}; identical genotype and test F1: "
          f"{len(set(a) | set(b)) - len(differences)}")
    for line in differences:
        print(f"  DIFFERENT {line}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
