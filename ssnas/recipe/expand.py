"""A recipe's runs: one per arm (`[arms.NAME]`, variants of the recipe) and per point of the
cartesian product of its `[sweep]` lists, each named after its arm and point."""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ssnas.recipe.messages import show
from ssnas.recipe.model import Recipe
from ssnas.recipe.schema import SWEEP_ALIASES

ARM_TAG = "arm:"

# One run: its resolved dict, its arm (None without arms), its sweep point (dotted key -> value).
RunPoint = tuple[dict[str, Any], str | None, dict[str, Any]]


def arm_of(tags: Sequence[str]) -> str | None:
    """The arm a run was expanded from, by its `arm:NAME` tag."""
    return next((t.removeprefix(ARM_TAG) for t in tags if t.startswith(ARM_TAG)), None)


def pipeline_stages(recipe: Recipe) -> list[str]:
    """The stages a run executes, in order: [stage] for one stage, the chain for a pipeline."""
    return list(recipe.run.stages)


def run_points(recipe: Recipe) -> Iterator[RunPoint]:
    """(the resolved dict of one run, its arm or None, its sweep point) for every run of the recipe."""
    keys = list(recipe.sweep)
    points = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(recipe.sweep[k] for k in keys))]
    for arm, armed in armed_dicts(recipe):
        for point in points:
            d = with_values(armed, point)
            d["run"]["name"] = f"{recipe.run.name}[{point_label(point, arm)}]"
            yield d, arm, point


def armed_dicts(recipe: Recipe) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(arm, the resolved dict of the recipe with the arm's values and tag) per arm; (None, the recipe) without."""
    base = recipe.to_dict()
    base["sweep"], base["arms"] = {}, {}
    if not recipe.arms:
        yield None, base
    for arm, overrides in recipe.arms.items():
        d = with_values(base, overrides)
        if "run.stage" in overrides and "run.stages" not in overrides:
            del d["run"]["stages"]  # the arm's stage decides its chain
        d["run"]["tags"] = list(dict.fromkeys([*d["run"]["tags"], f"{ARM_TAG}{arm}"]))
        yield arm, d


def with_values(d: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a resolved dict with dotted keys set."""
    d = copy.deepcopy(d)
    for key, value in values.items():
        *tables, name = key.split(".")
        table = d
        for part in tables:
            table = table.setdefault(part, {})
        table[name] = copy.deepcopy(value)
    return d


def point_label(point: Mapping[str, Any], arm: str | None = None) -> str:
    """A run's arm and sweep point as they suffix its name: `arm=ssl,label_ratio=0.1,seed=0`."""
    short = {v: k for k, v in SWEEP_ALIASES.items()}
    parts = [] if arm is None else [f"arm={arm}"]
    return ",".join(parts + [f"{short.get(k, k)}={_label(v)}" for k, v in point.items()])


def _label(value: Any) -> str:
    if isinstance(value, str):
        return Path(value).name if os.sep in value else value
    if isinstance(value, list):
        return "[" + ",".join(_label(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{_label(v)}" for k, v in value.items()) + "}"
    return show(value)
