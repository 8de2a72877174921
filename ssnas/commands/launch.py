"""Commands that start runs: run, recipe show, resume, rerun."""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from ssnas.commands.common import emit, pass_service, reports_errors
from ssnas.runs.service import RunService

if TYPE_CHECKING:
    from ssnas.cluster import RayOptions
    from ssnas.cluster.executor import RayExecutor

RESUMABLE = ("killed", "failed", "lost")


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


def _connect(workspace: RunService, executors: Sequence[str], gpus: str | None, ray: RayOptions) -> RayExecutor | None:
    """The Ray executor when these runs go to Ray, connected before any run is created or queued again."""
    names = sorted(set(executors))
    if len(names) > 1:
        raise click.ClickException(f"these runs use different executors ({', '.join(names)}): start them separately")
    if names != ["ray"]:
        return None
    if gpus is not None:
        raise click.UsageError("--gpus picks this machine's GPUs; Ray gives each run its own")
    from ssnas.cluster import import_ray
    from ssnas.launcher import open_executor

    import_ray()  # not installed: one line, before the registry is touched
    return open_executor("ray", workspace.writer(create=True), workspace.runs_dir, ray_options=ray)


def _slots(gpus: str | None) -> list[str] | None:
    if gpus is None:
        from ssnas.launcher import detect_gpus

        return detect_gpus() or None
    return [g.strip() for g in gpus.split(",") if g.strip()] or None


def _start(workspace: RunService, run_ids: list[str], gpus: str | None, max_parallel: int | None, detach: bool,
           on_ray: RayExecutor | None = None) -> None:
    """Run the queued `run_ids` in the foreground (live progress) or hand them to a detached scheduler;
    on Ray (`on_ray`, see `_connect`) when given, all at once unless `max_parallel` says otherwise."""
    from ssnas.launcher import LocalExecutor, Scheduler, device_slots

    if on_ray is not None:  # Ray places the runs and queues them for resources: all submitted at once
        slots, parallel = device_slots(None, max_parallel or len(run_ids))
    else:
        slots, parallel = device_slots(_slots(gpus), max_parallel)
    if detach:
        command = [sys.executable, "-m", "ssnas.launcher", "--runs", str(workspace.runs_dir),
                   "--max-parallel", str(parallel), *run_ids]
        if slots and slots[0] is not None:
            command += ["--gpus", ",".join(s for s in slots if s is not None)]
        if on_ray is not None:  # the background launcher joins the cluster this process reached
            command += ["--executor", "ray", *dataclasses.replace(on_ray.options, address=on_ray.address).argv()]
        log = open(workspace.runs_dir / "launcher.log", "ab")  # noqa: SIM115 - handed to the child
        subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
        click.echo(f"started {len(run_ids)} run(s) in the background: {' '.join(r[:8] for r in run_ids)}")
        click.echo(f"follow with: ssnas --runs {workspace.runs_dir} runs   (or ssnas tui)")
        return
    from ssnas.progress_view import LaunchView

    registry = workspace.writer()
    cpu_threads = None
    if slots[0] is None and parallel > 1:
        import os

        cpu_threads = max(1, len(os.sched_getaffinity(0)) // parallel)
    view = LaunchView(registry, run_ids)
    executor = on_ray or LocalExecutor(registry, workspace.runs_dir, cpu_threads)
    scheduler = Scheduler(registry, executor, slots, parallel)
    try:
        scheduler.run(run_ids, on_tick=view.tick)
    except KeyboardInterrupt:
        view.close()
        raise click.ClickException("interrupted: running workers were asked to stop (ssnas resume RUN continues one)")
    view.close()
    rows = [registry.get_run(r) for r in run_ids]
    summary = {r["id"]: r for r in registry.runs(group=rows[0]["group_id"], limit=None)} if rows else {}
    emit([summary.get(row.id, row) for row in rows],
         ["id", "name", "stage", "status", "test_f1", "error"],
         formats={"id": lambda v: v[:8], "test_f1": lambda v: "-" if v is None else f"{v:.4f}",
                  "error": lambda v: v or ""})
    failed = [r for r in rows if registry.get_run(r["id"])["status"] != "finished"]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(rows)} run(s) did not finish")


@click.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a recipe value.")
@click.option("--detach", is_flag=True, help="Return at once; the runs go on in the background.")
@click.option("--gpus", help="GPU indices to spread workers over, e.g. 0,1 (default: all found; CPU when none).")
@click.option("--max-parallel", type=int, help="Workers at once (default: one per GPU, or 1 on CPU).")
@click.option("--eager", is_flag=True, help="The plain compute path (run.eager): for comparison and debugging.")
@click.option("--executor", type=click.Choice(["local", "ray"]),
              help="Where the workers run (run.executor): this machine, or a Ray cluster (default: the recipe's).")
@ray_options
@pass_service
@reports_errors
def run(workspace: RunService, recipe: str, overrides: tuple[str, ...], detach: bool, gpus: str | None,
        max_parallel: int | None, eager: bool, executor: str | None, ray: RayOptions) -> None:
    """Validate a recipe, record its runs, and run their workers."""
    from ssnas.recipe import load_recipe
    from ssnas.submit import submit_recipe

    if eager:
        overrides = (*overrides, "run.eager=true")
    if executor:
        overrides = (*overrides, f"run.executor={executor}")
    loaded = load_recipe(recipe, overrides)  # every error before the registry is touched
    on_ray = _connect(workspace, [loaded.run.executor], gpus, ray)
    registry = workspace.writer(create=True)
    group_id, run_ids = submit_recipe(registry, workspace.runs_dir, recipe, overrides)
    click.echo(f"group {group_id}: {len(run_ids)} run(s) queued")
    _start(workspace, run_ids, gpus, max_parallel, detach, on_ray)


@click.group()
def recipe() -> None:
    """Inspect recipes."""


@recipe.command("show")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE")
@reports_errors
def recipe_show(path: str, overrides: tuple[str, ...]) -> None:
    """Print a recipe resolved: extends merged, overrides applied, every default filled in."""
    from ssnas.recipe import expand_sweep, format_recipe, load_recipe

    loaded = load_recipe(path, overrides)
    click.echo(format_recipe(loaded), nl=False)
    points = expand_sweep(loaded)
    if len(points) > 1:
        click.echo(f"# the sweep expands into {len(points)} runs: " + ", ".join(p.run.name for p in points))


@click.command()
@click.argument("run_id", metavar="RUN")
@click.option("--detach", is_flag=True, help="Return at once.")
@click.option("--gpus", help="GPU indices (default: all found; CPU when none).")
@ray_options
@pass_service
@reports_errors
def resume(workspace: RunService, run_id: str, detach: bool, gpus: str | None, ray: RayOptions) -> None:
    """Continue a killed, failed or lost run from its last checkpoint, under the same id (and its queued children)."""
    registry = workspace.writer()
    run_ = registry.get_run(run_id)
    if run_["status"] not in RESUMABLE:
        raise click.ClickException(f"{run_['id'][:8]} is {run_['status']}; only {', '.join(RESUMABLE)} runs resume")
    chain = [run_["id"]]
    while True:
        children = [c for c in registry.children(chain[-1]) if c["status"] in ("queued", *RESUMABLE)]
        if not children:
            break
        chain.append(children[0]["id"])
    on_ray = _connect(workspace, [registry.get_run(member)["executor"] for member in chain], gpus, ray)
    for member in chain:
        registry.update_run(member, status="queued", error=None, ended_at=None)
    _start(workspace, chain, gpus, None, detach, on_ray)


@click.command()
@click.argument("runs", nargs=-1)
@click.option("--failed", is_flag=True, help="Every failed, killed or lost run.")
@click.option("--detach", is_flag=True, help="Return at once.")
@click.option("--gpus", help="GPU indices (default: all found; CPU when none).")
@click.option("--max-parallel", type=int)
@ray_options
@pass_service
@reports_errors
def rerun(workspace: RunService, runs: tuple[str, ...], failed: bool, detach: bool, gpus: str | None,
          max_parallel: int | None, ray: RayOptions) -> None:
    """Run runs again from the start as new runs with the same recipe (and the same parent)."""
    registry = workspace.writer()
    if failed == bool(runs):
        raise click.UsageError("give RUN ids or --failed, not both")
    originals = registry.runs(status=list(RESUMABLE), limit=None) if failed else [registry.get_run(r) for r in runs]
    on_ray = _connect(workspace, [original["executor"] for original in originals], gpus, ray)
    renamed: dict[str, str] = {}  # a child rerun with its parent hangs under the parent's new run
    for original in sorted(originals, key=lambda r: r["created_at"]):
        full = registry.get_run(original["id"])
        new_id = registry.create_run(
            name=full["name"], stage=full["stage"], config=full["config"], recipe_path=full["recipe_path"],
            objective=full["objective"], dataset=full["dataset"], label_ratio=full["label_ratio"], seed=full["seed"],
            group_id=full["group_id"], parent_id=renamed.get(full["parent_id"], full["parent_id"]),
            tags=[*full["tags"], f"rerun-of:{full['id'][:8]}"], git_commit=full["git_commit"], host=full["host"],
            versions=full["versions"], executor=full["executor"])
        registry.update_run(new_id, run_dir=str(workspace.runs_dir / new_id))
        renamed[full["id"]] = new_id
    new_ids = list(renamed.values())
    if not new_ids:
        click.echo("nothing to rerun")
        return
    click.echo(f"{len(new_ids)} run(s) queued again")
    _start(workspace, new_ids, gpus, max_parallel, detach, on_ray)
