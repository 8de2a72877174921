"""Where a search step's time goes: the torch profiler over a few steps at MM-IMDB shapes.

It prints the time of each phase of a step (network update, architecture update; the labels the
search stage puts on them) and the operators that take the most time, so that speed work starts
from facts. The first steps are left out (warm-up).

    python bench/profile_search.py [--objective ssl] [--steps 8] [--bf16] [--eager] [--device auto] [--rows 25]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_speed import mmimdb_shaped  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objective", default="ssl", choices=["ssl", "supervised", "ssl+supervised"])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3, help="steps before profiling (at least 1)")
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--eager", action="store_true", help="the plain path (run.eager) instead of the optimized one")
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args()
    if args.warmup < 1:
        parser.error("--warmup must be at least 1")

    import torch
    from torch.profiler import ProfilerActivity, profile, schedule

    from ssnas.config.runtime import Runtime
    from ssnas.config.stages import SearchConfig
    from ssnas.config.views import ViewConfig
    from ssnas.reporting import InMemoryReporter
    from ssnas.stages.runtime import configure_threads
    from ssnas.stages.search import search

    configure_threads()
    features, space = mmimdb_shaped(args.warmup + args.steps, args.batch)
    runtime = Runtime(seed=0, device=args.device, bf16=args.bf16, eager=args.eager)
    activities = [ProfilerActivity.CPU]
    if runtime.torch_device().type == "cuda":
        activities.append(ProfilerActivity.CUDA)

    with profile(activities=activities, schedule=schedule(wait=args.warmup - 1, warmup=1, active=args.steps)) as prof:

        class Stepper(InMemoryReporter):
            def progress(self, stage, done, total, loss=None):
                prof.step()

        config = SearchConfig(objective=args.objective, epochs=1, batch_size=args.batch)
        search(features, space, config, ViewConfig(), runtime, Stepper())

    sort = "self_cuda_time_total" if len(activities) > 1 else "self_cpu_time_total"
    events = prof.key_averages()
    phases = [e for e in events if e.key.startswith("search/")]
    print(f"search step, objective {args.objective}, batch {args.batch}, {runtime.torch_device()}, "
          f"{'bf16' if args.bf16 else 'fp32'}, {'eager' if args.eager else 'optimized'}, {torch.get_num_threads()} threads; {args.steps} profiled steps")
    print(f"\n{'phase':<28} {'ms per step':>12}")
    for event in sorted(phases, key=lambda e: e.key):
        print(f"{event.key:<28} {event.cpu_time_total / 1000 / args.steps:>12.1f}")
    print()
    print(events.table(sort_by=sort, row_limit=args.rows))


if __name__ == "__main__":
    main()
