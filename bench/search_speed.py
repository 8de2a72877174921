"""Training-step throughput at BM-NAS's MM-IMDB shapes: ours against BM-NAS's own search step, eager against optimized.

One search step = one network-weight update and one architecture-weight update (first-order
DARTS), each on its own batch; pretrain and fine-tune steps are one update of the fixed network
of the bundled BM-NAS genotype. Shapes: C=192, L=16, six input nodes (four 512-channel VGG maps
pooled to 4x4, and 64- and 128-dim text vectors), 2 cells of 1 step, batch 96, 23 labels.
Every row runs in a fresh subprocess, so that its peak memory is its own (peak RSS on CPU, which
includes the synthetic inputs; peak allocated on CUDA). The eager and optimized paths (`run.eager`)
of each stage and precision are printed side by side; bf16 rows only where it is native.

Each stage runs one epoch of exactly `--steps` steps (its `min_steps` is set to 0: the stages' own
floor of 300-400 steps would otherwise run while the clock divides by `--steps`).

First table, the search stages against BM-NAS's own search step (bench/bmnas_reference.py, run from
the checkout given by `--bmnas` or the environment's BMNAS_PATH; the BM-NAS column is skipped with a
note when neither is given): for each search stage and relaxation (`--relaxations`, ours: "softmax"
is DARTS, "gumbel" GDAS's one sampled primitive per step), our optimized fp32 step and BM-NAS's fp32
step take turns, each in a fresh process, over `--rounds` rounds (who goes first alternates); the
median of the rounds is printed, and the ratio of the medians both by wall time and by the CPU time
of the timed steps (the steadier figure on a shared machine). In this table our clock stops at the
last step, as BM-NAS's does (the epoch's end, its genotype and checkpoint, is left out of both).
Second table: eager against optimized (clock to the end of the epoch, bookkeeping included).

    python bench/search_speed.py [--steps 30] [--device auto] [--stages search:supervised,search:ssl,pretrain,finetune]
        [--bmnas PATH] [--relaxations softmax,gumbel] [--rounds 3] [--bmnas-maps vgg|pooled] [--threads N]
        [--tables bmnas,paths]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SHAPES = {"maps": 4, "map_channels": 512, "side": 4, "vectors": (64, 128), "classes": 23}


def mmimdb_sized(train: int, dev: int = 1, test: int = 1):
    """Random features at BM-NAS's MM-IMDB shapes with the given split sizes, and its search space."""
    import torch

    from ssnas.data.pyramids import FeatureSet
    from ssnas.nas.space import SpaceConfig

    n = train + dev + test
    g = torch.Generator().manual_seed(0)
    maps = tuple(torch.randn(n, SHAPES["map_channels"], SHAPES["side"], SHAPES["side"], generator=g)
                 for _ in range(SHAPES["maps"]))
    vectors = tuple(torch.randn(n, d, generator=g) for d in SHAPES["vectors"])
    labels = (torch.rand(n, SHAPES["classes"], generator=g) < 0.1).to(torch.uint8)
    idx = torch.arange(n)
    splits = {"train": idx[:train], "dev": idx[train:train + dev], "test": idx[train + dev:]}
    features = FeatureSet(("image", "text"), (maps, vectors), splits, labels=labels)
    return features, SpaceConfig(cells=2, steps=1, channels=192, positions=16, cell_multiplier=2)


def mmimdb_shaped(steps: int, batch: int, search: bool = True):
    """Enough MM-IMDB-shaped rows for one epoch of `steps` steps (a search splits them in two halves)."""
    return mmimdb_sized((2 if search else 1) * batch * steps)


STAGES = ("search:supervised", "search:ssl", "pretrain", "finetune")


def run_stage_once(stage: str, steps: int, runtime, batch: int, reporter, relaxation: str = "softmax") -> None:
    """One epoch of `stage` (`steps` steps, no more: `min_steps` is 0) at MM-IMDB shapes."""
    from ssnas.baselines import load_baseline
    from ssnas.config.stages import FinetuneConfig, PretrainConfig, SearchConfig
    from ssnas.config.views import ViewConfig
    from ssnas.stages.finetune import finetune
    from ssnas.stages.pretrain import pretrain
    from ssnas.stages.search import search

    features, space = mmimdb_shaped(steps, batch, search=stage.startswith("search:"))
    if stage.startswith("search:"):
        config = SearchConfig(objective=stage.split(":")[1], epochs=1, batch_size=batch, relaxation=relaxation,
                              min_steps=0)
        search(features, space, config, ViewConfig(), runtime, reporter)
        return
    genotype = load_baseline("bmnas-mmimdb")
    if stage == "pretrain":
        pretrain(features, genotype, space, PretrainConfig(epochs=1, batch_size=batch, min_steps=0), ViewConfig(),
                 runtime, reporter)
    else:
        finetune(features, genotype, space, FinetuneConfig(epochs=1, batch_size=batch, min_steps=0), runtime, reporter)


def measure(stage: str, steps: int, device: str, batch: int, bf16: bool, eager: bool,
            relaxation: str = "softmax") -> dict:
    import torch

    from ssnas.config.runtime import Runtime
    from ssnas.reporting import InMemoryReporter
    from ssnas.stages.runtime import configure_threads, cpu_has_bf16

    configure_threads()
    runtime = Runtime(seed=0, device=device, bf16=bf16, eager=eager)
    on_cuda = runtime.torch_device().type == "cuda"

    class Clock(InMemoryReporter):
        """Starts the clock (and the CPU clock) after a warm-up of 3 steps; notes the time of the last step."""
        t0: float = 0.0
        cpu0: float = 0.0
        t1: float = 0.0
        cpu1: float = 0.0

        def progress(self, stage, done, total, loss=None):
            if done in (3, total):
                if on_cuda:
                    torch.cuda.synchronize()
                if done == 3:
                    Clock.t0, Clock.cpu0 = time.perf_counter(), time.process_time()
                else:
                    Clock.t1, Clock.cpu1 = time.perf_counter(), time.process_time()

    started = time.perf_counter()
    run_stage_once(stage, steps, runtime, batch, Clock(), relaxation)
    if on_cuda:
        torch.cuda.synchronize()
    # the clock stops at the end of the epoch, so its bookkeeping (derive, checkpoint, dev loss) counts too
    elapsed, cpu = time.perf_counter() - Clock.t0, time.process_time() - Clock.cpu0
    peak = (torch.cuda.max_memory_allocated() / 2**20 if on_cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    native_bf16 = bf16 and (on_cuda or cpu_has_bf16())
    return {"stage": stage, "path": "eager" if eager else "optimized", "precision": "bf16" if native_bf16 else "fp32",
            "relaxation": relaxation, "samples_per_s": batch * (steps - 3) / elapsed,
            "samples_per_cpu_s": batch * (steps - 3) / cpu,
            # the steps alone, the epoch's end left out, as bench/bmnas_reference.py times BM-NAS's
            "step_samples_per_s": batch * (steps - 3) / (Clock.t1 - Clock.t0) if Clock.t1 else None,
            "step_samples_per_cpu_s": batch * (steps - 3) / (Clock.cpu1 - Clock.cpu0) if Clock.t1 else None,
            "peak_mib": peak, "device": str(runtime.torch_device()),
            "threads": torch.get_num_threads(), "total_s": time.perf_counter() - started}


def run_row(stage: str, args: argparse.Namespace, bf16: bool, eager: bool, relaxation: str = "softmax") -> dict:
    command = [sys.executable, __file__, "--one", stage, "--steps", str(args.steps), "--batch", str(args.batch),
               "--device", args.device, "--relaxations", relaxation] + (["--bf16"] if bf16 else []) + (
               ["--eager"] if eager else [])
    return _child(command, args)


def _child(command: list[str], args: argparse.Namespace) -> dict:
    """The last line of a fresh process's output, read as JSON; `--threads` is handed on as OMP_NUM_THREADS."""
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}))
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_bmnas(args: argparse.Namespace) -> dict:
    """BM-NAS's own search step (bench/bmnas_reference.py) in a fresh process."""
    command = [sys.executable, str(Path(__file__).with_name("bmnas_reference.py")), "--bmnas", args.bmnas,
               "--steps", str(args.steps), "--batch", str(args.batch), "--device", args.device,
               "--maps", args.bmnas_maps, "--json"]
    return _child(command, args)


def against_bmnas(args: argparse.Namespace, stages: list[str], relaxations: list[str]) -> None:
    """Our search steps (optimized, fp32) and BM-NAS's, taking turns, each in its own process."""
    searches = [s for s in stages if s.startswith("search:")]
    if not searches:
        return
    if args.bmnas is None:
        print("BM-NAS column skipped: no BM-NAS checkout given (--bmnas PATH or BMNAS_PATH=PATH; "
              "git clone https://github.com/Somedaywilldo/BM-NAS)")
    else:
        from bmnas_reference import check_checkout

        check_checkout(args.bmnas)
    turns = f", taking turns; BM-NAS maps: {args.bmnas_maps}" if args.bmnas else ""
    print(f"search step against BM-NAS's, MM-IMDB shapes, batch {args.batch}, {args.steps} steps (3 of warm-up), "
          f"fp32, median of {args.rounds} rounds{turns}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'stage':<18} {'relaxation':<10} {'device':<7} {'threads':>7} {'ours/s':>7} {'BM-NAS/s':>8} "
          f"{'ratio':>6} {'cpu ratio':>9}  rounds (ours / BM-NAS samples/s)", flush=True)
    for stage in searches:
        for relaxation in relaxations:
            ours: list[dict] = []
            theirs: list[dict] = []
            for r in range(args.rounds):
                turns = ["ours", "theirs"] if args.bmnas is not None else ["ours"]
                for turn in turns if r % 2 == 0 else turns[::-1]:
                    if turn == "ours":
                        ours.append(run_row(stage, args, False, False, relaxation))
                    else:
                        theirs.append(run_bmnas(args))
            wall = statistics.median(o["step_samples_per_s"] for o in ours)
            cpu = statistics.median(o["step_samples_per_cpu_s"] for o in ours)
            line = f"{stage:<18} {relaxation:<10} {ours[0]['device']:<7} {ours[0]['threads']:>7} {wall:>7.0f} "
            if theirs:
                their_wall = statistics.median(t["samples_per_s"] for t in theirs)
                their_cpu = statistics.median(t["samples_per_cpu_s"] for t in theirs)
                pairs = zip(ours, theirs, strict=True)
                rounds = ", ".join(f"{o['step_samples_per_s']:.0f}/{t['samples_per_s']:.0f}" for o, t in pairs)
                line += f"{their_wall:>8.0f} {wall / their_wall:>6.2f} {cpu / their_cpu:>9.2f}  {rounds}"
            else:
                line += f"{'-':>8} {'-':>6} {'-':>9}  " + ", ".join(f"{o['step_samples_per_s']:.0f}" for o in ours)
            print(line, flush=True)
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def eager_against_optimized(args: argparse.Namespace, stages: list[str]) -> None:
    print(f"training steps, MM-IMDB shapes (C=192, L=16, 6 nodes, 2 cells x 1 step), batch {args.batch}, "
          f"{args.steps} steps, {platform.processor() or platform.machine()}")
    print(f"{'stage':<18} {'precision':<9} {'device':<7} {'threads':>7} {'eager/s':>8} {'optimized/s':>11} "
          f"{'ratio':>6} {'eager MiB':>9} {'opt MiB':>8}")
    for stage in stages:
        for bf16 in (False, True):
            eager, optimized = (run_row(stage, args, bf16, e) for e in (True, False))
            if bf16 and eager["precision"] != "bf16":
                continue  # no native bf16 here: the row would repeat fp32
            print(f"{stage:<18} {eager['precision']:<9} {eager['device']:<7} {eager['threads']:>7} "
                  f"{eager['samples_per_s']:>8.0f} {optimized['samples_per_s']:>11.0f} "
                  f"{optimized['samples_per_s'] / eager['samples_per_s']:>6.2f} {eager['peak_mib']:>9.0f} "
                  f"{optimized['peak_mib']:>8.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="steps per measurement, 3 of them warm-up")
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--bmnas", default=os.environ.get("BMNAS_PATH") or None,
                        help="path of a BM-NAS checkout (default: $BMNAS_PATH; none: the BM-NAS column is skipped)")
    parser.add_argument("--relaxations", default="softmax,gumbel",
                        help="our search relaxations for the BM-NAS table (softmax, gumbel)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the BM-NAS table (median printed)")
    parser.add_argument("--bmnas-maps", default="vgg", choices=("vgg", "pooled"),
                        help="BM-NAS's image inputs: VGG19 maps at 256 x 160 as it reads them, or pooled to 4 x 4")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of every measured process (default: one per core; both sides alike)")
    parser.add_argument("--tables", default="bmnas,paths",
                        help="which tables: bmnas (search against BM-NAS), paths (eager against optimized)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--eager", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    relaxations = args.relaxations.split(",")
    if args.one:
        print(json.dumps(measure(args.one, args.steps, args.device, args.batch, args.bf16, args.eager, relaxations[0])))
        return
    from ssnas.config.stages import RELAXATIONS

    stages, tables = args.stages.split(","), args.tables.split(",")
    for name, allowed in ((stages, STAGES), (relaxations, RELAXATIONS), (tables, ("bmnas", "paths"))):
        unknown = [n for n in name if n not in allowed]
        if unknown:
            parser.error(f"unknown {', '.join(unknown)} (one of {', '.join(allowed)})")
    if args.steps <= 3 or args.rounds < 1:
        parser.error("--steps must exceed the 3 steps of warm-up, and --rounds be at least 1")
    if "bmnas" in tables:
        against_bmnas(args, stages, relaxations)
    if "paths" in tables:
        eager_against_optimized(args, stages)


if __name__ == "__main__":
    main()
