"""Training-step throughput at BM-NAS's MM-IMDB shapes, eager path against optimized path.

One search step = one network-weight update and one architecture-weight update (first-order
DARTS), each on its own batch; pretrain and fine-tune steps are one update of the fixed network
of the bundled BM-NAS genotype. Shapes: C=192, L=16, six input nodes (four 512-channel VGG maps
pooled to 4x4, and 64- and 128-dim text vectors), 2 cells of 1 step, batch 96, 23 labels.
Every row runs in a fresh subprocess, so that its peak memory is its own (peak RSS on CPU, which
includes the synthetic inputs; peak allocated on CUDA). The eager and optimized paths (`run.eager`)
of each stage and precision are printed side by side; bf16 rows only where it is native.

    python bench/search_speed.py [--steps 30] [--device auto] [--stages search:supervised,search:ssl,pretrain,finetune]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

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


def run_stage_once(stage: str, steps: int, runtime, batch: int, reporter) -> None:
    """One epoch of `stage` (`steps` steps) at MM-IMDB shapes."""
    from ssnas.baselines import load_baseline
    from ssnas.config.stages import FinetuneConfig, PretrainConfig, SearchConfig
    from ssnas.config.views import ViewConfig
    from ssnas.stages.finetune import finetune
    from ssnas.stages.pretrain import pretrain
    from ssnas.stages.search import search

    features, space = mmimdb_shaped(steps, batch, search=stage.startswith("search:"))
    if stage.startswith("search:"):
        config = SearchConfig(objective=stage.split(":")[1], epochs=1, batch_size=batch)
        search(features, space, config, ViewConfig(), runtime, reporter)
        return
    genotype = load_baseline("bmnas-mmimdb")
    if stage == "pretrain":
        pretrain(features, genotype, space, PretrainConfig(epochs=1, batch_size=batch), ViewConfig(), runtime, reporter)
    else:
        finetune(features, genotype, space, FinetuneConfig(epochs=1, batch_size=batch), runtime, reporter)


def measure(stage: str, steps: int, device: str, batch: int, bf16: bool, eager: bool) -> dict:
    import torch

    from ssnas.config.runtime import Runtime
    from ssnas.reporting import InMemoryReporter
    from ssnas.stages.runtime import configure_threads, cpu_has_bf16

    configure_threads()
    runtime = Runtime(seed=0, device=device, bf16=bf16, eager=eager)
    on_cuda = runtime.torch_device().type == "cuda"

    class Clock(InMemoryReporter):
        """Starts the clock after a warm-up of 3 steps."""
        t0: float = 0.0

        def progress(self, stage, done, total, loss=None):
            if done == 3:
                if on_cuda:
                    torch.cuda.synchronize()
                Clock.t0 = time.perf_counter()

    started = time.perf_counter()
    run_stage_once(stage, steps, runtime, batch, Clock())
    if on_cuda:
        torch.cuda.synchronize()
    # the clock stops at the end of the epoch, so its bookkeeping (derive, checkpoint, dev loss) counts too
    elapsed = time.perf_counter() - Clock.t0
    peak = (torch.cuda.max_memory_allocated() / 2**20 if on_cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    native_bf16 = bf16 and (on_cuda or cpu_has_bf16())
    return {"stage": stage, "path": "eager" if eager else "optimized", "precision": "bf16" if native_bf16 else "fp32",
            "samples_per_s": batch * (steps - 3) / elapsed, "peak_mib": peak, "device": str(runtime.torch_device()),
            "threads": torch.get_num_threads(), "total_s": time.perf_counter() - started}


def run_row(stage: str, args: argparse.Namespace, bf16: bool, eager: bool) -> dict:
    command = [sys.executable, __file__, "--one", stage, "--steps", str(args.steps), "--batch", str(args.batch),
               "--device", args.device] + (["--bf16"] if bf16 else []) + (["--eager"] if eager else [])
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--eager", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.steps, args.device, args.batch, args.bf16, args.eager)))
        return
    print(f"training steps, MM-IMDB shapes (C=192, L=16, 6 nodes, 2 cells x 1 step), batch {args.batch}, "
          f"{args.steps} steps, {platform.processor() or platform.machine()}")
    print(f"{'stage':<18} {'precision':<9} {'device':<7} {'threads':>7} {'eager/s':>8} {'optimized/s':>11} "
          f"{'ratio':>6} {'eager MiB':>9} {'opt MiB':>8}")
    for stage in args.stages.split(","):
        for bf16 in (False, True):
            eager, optimized = (run_row(stage, args, bf16, e) for e in (True, False))
            if bf16 and eager["precision"] != "bf16":
                continue  # no native bf16 here: the row would repeat fp32
            print(f"{stage:<18} {eager['precision']:<9} {eager['device']:<7} {eager['threads']:>7} "
                  f"{eager['samples_per_s']:>8.0f} {optimized['samples_per_s']:>11.0f} "
                  f"{optimized['samples_per_s'] / eager['samples_per_s']:>6.2f} {eager['peak_mib']:>9.0f} "
                  f"{optimized['peak_mib']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
