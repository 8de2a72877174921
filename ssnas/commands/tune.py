"""`ssnas tune`: an Optuna study over the keys of a recipe's `[tune]` table (ssnas.tune); optuna and torch are
imported only when it runs."""

from __future__ import annotations

import os
import signal

import click

from ssnas import exit_status
from ssnas.commands.common import UserError, pass_service, reports_errors, table
from ssnas.runs.service import RunService


@click.command("tune")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe key for every trial (as ssnas run --set); repeatable.")
@click.option("--study", help="The study's name (default: the recipe's run.name). The same name again continues "
                              "the study.")
@click.option("--trials", type=click.IntRange(min=1),
              help="The study's budget in trials, earlier sessions' included (default: [tune] trials).")
@click.option("--max-parallel", type=int,
              help="Workers at once for the runs folder, as for ssnas run (default: as set before).")
@click.option("--detach", is_flag=True, help="Tune in the background; its output goes to RUNS/tune/STUDY.out.")
@pass_service
@reports_errors
def tune_command(service: RunService, recipe: str, overrides: tuple[str, ...], study: str | None,
                 trials: int | None, max_parallel: int | None, detach: bool) -> None:
    """Tune the keys of RECIPE's [tune] table with Optuna's ask-and-tell.

    Each trial is a submission of the recipe with the sampled values (its runs tagged study:NAME and
    trial:N), scored on the dev metric of its last stage and pruned on its dev curve. Ctrl-C stops
    asking: trials in flight go on, and the same command continues the study.
    """
    from ssnas.recipe import load_recipe
    from ssnas.runs.launching import LaunchOptions
    from ssnas.scheduling.state import check_max_parallel
    from ssnas.tune.files import study_name

    check_max_parallel(max_parallel)
    name = study_name(load_recipe(recipe, overrides), study)
    if detach:
        _detach(service, recipe, overrides, name, trials, max_parallel)
        return
    try:
        from ssnas.tune.tuner import TuneRequest, tune
    except ModuleNotFoundError as missing:
        if missing.name != "optuna":
            raise
        raise UserError("ssnas tune needs optuna: pip install 'ssnas[tune]'") from None

    request = TuneRequest(recipe, overrides, name, trials, LaunchOptions(max_parallel=max_parallel))
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        states = tune(service.runs_dir, request, click.echo)
    except KeyboardInterrupt as stop:
        click.echo(f"study {name} stopped: its trials in flight go on; the same command continues it", err=True)
        raise SystemExit(exit_status.interrupted(stop.args[0] if stop.args else signal.SIGINT)) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    _print_study(service, name)
    told = ", ".join(f"{n} {state}" for state, n in states.items())
    click.echo(f"study {name} in Optuna: {sum(states.values())} trial(s), {told}")


def _stop(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP stop the tuner as Ctrl-C does, naming the signal for the exit status."""
    raise KeyboardInterrupt(signum)


def _detach(service: RunService, recipe: str, overrides: tuple[str, ...], name: str, trials: int | None,
            max_parallel: int | None) -> None:
    from ssnas.tune.background import start_detached

    args = [os.path.abspath(recipe), "--study", name, *(f"--set={o}" for o in overrides)]
    args += ["--trials", str(trials)] if trials else []
    args += ["--max-parallel", str(max_parallel)] if max_parallel else []
    pid, out = start_detached(service.runs_dir, name, args)
    click.echo(f"study {name}: tuning in the background (pid {pid}); output: {out}")
    click.echo(f"follow with: ssnas --runs {service.runs_dir} report study:{name}   (or ssnas tui, filter "
               f"tag:study:{name})")


def _print_study(service: RunService, name: str) -> None:
    from ssnas.tune.summary import study_summary

    if not service.has_registry():
        return
    summary = study_summary(service.reader(), name)
    columns = summary.columns()
    click.echo(table([dict(zip(columns, cells, strict=True)) for cells in summary.cells()], columns))
    for line in summary.notes():
        click.echo(line)
