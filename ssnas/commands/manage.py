"""Commands that stop and edit runs: kill, tag, rm. Each is a call of the run service and a line per run."""

from __future__ import annotations

from collections.abc import Sequence

import click

from ssnas.commands.common import pass_service, reports_errors
from ssnas.run_record import Run
from ssnas.runs.format import tags_text
from ssnas.runs.service import RunService


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--address", help="Ray runs: the cluster's HOST:PORT (default: the one they were started on).")
@pass_service
@reports_errors
def kill(service: RunService, runs: tuple[str, ...], address: str | None) -> None:
    """Stop runs: a running worker checkpoints and ends killed; a queued run never starts."""
    for outcome in service.kill(runs, address):
        click.echo(outcome.message)


@click.command()
@click.argument("run_id", metavar="RUN")
@click.argument("tags", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove the tags instead.")
@pass_service
@reports_errors
def tag(service: RunService, run_id: str, tags: tuple[str, ...], remove: bool) -> None:
    """Add (or remove) tags on a run."""
    run = service.tag(run_id, remove=tags) if remove else service.tag(run_id, add=tags)
    click.echo(tags_text(run))


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_service
@reports_errors
def rm(service: RunService, runs: tuple[str, ...], yes: bool) -> None:
    """Delete runs: their registry rows and their folders (asks first)."""

    def ask(targets: Sequence[Run]) -> bool:
        names = ", ".join(f"{t.short_id} ({t.name})" for t in targets)
        return click.confirm(f"delete {names} and their folders?", default=False)

    for outcome in service.delete(runs, confirm=None if yes else ask):
        click.echo(outcome.message)
