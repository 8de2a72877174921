"""`ssnas tui`: the live dashboard. Textual is imported only when the command runs."""

from __future__ import annotations

from pathlib import Path

import click

from ssnas.commands.common import pass_service
from ssnas.runs.service import RunService


@click.command("tui")
@click.option("--poll", "poll", type=click.FloatRange(min=0.1), default=1.0, show_default=True, metavar="SECONDS",
              help="How often to read the registry for changes.")
@click.option("--recipes", "recipes_dir", type=click.Path(file_okay=False, exists=True),
              help="Folder of recipes the launch dialog (n) offers. Default: ./recipes.")
@pass_service
def tui(service: RunService, poll: float, recipes_dir: str | None) -> None:
    """Live dashboard: runs as they train, their curves, weights, genotypes and logs; launch, kill, tag, compare."""
    from tui.app import SsnasApp

    SsnasApp(service.runs_dir, Path(recipes_dir) if recipes_dir else None, poll_interval=poll).run()
