"""Commands that stop and edit runs: kill, tag, rm. Each is a call of the run service and a line per run."""

from __future__ import annotations

from collections.abc import Sequence

import click

from ssnas.commands.common import RUN, pass_service, reports_errors
from ssnas.run_record import Run
from ssnas.runs.format import printable, tags_text
from ssnas.runs.service import RunService


@click.command()
@click.argument("runs", nargs=-1, required=True, type=RUN)
@click.option("--address", help="Ray runs: the cluster's HOST:PORT (default: the one they were started on).")
@pass_service
@reports_errors
def kill(service: RunService, runs: tuple[str, ...], address: str | None) -> None:
    """Stop runs: a running worker checkpoints and ends killed; a queued run never starts."""
    for outcome in service.kill(runs, address):
        click.echo(outcome.message)


@click.command()
@click.argument("run_id", metavar="RUN", type=RUN)
@click.argument("tags", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove the tags instead.")
@pass_service
@reports_errors
def tag(service: RunService, run_id: str, tags: tuple[str, ...], remove: bool) -> None:
    """Add (or remove) tags on a run."""
    run = service.tag(run_id, remove=tags) if remove else service.tag(run_id, add=tags)
    click.echo(tags_text(run))


@click.command()
@click.argument("runs", nargs=-1, required=True, type=RUN)
@click.option("--with-children", is_flag=True,
              help="Also delete every run started from these (children, grandchildren, ...).")
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_service
@reports_errors
def rm(service: RunService, runs: tuple[str, ...], with_children: bool, yes: bool) -> None:
    """Delete runs: their registry rows and their folders (asks first). A run with children is refused
    unless they go too (--with-children); a running run is refused (kill it first)."""
    for outcome in service.delete(runs, confirm=None if yes else _ask, with_children=with_children):
        click.echo(outcome.message)


def _ask(targets: Sequence[Run]) -> bool:
    """One question for every run that goes: the runs named, and how many below them."""
    ids = {t.id for t in targets}
    named = [t for t in targets if t.parent_id not in ids]
    below = len(targets) - len(named)
    names = ", ".join(f"{t.short_id} ({t.name})" for t in named)
    children = f" and {below} run(s) below {'it' if len(named) == 1 else 'them'}" if below else ""
    return click.confirm(printable(f"delete {names}{children}, and their folders?"), default=False)
