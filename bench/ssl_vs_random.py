"""Does the self-supervised search find fusion architectures that matter? Arms side by side.

On the embedded synthetic dataset, at label ratio r, for several seeds:
  ssl-cross     SSL search (cross-modal views) -> SSL pretrain -> fine-tune (the method)
  ssl-instance  the same with instance views (both views see every modality)
  supervised    supervised search on r of the labels (BM-NAS) -> fine-tune from scratch
  random        random genotypes -> SSL pretrain -> fine-tune (the floor)
  planted       the planted architecture -> SSL pretrain -> fine-tune (a ceiling for reference)
It prints test F1 (mean +- std over seeds), recovery of the planted input nodes and similarity to
the bundled BM-NAS genotype.

    python bench/ssl_vs_random.py [--seeds 5] [--label-ratio 0.1] [--randoms 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import replace

from ssnas.baselines import load_baseline
from ssnas.config.views import ViewConfig
from ssnas.data.synthetic import make_synthetic, planted_recovery
from ssnas.demo import demo_config, used_input_nodes
from ssnas.nas.genotype import CellGene, Genotype, StepGene, diff, random_genotype
from ssnas.pipeline import run_pipeline, train_genotype
from ssnas.reporting import InMemoryReporter
from ssnas.stages.runtime import configure_threads


def planted_genotype(names: tuple[str, ...], image: str, text: str) -> Genotype:
    a, b = names.index(image), names.index(text)
    n = len(names)
    return Genotype(
        input_names=names,
        cells=(CellGene((a, b), (StepGene((0, 1), "concat_fc"),), (2,)), CellGene((b, n), (StepGene((0, 1), "linear_glu"),), (2,))),
        concat=(n, n + 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--label-ratio", type=float, default=0.1)
    parser.add_argument("--randoms", type=int, default=3, help="random genotypes per seed")
    args = parser.parse_args()
    configure_threads()
    baseline = load_baseline("bmnas-mmimdb")
    rows: dict[str, list[dict]] = {}

    def record(arm: str, genotype: Genotype, f1: dict, planted: tuple[str, str], seconds: float) -> None:
        rows.setdefault(arm, []).append({
            "weighted": f1["weighted"], "macro": f1["macro"], "seconds": seconds,
            "recovery": planted_recovery(used_input_nodes(genotype), planted),
            "similarity": diff(genotype, baseline).similarity, "genotype": genotype.describe().replace("\n", "; "),
        })

    for seed in range(args.seeds):
        config, data_config = demo_config(args.label_ratio, seed, "auto")
        features = make_synthetic(data_config)
        planted = data_config.planted_nodes
        for arm, views in (("ssl-cross", ViewConfig()), ("ssl-instance", ViewConfig(policy="instance"))):
            started = time.perf_counter()
            result = run_pipeline(features, replace(config, views=views), InMemoryReporter())
            record(arm, result.genotype, result.finetune.test, planted, time.perf_counter() - started)
        started = time.perf_counter()
        supervised = replace(config, search=replace(config.search, objective="supervised", label_ratio=args.label_ratio),
                             pretrain=None)
        result = run_pipeline(features, supervised, InMemoryReporter())
        record("supervised", result.genotype, result.finetune.test, planted, time.perf_counter() - started)
        rng = random.Random(1000 + seed)
        space = config.space
        for _ in range(args.randoms):
            genotype = random_genotype(features.node_names, space.cells, space.steps, space.primitives,
                                       space.cell_multiplier, rng)
            started = time.perf_counter()
            _, tuned = train_genotype(features, genotype, config, InMemoryReporter())
            record("random", genotype, tuned.test, planted, time.perf_counter() - started)
        genotype = planted_genotype(features.node_names, *planted)
        started = time.perf_counter()
        _, tuned = train_genotype(features, genotype, config, InMemoryReporter())
        record("planted", genotype, tuned.test, planted, time.perf_counter() - started)
        print(f"seed {seed} done", flush=True)

    def stat(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} +- {sd:.4f}"

    print(f"\nsynthetic dataset, r = {args.label_ratio}, {args.seeds} seeds ({args.randoms} random genotypes per seed)")
    print(f"{'arm':<13} {'runs':>4} {'test F1 weighted':>18} {'test F1 macro':>18} {'planted recovery':>17} "
          f"{'sim. bmnas':>10} {'s/run':>6}")
    for arm, runs in rows.items():
        print(f"{arm:<13} {len(runs):>4} {stat([r['weighted'] for r in runs]):>18} {stat([r['macro'] for r in runs]):>18} "
              f"{statistics.mean(r['recovery'] for r in runs):>17.2f} {statistics.mean(r['similarity'] for r in runs):>10.2f} "
              f"{statistics.mean(r['seconds'] for r in runs):>6.1f}")
    print("\ngenotypes found:")
    for arm in ("ssl-cross", "ssl-instance", "supervised"):
        for seed, run in enumerate(rows[arm]):
            print(f"  {arm:<13} seed {seed}: {run['genotype']}")


if __name__ == "__main__":
    main()
