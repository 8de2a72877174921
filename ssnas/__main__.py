"""`python -m ssnas`: the method end to end on the embedded synthetic dataset, in one process.

Searches a fusion architecture without labels, pretrains it with the same contrastive objective,
fine-tunes it on a fraction r of the labels, and prints the test F1 and the genotype found.
"""

from __future__ import annotations

import argparse
import sys


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ssnas", description=__doc__.splitlines()[0])
    parser.add_argument("--label-ratio", type=float, default=0.1, help="fraction r of training labels read (default 0.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every stage (default: the demo's)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    from ssnas.demo import demo_config, format_summary
    from ssnas.data.synthetic import make_synthetic
    from ssnas.errors import SsnasError
    from ssnas.pipeline import run_pipeline
    from ssnas.reporting import ConsoleReporter
    from ssnas.stages.runtime import configure_threads

    configure_threads()
    try:
        config, data_config = demo_config(args.label_ratio, args.seed, args.device, args.epochs)
        features = make_synthetic(data_config)
        reporter = ConsoleReporter()
        reporter.event(
            f"ssnas: self-supervised search -> pretrain -> fine-tune on the synthetic dataset "
            f"(r = {args.label_ratio}, seed {args.seed})"
        )
        result = run_pipeline(features, config, reporter)
    except SsnasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_summary(result, data_config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
