"""The `ssnas` command line: thin over library calls; nothing heavy is imported until a command runs."""

from __future__ import annotations

import sys

import click

from ssnas.commands import demo as demo_commands
from ssnas.commands.common import UserError, Workspace, reports_errors  # noqa: F401 - re-exported

COMMAND_MODULES = ("ssnas.commands.demo", "ssnas.commands.launch", "ssnas.commands.inspect")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ssnas")
@click.option("--runs", "runs_dir", envvar="SSNAS_RUNS", type=click.Path(file_okay=False),
              help="The runs folder (registry.db and one folder per run). Default: ./runs.")
@click.pass_context
def main(ctx: click.Context, runs_dir: str | None) -> None:
    """Self-supervised architecture search for multimodal fusion networks, and its experiments."""
    ctx.obj = Workspace(runs_dir)


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue  # a family still being written
        for command in vars(module).values():
            if isinstance(command, click.Command) and command.name not in main.commands:
                main.add_command(command)


_register()
demo = demo_commands.demo

if __name__ == "__main__":
    sys.exit(main())
