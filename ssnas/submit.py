"""Recipes into registry runs: a chain of stage runs per arm x sweep point, all in one group, label-free
stages shared (docs/engine.md, "Shared stages").

A chain's stage whose key (`ssnas.stage_key`) another chain's stage already has is not queued again:
the chain links to that run (its `parent_id`). So a label-ratio sweep of the self-supervised pipeline
queues one search and one pretraining per seed and one fine-tune per (seed, r). With `reuse`, a
stage links to an earlier finished run of the registry with its key instead of being queued at all.

Everything is validated before the first row is written, so a bad recipe creates no run.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssnas.errors import RecipeError, RegistryError
from ssnas.recipe import ARM_TAG, Recipe, load_recipe, pipeline_stages, point_label, recipe_from_dict, run_points
from ssnas.registry import NewRun, Registry
from ssnas.run_record import Run
from ssnas.runs.lookup import run_folder
from ssnas.scheduling.environment import git_commit, host_name, new_group_id, package_versions
from ssnas.stage_key import chain_keys, stage_key

# What a finished stage leaves for its children (ssnas.execution, which imports torch, names them too):
# an earlier run without it cannot be reused.
OUTPUT_FILES = {"search": "genotype.json", "pretrain": "pretrained.pt"}
SHARED = "*"  # stands for a sweep value (or arm) that differs between the chains of a shared run


@dataclass(frozen=True)
class Point:
    """One chain to queue: the recipe of one arm x sweep point, its arm and its point."""

    recipe: Recipe
    arm: str | None
    values: dict[str, Any]  # sweep key -> this point's value


@dataclass
class PlannedRun:
    """One stage run a submission needs, and the chains (points) that read it."""

    stage: str
    key: str | None  # None: reads labels, or follows a stage that does; never shared
    parent: int | None  # index of the planned parent run
    points: list[Point] = field(default_factory=list)

    @property
    def recipe(self) -> Recipe:
        """The first chain's recipe: the config this run records (what differs between its chains it does not read)."""
        return self.points[0].recipe


def recipe_points(recipe: Recipe) -> list[Point]:
    """The recipe's chains: one per arm x sweep point (`expand_sweep`'s recipes, with their arm and point)."""
    if not recipe.sweep and not recipe.arms:
        return [Point(recipe, None, {})]
    return [Point(recipe_from_dict(d, recipe.path), arm, values) for d, arm, values in run_points(recipe)]


def plan_runs(points: Sequence[Point], share: bool = True) -> list[PlannedRun]:
    """The stage runs of `points`' chains in start order (chain by chain, each run after its parent); with
    `share`, a stage whose key an earlier chain's stage has is that run, not a new one."""
    planned: list[PlannedRun] = []
    by_key: dict[str, int] = {}
    for point in points:
        stages = pipeline_stages(point.recipe)
        parent = None
        for stage, key in zip(stages, chain_keys(point.recipe, stages), strict=True):
            if share and key is not None and key in by_key:
                index = by_key[key]
            else:
                index = len(planned)
                planned.append(PlannedRun(stage, key, parent))
                if key is not None:
                    by_key.setdefault(key, index)
            planned[index].points.append(point)
            parent = index
    return planned


def shared_name(base: str, points: Sequence[Point], stage: str) -> str:
    """A run's name: its chain's, `name[arm=ssl,label_ratio=0.1,seed=0]/search`; for a run that several
    chains share, what differs between them is `*` (`name[arm=ssl,label_ratio=*,seed=0]/search`)."""
    first = points[0]
    multi_stage = any(len(p.recipe.run.stages) > 1 for p in points)
    suffix = f"/{stage}" if multi_stage else ""
    if len(points) == 1:
        return first.recipe.run.name + suffix
    arm = first.arm if all(p.arm == first.arm for p in points) else SHARED
    values = {key: value if all(p.values.get(key) == value for p in points) else SHARED
              for key, value in first.values.items()}
    return f"{base}[{point_label(values, arm)}]{suffix}"


def shared_tags(points: Sequence[Point]) -> list[str]:
    """The tags every chain of a run has, and the arm tag of each of its chains' arms."""
    tag_lists = [p.recipe.run.tags for p in points]
    common = [tag for tag in tag_lists[0] if all(tag in tags for tags in tag_lists)]
    arms = [tag for tags in tag_lists for tag in tags if tag.startswith(ARM_TAG)]
    return list(dict.fromkeys([*common, *arms]))


def _objective(recipe: Recipe) -> str:
    """A chain is known by its search's objective (the arm it stands for); one without search by its first stage's."""
    stages = pipeline_stages(recipe)
    if "search" in stages:
        return recipe.search["objective"]
    return {"pretrain": "ssl", "finetune": "supervised"}[stages[0]]


def _label_ratio(points: Sequence[Point]) -> float | None:
    """The chains' label ratio; None where they differ (a shared label-free run reads none of them)."""
    ratios = {p.recipe.data.label_ratio for p in points}
    return ratios.pop() if len(ratios) == 1 else None


def finished_by_key(registry: Registry, runs_dir: Path, stages: Iterable[str],
                    datasets: Iterable[str]) -> dict[str, Run]:
    """Finished runs of these stages and datasets that left their output, by stage key (the latest of a key)."""
    wanted = [s for s in dict.fromkeys(stages) if s in OUTPUT_FILES]
    if not wanted:
        return {}
    keys: dict[str, str | None] = {}
    found: dict[str, Run] = {}
    for run in registry.runs(status="finished", stage=wanted, dataset=list(dict.fromkeys(datasets)),
                             sort="created_at", config=True):
        key = _run_key(registry, run, keys)
        if key is not None and (run_folder(runs_dir, run) / OUTPUT_FILES[run.stage]).is_file():
            found[key] = run
    return found


def _run_key(registry: Registry, run: Run, keys: dict[str, str | None]) -> str | None:
    """The stage key of a recorded run, from its config and its parent's key; None where it has none or its
    config or parent can no longer be read."""
    if run.id in keys:
        return keys[run.id]
    keys[run.id] = None  # also what a (corrupt) cycle of parents gets
    parent_key = None
    if run.parent_id is not None:
        try:
            parent_key = _run_key(registry, registry.get_run(run.parent_id), keys)
        except RegistryError:  # the parent was deleted
            return None
        if parent_key is None:
            return None
    if run.config is None:
        return None
    try:
        keys[run.id] = stage_key(recipe_from_dict(run.config, path=f"run {run.id}"), run.stage, parent_key)
    except RecipeError:  # written by a version whose keys this one no longer reads
        return None
    return keys[run.id]


@dataclass(frozen=True)
class Plan:
    """A recipe's stage runs, before anything is recorded: what preflight checks and `queue_plan` queues."""

    recipe: Recipe
    points: list[Point]
    runs: list[PlannedRun]


def plan_recipe(recipe_path: str, overrides: Sequence[str] = (), *, share: bool = True) -> Plan:
    """Validate a recipe and plan its stage runs (see `plan_runs`); nothing is written."""
    recipe = load_recipe(recipe_path, overrides)
    points = recipe_points(recipe)
    return Plan(recipe, points, plan_runs(points, share=share))


@dataclass(frozen=True)
class Submission:
    """What `submit` did: the group, the runs it queued (start order), and the earlier runs it linked to."""

    group_id: str
    queued: list[str]
    reused: list[str]
    shared: int  # queued runs that two or more chains share
    chains: int


def submit(registry: Registry, runs_dir: Path, recipe_path: str, overrides: Sequence[str] = (), *,
           share: bool = True, reuse: bool = False) -> Submission:
    """Validate a recipe and queue its runs: label-free stages once per key unless `share` is off; with `reuse`,
    none whose key an earlier finished run of the registry has (the chains link to that run)."""
    return queue_plan(registry, runs_dir, plan_recipe(recipe_path, overrides, share=share), reuse=reuse)


def queue_plan(registry: Registry, runs_dir: Path, plan: Plan, *, reuse: bool = False,
               ray_options: str | None = None) -> Submission:
    """Queue a plan's runs all or nothing: their rows in one transaction, their folders made inside it (and
    removed again when it fails), so that a failure part-way leaves no run queued and no stray folder."""
    group_id = new_group_id()
    commit, versions = git_commit(Path(plan.recipe.path).resolve().parent), package_versions()
    earlier: Mapping[str, Run] = {}
    if reuse:
        earlier = finished_by_key(registry, runs_dir, (p.stage for p in plan.runs if p.key),
                                  (p.recipe.data.dataset for p in plan.runs))
    slots: list[str | int] = []  # per planned run: an earlier run's id, or its index among the new runs
    new: list[NewRun] = []
    reused: list[str] = []
    for run in plan.runs:
        if run.key is not None and run.key in earlier:
            slots.append(earlier[run.key].id)
            reused.append(earlier[run.key].id)
            continue
        parent = slots[run.parent] if run.parent is not None else None
        slots.append(len(new))
        new.append(_new_run(plan.recipe.run.name, run, parent, group_id, commit, versions, ray_options))
    made: list[Path] = []

    def make_folders(ids: list[str]) -> None:
        for run_id in ids:
            folder = Path(runs_dir) / run_id
            folder.mkdir(parents=True)
            made.append(folder)

    try:
        queued = registry.create_runs(new, runs_dir, before_commit=make_folders) if new else []
    except BaseException:
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    shared = sum(len(run.points) > 1 for run in plan.runs if not (run.key is not None and run.key in earlier))
    return Submission(group_id, queued, list(dict.fromkeys(reused)), shared, len(plan.points))


def _new_run(base: str, run: PlannedRun, parent: str | int | None, group_id: str, commit: str | None,
             versions: dict[str, str], ray_options: str | None) -> NewRun:
    recipe = run.recipe
    return NewRun(
        name=shared_name(base, run.points, run.stage),
        stage=run.stage,
        config=recipe.to_dict(),
        recipe_path=recipe.path,
        objective=_objective(recipe),
        dataset=recipe.data.dataset,
        label_ratio=_label_ratio(run.points),
        seed=recipe.run.seed,
        group_id=group_id,
        parent=parent,
        tags=tuple(shared_tags(run.points)),
        git_commit=commit,
        host=host_name(),
        versions=versions,
        executor=recipe.run.executor,
        ray_options=ray_options,
    )


def submit_recipe(registry: Registry, runs_dir: Path, recipe_path: str, overrides: Sequence[str] = (), *,
                  share: bool = True, reuse: bool = False) -> tuple[str, list[str]]:
    """Validate a recipe and queue its runs (see `submit`); returns the group id and the queued run ids, in start
    order."""
    done = submit(registry, runs_dir, recipe_path, overrides, share=share, reuse=reuse)
    return done.group_id, done.queued
