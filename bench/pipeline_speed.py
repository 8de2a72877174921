"""Wall time of the shipped pipeline recipe, before and after, on the same machine in one run.

"before" is the code at a git commit (default: the last one before the speed work of issue 6),
checked out into a temporary worktree and run with this venv; "after" is this checkout, on its
optimized path and with `--eager`. Each variant runs `ssnas run recipes/pipeline.toml` (search ->
pretrain -> finetune on the embedded synthetic set) in a fresh runs folder, and the variants take
turns, so that drift in the machine's speed touches them alike. It prints median and best times; with
`--record`, the median of "after" becomes the pipeline time the docs quote (bench/timings.py).

    python bench/pipeline_speed.py [--repeats 3] [--before d874712] [--recipe recipes/pipeline.toml] [--record]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import timings  # noqa: E402

BEFORE = "d874712"  # main before issue 6's optimized path, prestarted stages and pidfd wake-ups


def timed_run(source: Path, recipe: str, runs: Path, extra: list[str]) -> float:
    """Seconds for one `ssnas run` of `recipe` with the ssnas package found in `source`."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ssnas.cli", "--runs", str(runs), "run", recipe, *extra], cwd=source,
                   env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", default=BEFORE, help="git commit of the 'before' code")
    parser.add_argument("--recipe", default="recipes/pipeline.toml", help="relative to the repository root")
    parser.add_argument("--record", action="store_true", help="store the median of 'after' and rewrite the docs")
    args = parser.parse_args()
    timings.refuse_other_recipes(parser, args)

    scratch = Path(tempfile.mkdtemp(prefix="ssnas-pipeline-speed-"))
    worktree = scratch / "before"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.before], check=True,
                   capture_output=True)
    variants = {f"before ({args.before})": (worktree, []), "after, --eager": (ROOT, ["--eager"]),
                "after": (ROOT, [])}
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for repeat in range(args.repeats):
            for name, (source, extra) in variants.items():
                runs = scratch / f"runs-{repeat}-{len(times[name])}-{name.split()[0]}"
                times[name].append(timed_run(source, args.recipe, runs, extra))
                print(f"  {name:<22} run {repeat + 1}: {times[name][-1]:.2f} s", file=sys.stderr, flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)

    reference = statistics.median(times[f"before ({args.before})"])
    print(f"ssnas run {args.recipe}: {args.repeats} runs each, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'code':<24} {'median s':>9} {'best s':>7} {'speed-up':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<24} {median:>9.2f} {min(values):>7.2f} {reference / median:>8.2f}x")
    if args.record:
        timings.publish({"pipeline_recipe": (statistics.median(times["after"]), "s")})


if __name__ == "__main__":
    main()
