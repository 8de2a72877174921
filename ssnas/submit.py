"""Recipes into registry runs: one chain of stage runs per arm x sweep point, all in one group.

Everything is validated before the first row is written, so a bad recipe creates no run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ssnas.launcher import git_commit, host_name, new_group_id, package_versions
from ssnas.recipe import Recipe, expand_sweep, load_recipe, pipeline_stages
from ssnas.registry import Registry


def create_chain(registry: Registry, recipe: Recipe, runs_dir: Path, group_id: str, commit: str | None,
                 versions: dict[str, str], parent_id: str | None = None) -> list[str]:
    """Queue the stage runs of one sweep point, each the parent of the next."""
    ids = []
    config = recipe.to_dict()
    stages = pipeline_stages(recipe)
    # a chain is known by its search's objective (the arm it stands for); a lone stage by its own
    objective = recipe.search["objective"] if "search" in stages else {"pretrain": "ssl", "finetune": "supervised"}[stages[0]]
    for stage in stages:
        run_id = registry.create_run(
            name=recipe.run.name if len(stages) == 1 else f"{recipe.run.name}/{stage}",
            stage=stage,
            config=config,
            recipe_path=recipe.path,
            objective=objective,
            dataset=recipe.data.dataset,
            label_ratio=recipe.data.label_ratio,
            seed=recipe.run.seed,
            group_id=group_id,
            parent_id=parent_id,
            tags=recipe.run.tags,
            git_commit=commit,
            host=host_name(),
            versions=versions,
            executor=recipe.run.executor,
        )
        registry.update_run(run_id, run_dir=str(runs_dir / run_id))
        ids.append(run_id)
        parent_id = run_id
    return ids


def submit_recipe(registry: Registry, runs_dir: Path, recipe_path: str, overrides: Sequence[str] = ()) -> tuple[str, list[str]]:
    """Validate a recipe and queue its runs; returns the group id and the run ids in start order."""
    points = expand_sweep(load_recipe(recipe_path, overrides))
    group_id = new_group_id()
    commit, versions = git_commit(Path(recipe_path).resolve().parent), package_versions()
    ids: list[str] = []
    for point in points:
        ids.extend(create_chain(registry, point, runs_dir, group_id, commit, versions))
    return group_id, ids
