"""Wall time of a whole SSL search at MM-IMDB's size and shapes: the figure a user waits for.

BM-NAS's MM-IMDB protocol: 15,552 training and 2,608 dev samples, C=192, L=16, 2 cells of 1 step,
batch 96, 12 epochs (random features; the time does not depend on their values). Prints the
search's wall time (set-up included) and its steady samples per second, eager and optimized
(and compiled with --compile), each in a fresh subprocess. With `--record` (and --compile --bf16 on a CPU)
it stores what compiling costs and gains there, the figures the docs quote (bench/timings.py).

    python bench/search_time.py [--epochs 12] [--device auto] [--bf16] [--compile] [--record]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import timings  # noqa: E402
from search_speed import mmimdb_sized  # noqa: E402

TRAIN, DEV = 15_552, 2_608


def measure(epochs: int, device: str, bf16: bool, eager: bool, compile_: bool) -> dict:
    import torch

    from ssnas.config.runtime import Runtime
    from ssnas.config.stages import SearchConfig
    from ssnas.config.views import ViewConfig
    from ssnas.reporting import InMemoryReporter
    from ssnas.stages.runtime import configure_threads
    from ssnas.stages.search import search

    configure_threads()
    features, space = mmimdb_sized(TRAIN, DEV)
    runtime = Runtime(seed=0, device=device, bf16=bf16, eager=eager, compile=compile_)
    stamps: list[float] = []

    class Stamps(InMemoryReporter):
        def progress(self, stage, done, total, loss=None):
            stamps.append(time.perf_counter())

    started = time.perf_counter()
    search(features, space, SearchConfig(objective="ssl", epochs=epochs, batch_size=96), ViewConfig(), runtime,
           Stamps())
    if runtime.torch_device().type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    steady = stamps[len(stamps) // 10:]  # after the first tenth: warm-up and compilation left out
    return {"wall_s": wall, "steps": len(stamps), "first_step_s": stamps[0] - started,
            "samples_per_s": 96 * (len(steady) - 1) / (steady[-1] - steady[0]), "device": str(runtime.torch_device())}


def compile_figures(rows: dict[str, dict]) -> dict[str, tuple[float, str]]:
    """The first-step cost of run.compile over the optimized path, and both paths' steady throughput."""
    compiled, optimized = rows["compiled"], rows["optimized"]
    return {"search_compile_overhead": (compiled["first_step_s"] - optimized["first_step_s"], "s"),
            "search_compiled_rate": (compiled["samples_per_s"], "samples/s"),
            "search_optimized_rate": (optimized["samples_per_s"], "samples/s")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--compile", action="store_true", help="add a row with run.compile")
    parser.add_argument("--record", action="store_true", help="store the compile figures and rewrite the docs")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.record and not (args.compile and args.bf16):
        parser.error("--record stores the figures the docs quote, of bf16 with and without compile: "
                     "add --compile --bf16")
    if args.one:
        print(json.dumps(measure(args.epochs, args.device, args.bf16, args.one == "eager", args.one == "compiled")))
        return
    paths = ["eager", "optimized"] + (["compiled"] if args.compile else [])
    print(f"SSL search, MM-IMDB size ({TRAIN} train, {DEV} dev) and shapes, batch 96, {args.epochs} epochs, "
          f"{'bf16' if args.bf16 else 'fp32'}, {platform.processor() or platform.machine()}")
    print(f"{'path':<10} {'device':<7} {'steps':>6} {'first step s':>12} {'samples/s':>10} {'wall s':>8}")
    rows = {}
    for path in paths:
        command = [sys.executable, __file__, "--one", path, "--epochs", str(args.epochs), "--device", args.device]
        out = subprocess.run(command + (["--bf16"] if args.bf16 else []), check=True, capture_output=True,
                             text=True).stdout
        row = rows[path] = json.loads(out.strip().splitlines()[-1])
        print(f"{path:<10} {row['device']:<7} {row['steps']:>6} {row['first_step_s']:>12.1f} "
              f"{row['samples_per_s']:>10.0f} {row['wall_s']:>8.1f}", flush=True)
    if args.record and rows["compiled"]["device"] != "cpu":
        print("not recorded: the docs quote these figures for a CPU", file=sys.stderr)
    elif args.record:
        timings.publish(compile_figures(rows))


if __name__ == "__main__":
    main()
