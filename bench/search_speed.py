"""Search-step throughput at BM-NAS's MM-IMDB shapes, on whatever device this machine has.

One search step = one network-weight update and one architecture-weight update (first-order
DARTS), each on its own batch. Shapes: C=192, L=16, six input nodes (four 512-channel VGG maps
pooled to 4x4, and 64- and 128-dim text vectors), 2 cells of 1 step, batch 96, 23 labels.
Each row runs in a fresh subprocess so that its peak memory is its own (peak RSS on CPU, which
includes the synthetic inputs; peak allocated on CUDA). fp32 and bf16 autocast side by side where
the device has native bf16.

    python bench/search_speed.py [--steps 30] [--device auto]
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
OBJECTIVES = ("supervised", "ssl", "ssl+supervised")


def mmimdb_shaped(steps: int, batch: int):
    """Random features at BM-NAS's MM-IMDB shapes, enough for `steps` search steps, and its space."""
    import torch

    from ssnas.data.pyramids import FeatureSet
    from ssnas.nas.space import SpaceConfig

    n_train = 2 * batch * steps  # two halves: `steps` batches each, so one epoch is `steps` steps
    n = n_train + 2
    g = torch.Generator().manual_seed(0)
    maps = tuple(torch.randn(n, SHAPES["map_channels"], SHAPES["side"], SHAPES["side"], generator=g)
                 for _ in range(SHAPES["maps"]))
    vectors = tuple(torch.randn(n, d, generator=g) for d in SHAPES["vectors"])
    labels = (torch.rand(n, SHAPES["classes"], generator=g) < 0.1).to(torch.uint8)
    idx = torch.arange(n)
    features = FeatureSet(("image", "text"), (maps, vectors), {"train": idx[:n_train], "dev": idx[n_train:n_train + 1],
                          "test": idx[n_train + 1:]}, labels=labels)
    return features, SpaceConfig(cells=2, steps=1, channels=192, positions=16, cell_multiplier=2)


def measure(objective: str, steps: int, device: str, batch: int, bf16: bool) -> dict:
    import torch

    from ssnas.data.views import ViewConfig
    from ssnas.reporting import InMemoryReporter
    from ssnas.stages.config import SearchConfig
    from ssnas.stages.runtime import Runtime, configure_threads, cpu_has_bf16
    from ssnas.stages.search import search

    configure_threads()
    features, space = mmimdb_shaped(steps, batch)
    runtime = Runtime(seed=0, device=device, bf16=bf16)

    class Clock(InMemoryReporter):
        """Starts the clock after a warm-up of 3 steps."""
        t0: float = 0.0

        def progress(self, stage, done, total, loss=None):
            if done == 3:
                if runtime.torch_device().type == "cuda":
                    torch.cuda.synchronize()
                Clock.t0 = time.perf_counter()

    config = SearchConfig(objective=objective, epochs=1, batch_size=batch)
    reporter = Clock()
    started = time.perf_counter()
    result = search(features, space, config, ViewConfig(), runtime, reporter)
    if runtime.torch_device().type == "cuda":
        torch.cuda.synchronize()
    # the clock stops at the end of the epoch, so its bookkeeping (derive, checkpoint) is counted too
    elapsed = time.perf_counter() - Clock.t0
    peak = (torch.cuda.max_memory_allocated() / 2**20 if runtime.torch_device().type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    native_bf16 = bf16 and (runtime.torch_device().type == "cuda" or cpu_has_bf16())
    return {"objective": objective, "precision": "bf16" if native_bf16 else "fp32", "samples_per_s": batch * (steps - 3) / elapsed, "peak_mib": peak,
            "device": str(runtime.torch_device()), "threads": torch.get_num_threads(),
            "total_s": time.perf_counter() - started, "genotype_ok": result.genotype is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--objectives", default=",".join(OBJECTIVES))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.steps, args.device, args.batch, args.bf16)))
        return
    rows = []
    for objective in args.objectives.split(","):
        for bf16 in (False, True):
            command = [sys.executable, __file__, "--one", objective, "--steps", str(args.steps),
                       "--batch", str(args.batch), "--device", args.device] + (["--bf16"] if bf16 else [])
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            if bf16 and row["precision"] != "bf16":
                continue  # no native bf16 here: the row would repeat fp32
            rows.append(row)
    print(f"search step, MM-IMDB shapes (C=192, L=16, 6 nodes, 2 cells x 1 step), batch {args.batch}, "
          f"{args.steps} steps, {platform.processor() or platform.machine()}")
    print(f"{'objective':<16} {'precision':<9} {'device':<8} {'threads':>7} {'samples/s':>10} {'peak MiB':>9}")
    for r in rows:
        print(f"{r['objective']:<16} {r['precision']:<9} {r['device']:<8} {r['threads']:>7} "
              f"{r['samples_per_s']:>10.0f} {r['peak_mib']:>9.0f}")


if __name__ == "__main__":
    main()
