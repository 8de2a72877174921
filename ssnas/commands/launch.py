"""Commands that start runs: run, recipe show, resume, rerun.

Each queues runs through the run service (ssnas.runs.launching), whose one scheduler per runs folder
starts them, and then follows them in the foreground or, with `--detach`, says how to follow them.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ssnas import exit_status
from ssnas.commands.common import RUN, emit, pass_service, reports_errors
from ssnas.runs.service import RunService

if TYPE_CHECKING:
    from ssnas.cluster import RayOptions
    from ssnas.cluster.slurm import SlurmOptions
    from ssnas.runs.launching import Launched, LaunchOptions

CANCEL_WAIT_S = 60.0  # how long an interrupted `ssnas run` waits for its workers to checkpoint and stop


def _resources(ctx: click.Context, param: click.Parameter, pairs: tuple[str, ...]) -> dict[str, float]:
    """--ray-resource pairs, checked as they are parsed (a usage error, before anything is recorded)."""
    from ssnas.cluster import parse_resources
    from ssnas.errors import ClusterError

    try:
        return parse_resources(pairs)
    except ClusterError as error:
        raise click.BadParameter(str(error).split(": ", 1)[-1]) from None


def ray_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--address, --ray-cpus and --ray-resource, handed to the command as one `ray` (a RayOptions)."""

    @functools.wraps(command)
    def wrapper(*args: Any, address: str | None, ray_cpus: int, ray_resources: dict[str, float], **kwargs: Any) -> Any:
        from ssnas.cluster import RayOptions

        return command(*args, ray=RayOptions(address, ray_cpus, ray_resources), **kwargs)

    options = [
        click.option("--address", help="Ray runs: the cluster's HOST:PORT (default: $RAY_ADDRESS, then the "
                                       "cluster this runs folder used last, then one started on this machine)."),
        click.option("--ray-cpus", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Ray runs: CPUs each run asks for (a CUDA run asks for one GPU as well)."),
        click.option("--ray-resource", "ray_resources", multiple=True, metavar="NAME=AMOUNT", callback=_resources,
                     help="Ray runs: a custom resource each run asks for, e.g. big_memory=1 (repeatable)."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _slurm_settings(ctx: click.Context, param: click.Parameter, pairs: tuple[str, ...]) -> SlurmOptions | None:
    """--slurm pairs, checked as they are parsed; None when none is given (a resume keeps the run's own)."""
    from ssnas.cluster.slurm import parse_settings
    from ssnas.errors import ClusterError

    try:
        return parse_settings(pairs) if pairs else None
    except ClusterError as error:
        raise click.BadParameter(str(error).split(": ", 1)[-1]) from None


def slurm_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--slurm KEY=VALUE, handed to the command as one `slurm` (a SlurmOptions, or None)."""
    return click.option(
        "--slurm", "slurm", multiple=True, metavar="KEY=VALUE", callback=_slurm_settings,
        help="SLURM runs: a job setting (repeatable): partition, time (minutes or [D-]HH:MM:SS; default 24:00:00), "
             "gpus (default 1 for run.device cuda), cpus (default 1), mem (e.g. 16G), account, folder (shared with "
             "the nodes; default ~/.ssnas/slurm), cluster=local (jobs on this machine), or any sbatch option "
             "(qos=high). resume and rerun keep the run's settings unless given.")(command)


def launch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--detach, --on-interrupt, --gpus and --max-parallel: how the queued runs are followed and run."""
    options = [
        click.option("--detach", is_flag=True, help="Return at once; the runs go on in the background."),
        click.option("--on-interrupt", type=click.Choice(["cancel", "detach"]), default="cancel", show_default=True,
                     help="What Ctrl-C (or SIGTERM) does to a foreground launch: kill its runs, or leave them "
                          "running and stop following. A closed terminal (SIGHUP) always detaches."),
        click.option("--gpus", help="GPU indices for the runs folder's workers, e.g. 0,1, or cpu (default: as "
                                    "set before; at first every GPU found, the CPU when none)."),
        click.option("--max-parallel", type=int,
                     help="Workers at once for the runs folder, at least 1 (default: as set before; at first one "
                          "per GPU, or 1 on the CPU)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _options(gpus: str | None, max_parallel: int | None, ray: RayOptions | None,
             slurm: SlurmOptions | None) -> LaunchOptions:
    from ssnas.runs.launching import LaunchOptions
    from ssnas.scheduling.state import check_max_parallel, parse_gpus

    check_max_parallel(max_parallel)  # before anything is queued
    return LaunchOptions(max_parallel, parse_gpus(gpus), ray, slurm)


def follow_hint(runs_dir: Path) -> str:
    """`ssnas runs`, with --runs only when the folder is not the one a plain `ssnas` would read."""
    default = Path(os.environ.get("SSNAS_RUNS") or "runs")
    if Path(runs_dir).resolve() == default.resolve():
        return "ssnas runs"
    return f"ssnas --runs {runs_dir} runs"


def _start(service: RunService, launched: Launched, detach: bool, on_interrupt: str) -> None:
    """Follow the queued runs to their end (a live view, then a summary) or, detached, say how to follow them."""
    for warning in launched.warnings:
        click.echo(f"warning: {warning}", err=True)
    if launched.message:
        click.echo(launched.message)
    if not launched.run_ids:
        return
    if detach:
        scheduler = launched.scheduler
        by = f" (scheduler pid {scheduler.pid})" if scheduler is not None and scheduler.pid else ""
        click.echo(f"in the background: {' '.join(r[:8] for r in launched.run_ids)}{by}")
        click.echo(f"follow with: {follow_hint(service.runs_dir)}   (or ssnas tui; ssnas queue shows the queue)")
        return
    _follow(service, list(launched.run_ids), on_interrupt)
    registry = service.reader()
    rows = [registry.get_run(r) for r in launched.run_ids]
    emit([row.to_dict() for row in rows], ["id", "name", "stage", "status", "test_f1", "error"],
         formats={"id": lambda v: v[:8], "test_f1": lambda v: "-" if v is None else f"{v:.4f}",
                  "error": lambda v: v or ""})
    failed = [r for r in rows if r.status != "finished"]
    if failed:
        raise NotFinished(f"{len(failed)} of {len(rows)} run(s) did not finish")


class NotFinished(click.ClickException):
    """Runs a command followed that ended otherwise than finished: the command worked, its runs did not."""

    exit_code = exit_status.NOT_DONE


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def _follow(service: RunService, run_ids: list[str], on_interrupt: str) -> None:
    """The live view until every run ended; Ctrl-C, SIGTERM and SIGHUP end it as `on_interrupt` says."""
    from ssnas.progress_view import LaunchView
    from ssnas.runs.launching import wait_for

    view = LaunchView(service.reader(), run_ids)
    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, _raise) for signum in watched}
    try:
        wait_for(service.runs_dir, run_ids, view.tick)
    except Interrupted as stop:
        for signum in watched:  # from here on a signal only cuts the wait for the workers short
            signal.signal(signum, signal.SIG_IGN if signum == signal.SIGHUP else _raise)
        _interrupted(service, run_ids, view, stop.signum, on_interrupt)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    view.close()


def _interrupted(service: RunService, run_ids: list[str], view: Any, signum: int, on_interrupt: str) -> None:
    """Detach (SIGHUP always: the terminal is gone, nothing can be printed) or kill this launch's runs."""
    from ssnas.runs.launching import cancel, wait_for

    code = exit_status.interrupted(signum)
    if signum == signal.SIGHUP:
        raise SystemExit(code)
    view.close()
    if on_interrupt == "detach":
        click.echo(f"detached: the runs go on; follow with: {follow_hint(service.runs_dir)}", err=True)
        raise SystemExit(exit_status.OK)
    stopped = [outcome for outcome in cancel(service.runs_dir, run_ids) if outcome.ok]
    try:
        wait_for(service.runs_dir, run_ids, view.tick, timeout=CANCEL_WAIT_S)  # they checkpoint and end killed
    except Interrupted:
        pass
    view.close()
    first = run_ids[0][:8]
    click.echo(f"interrupted: {len(stopped)} run(s) killed; ssnas resume RUN continues one (e.g. ssnas resume "
               f"{first})", err=True)
    raise SystemExit(code)


@click.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a recipe value.")
@launch_options
@click.option("--eager", is_flag=True, help="The plain compute path (run.eager): for comparison and debugging.")
@click.option("--executor", type=click.Choice(["local", "ray", "slurm"]),
              help="Where the workers run (run.executor): this machine, a Ray cluster, or SLURM jobs (default: the "
                   "recipe's).")
@click.option("--share/--no-share", default=True, show_default=True,
              help="Run a label-free stage (an SSL search, a pretraining) once for every sweep chain that needs it.")
@click.option("--reuse", is_flag=True,
              help="Link label-free stages to earlier finished runs of this runs folder with the same stage key.")
@ray_options
@slurm_options
@pass_service
@reports_errors
def run(service: RunService, recipe: str, overrides: tuple[str, ...], detach: bool, on_interrupt: str,
        gpus: str | None, max_parallel: int | None, eager: bool, executor: str | None, share: bool, reuse: bool,
        ray: RayOptions | None, slurm: SlurmOptions | None) -> None:
    """Validate a recipe, queue its runs for the runs folder's scheduler, and follow them."""
    if eager:
        overrides = (*overrides, "run.eager=true")
    if executor:
        overrides = (*overrides, f"run.executor={executor}")
    launched = service.submit(recipe, overrides, _options(gpus, max_parallel, ray, slurm), share=share, reuse=reuse)
    _start(service, launched, detach, on_interrupt)


@click.group()
def recipe() -> None:
    """Inspect recipes."""


@recipe.command("show")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE")
@reports_errors
def recipe_show(path: str, overrides: tuple[str, ...]) -> None:
    """Print a recipe resolved: extends merged, overrides applied, every default filled in."""
    from ssnas.recipe import format_recipe, load_recipe
    from ssnas.submit import plan_runs, recipe_points

    loaded = load_recipe(path, overrides)
    click.echo(format_recipe(loaded), nl=False)
    points = recipe_points(loaded)
    runs = len(plan_runs(points))
    if len(points) > 1 or runs > 1:
        chains = f"{len(points)} chain{'s' if len(points) > 1 else ''}"
        click.echo(f"# {chains}, {runs} runs queued by `ssnas run` (label-free stages shared between chains; "
                   "--no-share: one per chain): " + ", ".join(p.recipe.run.name for p in points))


@click.command()
@click.argument("run_id", metavar="RUN", type=RUN)
@launch_options
@ray_options
@slurm_options
@pass_service
@reports_errors
def resume(service: RunService, run_id: str, detach: bool, on_interrupt: str, gpus: str | None,
           max_parallel: int | None, ray: RayOptions | None, slurm: SlurmOptions | None) -> None:
    """Continue a killed, failed or lost run from its last checkpoint, under the same id (and its queued children)."""
    _start(service, service.resume(run_id, _options(gpus, max_parallel, ray, slurm)), detach, on_interrupt)


@click.command()
@click.argument("runs", nargs=-1, type=RUN)
@click.option("--failed", is_flag=True, help="Every failed, killed or lost run.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a value of each run's stored recipe, as ssnas run --set does (repeatable).")
@launch_options
@ray_options
@slurm_options
@pass_service
@reports_errors
def rerun(service: RunService, runs: Sequence[str], failed: bool, overrides: tuple[str, ...], detach: bool,
          on_interrupt: str, gpus: str | None, max_parallel: int | None, ray: RayOptions | None,
          slurm: SlurmOptions | None) -> None:
    """Run runs again from the start as new runs with the same recipe (and the same parent), or with --set
    overrides."""
    if failed == bool(runs):
        raise click.UsageError("give RUN ids or --failed, not both")
    options = _options(gpus, max_parallel, ray, slurm)
    _start(service, service.rerun(runs, failed=failed, overrides=overrides, options=options), detach, on_interrupt)
