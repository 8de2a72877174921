"""`ssnas queue`: the runs folder's scheduler and its queue; change its settings, take runs off it."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from ssnas.commands.common import pass_service, reports_errors, table
from ssnas.runs.service import RunService

if TYPE_CHECKING:
    from ssnas.run_record import Run
    from ssnas.runs.launching import Queue


@click.command("queue")
@click.argument("runs", nargs=-1, metavar="[RUN]...")
@click.option("--max-parallel", type=int, help="Set the folder's workers at once (at least 1).")
@click.option("--gpus", help="Set the folder's GPU slots, e.g. 0,1 (cpu: the CPU only).")
@click.option("--cancel", is_flag=True, help="Take the RUNs given off the queue (they end killed, never started).")
@click.option("--clear", is_flag=True, help="Take every queued run off the queue.")
@click.option("--json", "as_json", is_flag=True, help="JSON for pipes.")
@pass_service
@reports_errors
def queue_command(service: RunService, runs: Sequence[str], max_parallel: int | None, gpus: str | None, cancel: bool,
                  clear: bool, as_json: bool) -> None:
    """Show the runs folder's scheduler and queue (running, then queued runs in start order, with why each
    waits); start a scheduler for queued runs that have none."""
    from ssnas.runs import launching
    from ssnas.scheduling.state import check_max_parallel, parse_gpus

    if runs and not cancel:
        raise click.UsageError("RUN ids go with --cancel")
    if cancel and not runs:
        raise click.UsageError("--cancel takes the RUN ids to cancel")
    check_max_parallel(max_parallel)  # the settings are checked before any run is cancelled
    slots = parse_gpus(gpus)
    if cancel or clear:
        for outcome in launching.cancel_queued(service.runs_dir, runs, everything=clear):
            if not as_json:
                click.echo(outcome.message)
    shown = launching.queue(service.runs_dir, max_parallel, slots)
    if as_json:
        click.echo(json.dumps(_as_dict(shown), indent=2, default=str))
        return
    click.echo(scheduler_line(shown))
    rows = [{"id": run.short_id, "name": run.name, "stage": run.stage, "status": "running",
             "waits": f"on {run.node or run.host or '?'}" + (f" ({run.device})" if run.device else "")}
            for run in shown.running]
    rows += [{"id": item.run.short_id, "name": item.run.name, "stage": item.run.stage, "status": "queued",
              "waits": item.reason or "starts next"} for item in shown.waiting]
    if rows:
        click.echo(table(rows, ["id", "name", "stage", "status", "waits"]))
    else:
        click.echo("nothing queued or running")


def scheduler_line(shown: Queue) -> str:
    state = shown.scheduler
    settings = state.settings
    if state.alive:
        since = time.strftime("%H:%M:%S", time.localtime(state.started_at)) if state.started_at else "?"
        where = f"GPUs {','.join(state.gpu_slots)}" if state.gpu_slots else "the CPU"
        started = " (started now)" if shown.started_scheduler else ""
        return (f"scheduler: pid {state.pid} on {state.host}, since {since}{started}; "
                f"max-parallel {state.parallel} on {where}")
    gpus = "every GPU found" if settings.gpus is None else (",".join(settings.gpus) or "the CPU")
    parallel = settings.max_parallel or "one per GPU (1 on the CPU)"
    return f"no scheduler running; settings: max-parallel {parallel}, GPUs {gpus}"


def _as_dict(shown: Queue) -> dict:
    state = shown.scheduler
    scheduler = None
    if state.alive:
        scheduler = {"pid": state.pid, "host": state.host, "started_at": state.started_at,
                     "max_parallel": state.parallel, "gpus": list(state.gpu_slots or ())}
    return {
        "scheduler": scheduler,
        "settings": {"max_parallel": state.settings.max_parallel,
                     "gpus": None if state.settings.gpus is None else list(state.settings.gpus)},
        "runs": [{**_run(run), "status": "running", "waits": None} for run in shown.running]
        + [{**_run(item.run), "status": "queued", "waits": item.reason} for item in shown.waiting],
    }


def _run(run: Run) -> dict:
    return {key: getattr(run, key) for key in ("id", "name", "stage", "executor", "parent_id", "group_id",
                                                 "created_at", "started_at", "pid", "host", "device")}
