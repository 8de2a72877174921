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
    from ssnas.exit_status import InternalError
    from tui.app import SsnasApp

    app = SsnasApp(service.runs_dir, Path(recipes_dir) if recipes_dir else None, poll_interval=poll)
    app.run()
    if app.return_code:  # Textual caught an exception, printed its traceback and closed: a bug, not a quit
        raise InternalError(f"the dashboard stopped on an exception (Textual's return code {app.return_code})")
