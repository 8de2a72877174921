"""Starting runs, for every front end: submit a recipe, resume a run, rerun runs, and the folder's queue.

Each call only writes queued rows and then makes sure the runs folder's scheduler runs
(`ensure_scheduler`, ssnas.scheduling.daemon): one process per folder starts every queued run
within the folder's settings, whoever queued it. `max_parallel` and `gpus` given to a call change
those settings for the folder (None leaves them as they are). Everything is checked before the
first row is written; errors are `SsnasError`s with one-line messages. Torch-free, click-free, and
nothing here prints: the front ends render what these return.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssnas.errors import SsnasError
from ssnas.registry import NewRun, Registry
from ssnas.run_record import ACTIVE, Run
from ssnas.runs.actions import CANCELLED, RESUMABLE, Outcome, kill, refusal
from ssnas.runs.lookup import run_folder
from ssnas.scheduling.daemon import ensure_scheduler
from ssnas.scheduling.scheduler import LOCAL, Waiting, waiting_reasons
from ssnas.scheduling.state import SchedulerState, read_state, update_settings

if TYPE_CHECKING:
    from ssnas.cluster import RayOptions
    from ssnas.cluster.slurm import SlurmOptions
    from ssnas.recipe import Recipe

__all__ = ["RESUMABLE", "LaunchOptions", "Launched", "Queue", "submit", "resume", "rerun", "cancel", "wait_for",
           "queue", "cancel_queued"]

SCHEDULER_CHECK_S = 2.0  # how often a follower makes sure the folder still has a scheduler


@dataclass(frozen=True)
class LaunchOptions:
    """How what is queued runs: the folder's settings to change (None keeps them), and a cluster's options."""

    max_parallel: int | None = None  # local workers at once
    gpus: tuple[str, ...] | None = None  # GPU slots; () for the CPU only
    ray: RayOptions | None = None  # Ray runs: the cluster and what each run asks for (None: the defaults)
    slurm: SlurmOptions | None = None  # SLURM runs: the job settings given (None: the defaults, or the stored ones)


@dataclass(frozen=True)
class Launched:
    """What a launch queued: the run ids in start order, one line for people, and the folder's scheduler."""

    run_ids: tuple[str, ...]
    message: str
    group_id: str | None = None
    scheduler: SchedulerState | None = None
    warnings: tuple[str, ...] = ()  # what preflight found legal but degenerate (one line each)


def submit(runs_dir: Path, recipe_path: str, overrides: Sequence[str] = (), options: LaunchOptions = LaunchOptions(),
           *, share: bool = True, reuse: bool = False) -> Launched:
    """Validate a recipe and queue its runs (see ssnas.submit), then make sure the folder's scheduler runs.

    A bad recipe, what a worker would trip on (its data, device or checkpoint: ssnas.preflight), an
    unreachable Ray cluster or Ray not installed is an error before the registry is touched (a missing
    registry is not created); the runs and their folders are then recorded all or nothing.
    """
    from ssnas.preflight import StageRun, check_stages
    from ssnas.submit import plan_recipe, queue_plan

    plan = plan_recipe(recipe_path, overrides, share=share)
    remote = _executor_options(runs_dir, [plan.recipe.run.executor], options)
    warnings = check_stages([StageRun(run.recipe, run.stage, run.parent is not None) for run in plan.runs],
                            local=remote is None)
    registry = _registry(runs_dir, create=True)
    try:
        done = queue_plan(registry, runs_dir, plan, reuse=reuse, ray_options=remote.to_json() if remote else None)
    finally:
        registry.close()
    message = f"group {done.group_id}: {len(done.queued)} run(s) queued"
    if done.reused:
        message += f", {len(done.reused)} earlier run(s) reused"
    state = _schedule(runs_dir, done.queued, options) if done.queued else None
    return Launched(tuple(done.queued), message, done.group_id, state, tuple(warnings))


def resume(runs_dir: Path, run_id: str, options: LaunchOptions = LaunchOptions()) -> Launched:
    """Queue a killed, failed or lost run again under its id (it continues from its checkpoint), with its
    queued or resumable children in chain. A queued run is the scheduler's already: it is adopted."""
    registry = _registry(runs_dir)
    try:
        run = registry.get_run(run_id)
        if run.status == "queued":
            state = ensure_scheduler(runs_dir, options.max_parallel, options.gpus)
            return Launched((run.id,), f"{run.short_id} is queued: the folder's scheduler starts it", None, state)
        refused = refusal("resume", run)
        if refused is not None:
            raise SsnasError(refused)
        chain = [run, *_resumable_descendants(registry, run)]
        remote = _executor_options(runs_dir, [member.executor for member in chain], options, stored=chain[0])
        warnings = _preflight(registry, runs_dir, chain, local=remote is None)
        registry.requeue([member.id for member in chain], remote.to_json() if remote else None)
    finally:
        registry.close()
    state = _schedule(runs_dir, [m.id for m in chain], options)
    more = f" with {len(chain) - 1} child run(s)" if len(chain) > 1 else ""
    return Launched(tuple(m.id for m in chain), f"{run.short_id} queued again{more}", run.group_id, state,
                    tuple(warnings))


def rerun(runs_dir: Path, run_ids: Sequence[str] = (), *, failed: bool = False, overrides: Sequence[str] = (),
          options: LaunchOptions = LaunchOptions()) -> Launched:
    """Queue runs again from the start as new runs with the same config (and parent; a child rerun with its
    parent hangs under the parent's new run): the given ones, or with `failed` every failed, killed and lost.
    `overrides` ("KEY=VALUE", as `submit` takes them) change each config first; a parent not rerun stays as it is."""
    if failed == bool(run_ids):
        raise SsnasError("rerun: give run ids or failed runs, not both")
    registry = _registry(runs_dir)
    try:
        chosen = registry.runs(status=list(RESUMABLE)) if failed else [registry.get_run(r) for r in run_ids]
        originals = sorted((registry.get_run(run.id) for run in chosen), key=lambda r: r.created_at)
        if not originals:
            return Launched((), "nothing to rerun")
        again = [_overridden(original, overrides) for original in originals] if overrides else originals
        remote = _executor_options(runs_dir, [run.executor for run in again], options, stored=originals[0])
        warnings = _preflight(registry, runs_dir, again, local=remote is None)
        batch = {run.id: index for index, run in enumerate(again)}
        new_ids = registry.create_runs([
            NewRun(name=run.name, stage=run.stage, config=run.config or {},
                   recipe_path=run.recipe_path, objective=run.objective, dataset=run.dataset,
                   label_ratio=run.label_ratio, seed=run.seed, group_id=run.group_id,
                   parent=batch.get(run.parent_id or "", run.parent_id),
                   tags=(*run.tags, f"rerun-of:{run.short_id}"), git_commit=run.git_commit,
                   host=run.host, versions=run.versions, executor=run.executor,
                   ray_options=remote.to_json() if remote else None)
            for run in again], runs_dir)
    finally:
        registry.close()
    state = _schedule(runs_dir, new_ids, options)
    changes = f" with {', '.join(overrides)}" if overrides else ""
    return Launched(tuple(new_ids), f"{len(new_ids)} run(s) queued again{changes}", None, state, tuple(warnings))


# The columns of a run that ssnas.submit takes from a value of its config: a rerun that changes the value
# changes the column (a shared run's label ratio, None, stays unless the override changes the ratio itself).
_CONFIG_COLUMNS: dict[str, Callable[[Recipe], Any]] = {
    "seed": lambda recipe: recipe.run.seed,
    "dataset": lambda recipe: recipe.data.dataset,
    "label_ratio": lambda recipe: recipe.data.label_ratio,
    "executor": lambda recipe: recipe.run.executor,
    "objective": lambda recipe: recipe.search["objective"] if "search" in recipe.run.stages else None,
}


def _overridden(run: Run, overrides: Sequence[str]) -> Run:
    """`run` with `overrides` applied to its stored config, as a rerun records it: the config, and each column
    that comes from a value the overrides changed."""
    from ssnas.recipe import recipe_from_dict
    from ssnas.recipe.stored import with_overrides

    if run.config is None:
        raise SsnasError(f"run {run.short_id}: its stored config cannot be read; it cannot run again")
    where = run.recipe_path or f"run {run.short_id}"
    before, after = recipe_from_dict(run.config, where), with_overrides(run.config, overrides, where)
    changed = {column: value(after) for column, value in _CONFIG_COLUMNS.items() if value(after) != value(before)}
    return dataclasses.replace(run, config=after.to_dict(), **changed)


def cancel(runs_dir: Path, run_ids: Sequence[str]) -> list[Outcome]:
    """Stop these runs (a submission interrupted): running workers checkpoint and end killed, queued runs end
    killed without starting; runs already ended are left as they are."""
    registry = _registry(runs_dir)
    try:
        active = [run for run in (registry.get_run(r) for r in run_ids) if run.status in ACTIVE]
        return kill(registry, runs_dir, active) if active else []
    finally:
        registry.close()


def wait_for(runs_dir: Path, run_ids: Sequence[str], on_tick: Callable[[], None] | None = None,
             interval: float = 0.25, timeout: float | None = None) -> bool:
    """Until every run of `run_ids` has ended (True), or `timeout` seconds (False); `on_tick` after each look.

    Meanwhile it makes sure the folder still has a scheduler, so that runs whose scheduler died are
    adopted rather than left queued.
    """
    registry = Registry(Path(runs_dir) / "registry.db", create=False, readonly=True)
    started = checked = time.monotonic()
    pending = list(run_ids)
    try:
        while True:
            if on_tick is not None:
                on_tick()
            pending = [r for r in pending if not registry.get_run(r).terminal]
            if not pending:
                return True
            now = time.monotonic()
            if timeout is not None and now - started >= timeout:
                return False
            if now - checked >= SCHEDULER_CHECK_S:
                ensure_scheduler(runs_dir)
                checked = now
            time.sleep(interval)
    finally:
        registry.close()


# -- the queue -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queue:
    """The folder's scheduler (alive or not, and its settings) and its runs: running ones, then queued ones in
    start order with why each waits."""

    scheduler: SchedulerState
    running: list[Run] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    started_scheduler: bool = False  # this call started one, for queued runs that had none


def queue(runs_dir: Path, max_parallel: int | None = None, gpus: tuple[str, ...] | None = None,
          adopt: bool = True) -> Queue:
    """The queue of the folder, after changing the settings given; with `adopt`, queued runs without a
    scheduler get one (it starts them)."""
    runs_dir = Path(runs_dir)
    if max_parallel is not None or gpus is not None:
        if not runs_dir.is_dir():
            raise SsnasError(f"{runs_dir}: no such runs folder")
        update_settings(runs_dir, max_parallel, gpus)
    state = read_state(runs_dir)
    if not (runs_dir / "registry.db").exists():
        return Queue(state)
    registry = Registry(runs_dir / "registry.db", create=False, readonly=True)
    try:
        queued = registry.runs(status="queued", sort="created_at")
        running = registry.runs(status="running", sort="started_at")
        started = False
        if queued and not state.alive and adopt:
            state = ensure_scheduler(runs_dir)
            started = True
        parents = {}
        for run in queued:
            if run.parent_id and run.parent_id not in parents:
                parents[run.parent_id] = _status(registry, run.parent_id)
    finally:
        registry.close()
    parallel = state.parallel or _planned_parallel(state)
    return Queue(state, running, waiting_reasons(queued, running, parents, parallel), started)


def cancel_queued(runs_dir: Path, run_ids: Sequence[str] = (), everything: bool = False) -> list[Outcome]:
    """Take queued runs off the queue (they end killed, "cancelled before it started"): the given ones, or
    with `everything` all of the folder's. A run that is not queued is left as it is (say `kill` for it)."""
    registry = _registry(runs_dir)
    try:
        targets = registry.runs(status="queued", sort="created_at") if everything else \
            [registry.get_run(r) for r in run_ids]
        outcomes = []
        for run in targets:
            if run.status != "queued" or not registry.cancel_queued(run.id, CANCELLED):
                status = registry.get_run(run.id).status
                outcomes.append(Outcome(run.id, False, f"{run.short_id} is {status}, not queued"))
                continue
            outcomes.append(Outcome(run.id, True, f"{run.short_id} cancelled"))
        return outcomes
    finally:
        registry.close()


def _resumable_descendants(registry: Registry, run: Run) -> list[Run]:
    """The queued or stopped runs below `run`, parents before children: every chain of a shared stage."""
    found: list[Run] = []
    level = [run]
    while level:
        level = [registry.get_run(child.id) for parent in level for child in registry.children(parent.id)
                 if child.status in ("queued", *RESUMABLE)]
        found += level
    return found


# -- helpers ---------------------------------------------------------------------------------------------


def _registry(runs_dir: Path, create: bool = False) -> Registry:
    return Registry(Path(runs_dir) / "registry.db", create=create)


def _status(registry: Registry, run_id: str) -> str:
    try:
        return registry.get_run(run_id).status
    except SsnasError:
        return "deleted"


def _planned_parallel(state: SchedulerState) -> int:
    """Workers at once by the settings alone (no scheduler says what it applies; GPUs are not looked for)."""
    settings = state.settings
    if settings.gpus:
        return max(1, min(settings.max_parallel or len(settings.gpus), len(settings.gpus)))
    return settings.max_parallel or 1


def _executor_options(runs_dir: Path, executors: Sequence[str], options: LaunchOptions,
                      stored: Run | None = None) -> RayOptions | SlurmOptions | None:
    """The options to store with the runs when they go to a cluster (None when they run here), checked now:
    the cluster's library installed, the cluster reachable, no local GPUs asked for.

    Each run's options are stored with it (`runs.ray_options`, which the run's executor reads); `stored`
    is the run started again by a resume or rerun, None for a new submission.
    """
    names = sorted(set(executors))
    if len(names) > 1:
        raise SsnasError(f"these runs use different executors ({', '.join(names)}): start them separately")
    if options.slurm is not None and names != ["slurm"]:
        raise SsnasError("--slurm settings are for SLURM runs (--executor slurm)")
    if names == [LOCAL] or not names:
        return None
    if names not in (["ray"], ["slurm"]):
        raise SsnasError(f"unknown executor {names[0]!r} (this ssnas runs local, ray and slurm)")
    if options.gpus is not None:
        raise SsnasError(f"--gpus picks this machine's GPUs; {'Ray' if names == ['ray'] else 'SLURM'} gives each "
                         "run its own")
    if names == ["slurm"]:
        return _slurm_options(options, stored)
    return _ray_options(runs_dir, options, stored)


def _ray_options(runs_dir: Path, options: LaunchOptions, stored: Run | None) -> RayOptions:
    """Ray installed and the cluster reachable (its address resolved). What each run asks for is what is given
    now (a run resumed or rerun after its node died must not ask for that node's resources again); without an
    address, the cluster `stored`'s run went to."""
    from ssnas.cluster import RayOptions, connect, import_ray

    import_ray()  # not installed: one line, before the registry is touched
    chosen = options.ray or RayOptions()
    address = connect(chosen.address or (RayOptions.from_json(stored.ray_options).address if stored else None),
                      Path(runs_dir))
    return dataclasses.replace(chosen, address=address)


def _slurm_options(options: LaunchOptions, stored: Run | None) -> SlurmOptions:
    """The job settings of `stored`'s run (a resume or rerun asks for the same partition, time, ...) with the
    ones given now in their place; submitit installed and, for SLURM, sbatch on this machine."""
    from ssnas.cluster.slurm import SlurmOptions, check_submission

    chosen = SlurmOptions.from_json(stored.ray_options if stored else None).merged(options.slurm or SlurmOptions())
    check_submission(chosen)
    return chosen


def _schedule(runs_dir: Path, run_ids: Sequence[str], options: LaunchOptions) -> SchedulerState:
    """Make sure the folder's scheduler runs for what was just queued; when it cannot start (or the launch is
    interrupted here), the runs are taken off the queue again rather than left queued with no one to run them."""
    try:
        return ensure_scheduler(runs_dir, options.max_parallel, options.gpus)
    except BaseException as error:
        registry = _registry(runs_dir)
        try:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            for run_id in run_ids:
                registry.cancel_queued(run_id, f"not started: the scheduler could not start ({reason})")
        finally:
            registry.close()
        raise


def _preflight(registry: Registry, runs_dir: Path, runs: Sequence[Run], *, local: bool) -> list[str]:
    """Preflight (ssnas.preflight) for runs queued again from their stored configs, and the outputs their finished
    parents left: a run whose parent's genotype or pretrained network is gone cannot start."""
    from ssnas.preflight import StageRun, check_stages
    from ssnas.recipe import recipe_from_dict
    from ssnas.submit import OUTPUT_FILES

    stage_runs = []
    queued_again = {run.id for run in runs}
    for run in runs:
        if run.config is None:
            raise SsnasError(f"run {run.short_id}: its stored config cannot be read; it cannot run again")
        recipe = recipe_from_dict(run.config, path=run.recipe_path or f"run {run.short_id}")
        stage_runs.append(StageRun(recipe, run.stage, run.parent_id is not None))
        if run.parent_id is None or run.parent_id in queued_again:
            continue
        try:
            parent = registry.get_run(run.parent_id)
        except SsnasError:
            raise SsnasError(f"run {run.short_id}: its parent run {run.parent_id[:8]} was deleted") from None
        output = run_folder(runs_dir, parent) / OUTPUT_FILES.get(parent.stage, "")
        if parent.status == "finished" and parent.stage in OUTPUT_FILES and not output.is_file():
            raise SsnasError(f"run {run.short_id}: {output}: missing (its parent's {parent.stage} output)")
    return check_stages(stage_runs, local=local)
