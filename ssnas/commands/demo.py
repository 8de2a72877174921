"""Commands that need no registry: the in-process demo and the bundled baselines."""

from __future__ import annotations

import click

from ssnas.commands.common import reports_errors


@click.command()
@click.option("--label-ratio", type=float, default=0.1, show_default=True, help="Fraction r of training labels read.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--epochs", type=int, default=None,
              help="Epochs of every stage, exactly (default: the demo's own, with minimum step counts).")
@click.option("--bf16", is_flag=True, help="bf16 autocast (CUDA, or a CPU with native bf16).")
@reports_errors
def demo(label_ratio: float, seed: int, device: str, epochs: int | None, bf16: bool) -> None:
    """Search -> pretrain -> fine-tune on the embedded synthetic dataset, in this process."""
    from ssnas.data.synthetic import make_synthetic
    from ssnas.demo import demo_config, format_summary
    from ssnas.pipeline import run_pipeline
    from ssnas.reporting import ConsoleReporter
    from ssnas.stages.runtime import configure_threads

    configure_threads()
    config, data_config = demo_config(label_ratio, seed, device, epochs, bf16)
    features = make_synthetic(data_config)
    reporter = ConsoleReporter()
    reporter.event(f"ssnas: self-supervised search -> pretrain -> fine-tune on the synthetic dataset "
                   f"(r = {label_ratio}, seed {seed})")
    click.echo(format_summary(run_pipeline(features, config, reporter), data_config))


@click.command()
@reports_errors
def baselines() -> None:
    """The bundled genotypes, to diff runs against."""
    from ssnas.baselines import baseline_names, load_baseline

    for name in baseline_names():
        genotype = load_baseline(name)
        click.echo(f"{name}\n  " + genotype.describe().replace("\n", "\n  "))
        if genotype.source:
            click.echo(f"  source: {genotype.source}")
