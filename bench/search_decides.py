"""Does the search decide? Certainty of the SSL search's architecture weights per setting.

Label-free: it reads no labels and no test split, so it may choose search defaults. For each
dataset, architecture learning rate and relaxation, a self-supervised search runs on a few seeds;
the table shows the lowest top-1 weight as a multiple of uniform over the judged choices (cell
inputs and primitives; >= 1.5 is "decided"), the mean normalized entropy, whether the derived
genotypes agree across seeds, and the seconds per search.

    python bench/search_decides.py                                   # synthetic only
    python bench/search_decides.py --features /tmp/ssnas_real/htad.h5 --arch-lr 3e-4,3e-3
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from ssnas.config.data import SyntheticConfig
from ssnas.config.runtime import Runtime
from ssnas.config.stages import SearchConfig
from ssnas.config.views import ViewConfig
from ssnas.data.features import read_features
from ssnas.data.standardize import standardized
from ssnas.data.synthetic import make_synthetic
from ssnas.nas.space import SpaceConfig
from ssnas.reporting import InMemoryReporter
from ssnas.stages.runtime import configure_threads
from ssnas.stages.search import search


def _datasets(paths: list[str], synthetic: bool) -> dict[str, object]:
    sets = {"synthetic": make_synthetic(SyntheticConfig())} if synthetic else {}
    for path in paths:
        sets[Path(path).stem] = standardized(read_features(path))
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", action="append", default=[], help="an ssnas-features/1 file (repeatable)")
    parser.add_argument("--arch-lr", default="3e-4,3e-3", help="comma-separated architecture learning rates")
    parser.add_argument("--arch-wd", default="1e-3,0", help="comma-separated architecture weight decays")
    parser.add_argument("--relaxation", default="softmax", help="comma-separated: softmax, gumbel")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--no-synthetic", action="store_true", help="only the --features files")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--min-steps", type=int, default=400)
    parser.add_argument("--channels", type=int, default=32)
    args = parser.parse_args()
    configure_threads()
    space = SpaceConfig(cells=2, steps=1, channels=args.channels, positions=16, cell_multiplier=2, dropout=0.1)
    print(f"{'dataset':<12} {'relax':<8} {'arch_lr':>8} {'arch_wd':>8} {'min top/unif':>12} {'entropy':>8} "
          f"{'agree':>6} {'s/search':>9}  genotype (seed 0); undecided choices (seed 0)")
    settings = itertools.product(args.relaxation.split(","), [float(v) for v in args.arch_lr.split(",")],
                                 [float(v) for v in args.arch_wd.split(",")])
    datasets = _datasets(args.features, not args.no_synthetic)
    for (relaxation, arch_lr, arch_wd), (name, features) in itertools.product(list(settings), datasets.items()):
        config = SearchConfig(objective="ssl", epochs=args.epochs, batch_size=64, temperature=0.2, arch_lr=arch_lr,
                              arch_weight_decay=arch_wd, relaxation=relaxation, min_steps=args.min_steps)
        started, results = time.perf_counter(), []
        for seed in range(args.seeds):
            results.append(search(features, space, config, ViewConfig(), Runtime(seed=seed, device="cpu"),
                                  InMemoryReporter()))
        seconds = (time.perf_counter() - started) / args.seeds
        ratio = min(r.certainty.min_top_ratio for r in results)
        entropy = sum(r.certainty.mean_entropy for r in results) / len(results)
        agree = "yes" if len({r.genotype for r in results}) == 1 else "no"
        found = results[0].genotype.describe().replace("\n", "; ")
        undecided = ", ".join(results[0].certainty.undecided) or "none"
        print(f"{name:<12} {relaxation:<8} {arch_lr:>8.0e} {arch_wd:>8.0e} {ratio:>12.2f} {entropy:>8.3f} {agree:>6} "
              f"{seconds:>9.1f}  {found}; undecided: {undecided}", flush=True)


if __name__ == "__main__":
    main()
