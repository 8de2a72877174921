"""The `ssnas` command line: thin over library calls; nothing heavy is imported until a command runs."""

from __future__ import annotations

import sys

import click

from ssnas.commands import demo as demo_commands
from ssnas.commands import features as features_commands
from ssnas.commands import inspect as inspect_commands
from ssnas.commands import launch as launch_commands
from ssnas.commands import manage as manage_commands
from ssnas.commands import plugins as plugins_commands
from ssnas.commands import queue as queue_commands
from ssnas.commands import report as report_commands
from ssnas.commands import tui as tui_commands
from ssnas.commands import tune as tune_commands
from ssnas.runs.service import RunService


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ssnas")
@click.option("--runs", "runs_dir", envvar="SSNAS_RUNS", type=click.Path(file_okay=False),
              help="The runs folder (registry.db and one folder per run). Default: ./runs.")
@click.pass_context
def main(ctx: click.Context, runs_dir: str | None) -> None:
    """Self-supervised architecture search for multimodal fusion networks, and its experiments."""
    ctx.obj = RunService(runs_dir)


for _command in (
    launch_commands.run, inspect_commands.runs_command, inspect_commands.show_command,
    inspect_commands.metrics_command, inspect_commands.arch_command, inspect_commands.diff_command,
    inspect_commands.compare_command, manage_commands.kill,
    launch_commands.resume, launch_commands.rerun, queue_commands.queue_command, manage_commands.tag,
    inspect_commands.export_command, manage_commands.rm, launch_commands.recipe, demo_commands.baselines,
    features_commands.features, demo_commands.demo, report_commands.report, tui_commands.tui,
    tune_commands.tune_command,
    plugins_commands.plugins_command,
):
    main.add_command(_command)

demo = demo_commands.demo

if __name__ == "__main__":
    sys.exit(main())
