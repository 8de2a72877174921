"""What tracking costs a training run: the same search with tracking off and on, side by side.

Off: the in-memory reporter (nothing leaves the process). On: the worker's RunReporter, writing
every step's loss, every epoch's architecture weights and genotype, heartbeats and checkpoints
to a real SQLite registry and TensorBoard event files, from its own thread. Same seed, same
machine, same process, alternating runs; prints the median wall time of each.

    python bench/tracking_cost.py [--repeats 3] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    from ssnas.config.runtime import Runtime
    from ssnas.config.stages import SearchConfig
    from ssnas.config.views import ViewConfig
    from ssnas.data.synthetic import make_synthetic
    from ssnas.demo import DEMO_SPACE
    from ssnas.registry import Registry
    from ssnas.reporting import InMemoryReporter
    from ssnas.stages.runtime import configure_threads
    from ssnas.stages.search import search
    from ssnas.tracking import RunReporter

    configure_threads()
    features = make_synthetic()
    config = SearchConfig(objective="ssl", epochs=args.epochs, batch_size=64, temperature=0.2)
    runtime = Runtime(seed=0, device="cpu")
    times: dict[str, list[float]] = {"off (in-memory reporter)": [], "on (registry + TensorBoard)": []}
    steps = 0
    with tempfile.TemporaryDirectory() as folder:
        registry = Registry(Path(folder) / "registry.db")
        for repeat in range(args.repeats):
            for mode in times:
                if mode.startswith("off"):
                    reporter = InMemoryReporter()
                else:
                    run_id = registry.create_run(name=f"r{repeat}", stage="search", config={"search": {}})
                    run_dir = Path(folder) / run_id
                    run_dir.mkdir()
                    reporter = RunReporter(registry.path, run_id, run_dir, hparams={"search": {"epochs": args.epochs}})
                started = time.perf_counter()
                search(features, DEMO_SPACE, config, ViewConfig(), runtime, reporter)
                if isinstance(reporter, RunReporter):
                    reporter.close()
                    steps = len(registry.metrics(run_id, key="loss"))
                times[mode].append(time.perf_counter() - started)
    off, on = (statistics.median(v) for v in times.values())
    print(f"SSL search on the synthetic dataset (demo space), {args.epochs} epochs = {steps} steps, "
          f"median of {args.repeats}")
    print(f"{'tracking':<30} {'seconds':>8} {'ms/step':>8}")
    for mode, values in times.items():
        median = statistics.median(values)
        print(f"{mode:<30} {median:>8.2f} {1000 * median / max(steps, 1):>8.2f}")
    print(f"cost of tracking: {100 * (on - off) / off:+.1f} %")


if __name__ == "__main__":
    main()
