"""Checking a merged recipe tree key by key: types from the dataclasses' hints, ranges by building the
dataclasses themselves, the rules that span keys (`rules.py`), then every run of its sweep and arms."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from ssnas import plugins
from ssnas.config.data import is_plugin_dataset, known_datasets
from ssnas.config.runtime import Runtime
from ssnas.errors import ConfigError, RecipeError
from ssnas.recipe import rules
from ssnas.recipe.expand import RunPoint, armed_dicts, point_label, run_points, with_values
from ssnas.recipe.kinds import coerce, plain
from ssnas.recipe.messages import Invalid, show
from ssnas.recipe.model import DATA_TABLES, EXECUTORS, RUN_STAGES, DataSection, Recipe, RunSection, shared_values
from ssnas.recipe.schema import (
    ARM_NAME,
    CONFIG_SECTIONS,
    LEAVES,
    SECTIONS,
    SUBTABLES,
    SWEEP_ALIASES,
    TOP_LEVEL,
    UNARMED,
    UNSWEPT,
    Key,
    unknown,
)
from ssnas.recipe.tune_table import read_tune
from ssnas.recipe.tuning import objective_problem
from ssnas.runs.actions import tag_problem
from ssnas.runs.format import control_character

Config = TypeVar("Config")


def checked(tree: dict[str, Any], origins: Mapping[str, str], where: str, default_name: str | None,
            check_files: bool) -> Recipe:
    """The recipe of a merged tree, with every run of it checked. A problem becomes a `RecipeError` that
    names the file (or `--set` override) that set the key, from `origins` (else `where`)."""
    try:
        recipe = _build(tree, where, default_name, check_files)
        _check_runs(recipe, check_files)
        if recipe.tune is not None:
            _check_tune(recipe, check_files)
        return recipe
    except Invalid as err:
        source = origins.get(re.sub(r"\[\d+\]$", "", err.key), where)
        if source.startswith("--set "):
            raise RecipeError(f"{source}: {err.problem}") from None
        raise RecipeError(f"{source}: {err.key}: {err.problem}") from None


def _build(tree: Mapping[str, Any], where: str, default_name: str | None, check_files: bool) -> Recipe:
    for name in tree:
        if name not in TOP_LEVEL:
            raise Invalid(name, unknown(name, name, TOP_LEVEL, "section"))
    run = _read_run(tree.get("run"), default_name)
    data = _read_data(tree.get("data"))
    sections = {}
    for name, cls in CONFIG_SECTIONS.items():
        sections[name] = _read_section(tree.get(name), name, SECTIONS[name])
        _built(cls, {**sections[name], **shared_values(cls, data)})
    rules.check_model(run, sections["finetune"])
    sweep = _read_sweep(tree.get("sweep"))
    arms = _read_arms(tree.get("arms"), sweep)
    tune = read_tune(tree["tune"]) if "tune" in tree else None
    if check_files:
        rules.check_files(run, data)
        rules.check_binding(run, data)
    return Recipe(where, run, data, sweep=sweep, arms=arms, tune=tune, **sections)


def _read_section(raw: Any, key: str, keys: Sequence[Key], tables: Sequence[str] = ()) -> dict[str, Any]:
    """The section's values, type-checked, every absent key at its default."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise Invalid(key, f"expected a table ([{key}]), got {show(raw)}")
    names = [k.name for k in keys]
    for name in raw:
        if name not in names and name not in tables:
            raise Invalid(f"{key}.{name}", unknown(f"{key}.{name}", name, names, "key"))
    return {k.name: coerce(k.kind, raw[k.name], f"{key}.{k.name}") if k.name in raw else plain(k.default)
            for k in keys}


def _built(cls: type[Config], values: Mapping[str, Any]) -> Config:
    """The dataclass of a section's checked values (lists as tuples): its own range checks run, and their
    messages already read `section.key: problem`."""
    try:
        return cls(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})
    except ConfigError as err:
        key, _, problem = str(err).partition(": ")
        raise Invalid(key, problem) from None


def _read_run(raw: Any, default_name: str | None) -> RunSection:
    run = _read_section(raw, "run", SECTIONS["run"])
    if run["name"] is None:
        if default_name is None:
            raise Invalid("run.name", f"needs a value ({LEAVES['run.name'].text()})")
        run["name"] = default_name
    if not run["name"].strip():
        raise Invalid("run.name", "must not be empty")
    control = control_character(run["name"])
    if control is not None:  # it would act on the terminal of whoever lists the run
        raise Invalid("run.name", f"has a control character ({control})")
    for i, tag in enumerate(run["tags"]):
        problem = tag_problem(tag)
        if problem is not None:
            raise Invalid(f"run.tags[{i}]", problem)
    if run["stage"] not in RUN_STAGES:
        raise Invalid("run.stage", f"{run['stage']!r} is not one of {', '.join(RUN_STAGES)}")
    _built(Runtime, {f.name: run[f.name] for f in dataclasses.fields(Runtime)})
    if run["executor"] not in EXECUTORS:
        raise Invalid("run.executor", f"{run['executor']!r} is not one of {', '.join(EXECUTORS)}")
    run["stages"] = rules.stage_chain(run, explicit=isinstance(raw, Mapping) and "stages" in raw)
    rules.check_start(run)
    _check_sinks(run["sinks"])
    return _built(RunSection, run)


def _check_sinks(names: Sequence[str]) -> None:
    """`run.sinks` names installed tracking sinks, each once (by name: no plugin is imported)."""
    known = plugins.known_names(plugins.TRACKING_SINKS_GROUP)
    for i, name in enumerate(names):
        if name not in known:
            installed = f"installed: {', '.join(known)}" if known else "none is installed; see docs/plugins.md"
            raise Invalid(f"run.sinks[{i}]", f"{name!r} is not a tracking sink ({installed})")
        if name in names[:i]:
            raise Invalid(f"run.sinks[{i}]", f"{name!r} repeats")


def _read_data(raw: Any) -> DataSection:
    known = known_datasets()
    tables = (*DATA_TABLES, *(name for name in known if is_plugin_dataset(name)))
    data = _read_section(raw, "data", SECTIONS["data"], tables=tables)
    dataset = data["dataset"]
    if dataset not in known:
        raise Invalid("data.dataset", f"{dataset!r} is not one of {', '.join(known)}")
    if dataset == "synthetic" and data["path"] is not None:
        raise Invalid("data.path", "the synthetic dataset is generated; it reads no file")
    if dataset in ("mmimdb", "features") and data["path"] is None:
        raise Invalid("data.path", f"the {dataset} dataset needs a file path")
    if not 0.0 < data["label_ratio"] <= 1.0:
        raise Invalid("data.label_ratio", f"{data['label_ratio']} is out of range (0, 1]")
    if data["batch_size"] < 1:
        raise Invalid("data.batch_size", f"{data['batch_size']} is out of range (>= 1)")
    raw = raw or {}
    for table in tables:  # a table is named after the dataset that reads it
        if table in raw and dataset != table:
            raise Invalid(f"data.{table}", f"options of the {table} dataset, but data.dataset is {dataset!r}")
    if dataset in DATA_TABLES:
        data[dataset] = _read_section(raw.get(dataset), f"data.{dataset}", SUBTABLES[f"data.{dataset}"])
        _built(DATA_TABLES[dataset], data[dataset])
    elif is_plugin_dataset(dataset):
        data["plugin_options"] = _plugin_table(raw.get(dataset), f"data.{dataset}")
    return DataSection(**data)


def _plugin_table(raw: Any, key: str) -> dict[str, Any]:
    """A plugin dataset's options table, for the plugin to check: here only that it holds what the registry
    can store (strings, numbers, booleans, lists and tables; a TOML date cannot)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise Invalid(key, f"expected a table ([{key}]) of the dataset's options, got {show(raw)}")
    for name, value in raw.items():
        _check_storable(value, f"{key}.{name}")
    return copy.deepcopy(dict(raw))


def _check_storable(value: Any, key: str) -> None:
    if isinstance(value, Mapping):
        for name, inner in value.items():
            _check_storable(inner, f"{key}.{name}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            _check_storable(inner, f"{key}[{i}]")
    elif not isinstance(value, (str, int, float, bool)):
        raise Invalid(key, f"{show(value)} is not a string, number, boolean, list or table")


def _read_sweep(raw: Any) -> dict[str, list]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise Invalid("sweep", f"expected a table ([sweep]) of lists, got {show(raw)}")
    sweep = {}
    for key, values in raw.items():
        where = f"sweep.{key}"
        if key not in LEAVES:
            raise Invalid(where, unknown(where, key, [*SWEEP_ALIASES, *LEAVES], "key"))
        if key in UNSWEPT:
            raise Invalid(where, "cannot be swept (the runs of one sweep share it)")
        if not isinstance(values, (list, tuple)):
            raise Invalid(where, f"expected a list of values, got {show(values)}")
        if not values:
            raise Invalid(where, "needs at least one value (an empty list makes no runs)")
        checked_values = [coerce(LEAVES[key], v, f"{where}[{i}]") for i, v in enumerate(values)]
        seen = set()
        for value in checked_values:
            if json.dumps(value) in seen:
                raise Invalid(where, f"{show(value)} repeats")
            seen.add(json.dumps(value))
        sweep[key] = checked_values
    return sweep


def _read_arms(raw: Any, sweep: Mapping[str, list]) -> dict[str, dict[str, Any]]:
    """Each arm's overrides, type-checked like --set values (whole recipes are checked per run later)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise Invalid("arms", f"expected tables ([arms.NAME]) of dotted keys, got {show(raw)}")
    arms = {}
    for name, overrides in raw.items():
        where = f"arms.{name}"
        if not ARM_NAME.fullmatch(name):
            raise Invalid(where, f"{name!r} is not an arm name (letters, digits, _, + and -: it goes into run "
                                 "names and the tag arm:NAME)")
        if not isinstance(overrides, Mapping):
            raise Invalid(where, f"expected a table ([arms.{name}]) of dotted keys, got {show(overrides)}")
        checked_values = {}
        for key, value in overrides.items():
            at = f"{where}.{key}"
            if key not in LEAVES:
                raise Invalid(at, unknown(key, key, list(LEAVES), "key"))
            if key in UNARMED:
                raise Invalid(at, "an arm cannot rename its runs (they are named after the recipe and the arm)")
            if key == "run.executor":
                raise Invalid(at, "an arm cannot change the executor (the runs of one recipe start together)")
            if key in sweep:
                raise Invalid(at, f"also swept (sweep.{key}): the sweep would override the arm")
            checked_values[key] = coerce(LEAVES[key], value, at)
        arms[name] = checked_values
    return arms


def _check_runs(recipe: Recipe, check_files: bool) -> None:
    """Every run of the recipe is itself a valid recipe (ranges and cross-key rules included): the recipe at
    every sweep point, every arm, and every arm at every point. An error names the sweep's key or the arm's,
    else the point or the arm that breaks another key."""
    if recipe.sweep:
        _check_points(run_points(dataclasses.replace(recipe, arms={})), recipe, check_files)
    for arm, armed in armed_dicts(recipe) if recipe.arms else ():
        assert arm is not None  # a recipe with arms yields only its arms
        try:
            _build(armed, recipe.path, None, check_files)
        except Invalid as err:
            if err.key in recipe.arms[arm]:
                raise Invalid(f"arms.{arm}.{err.key}", err.problem) from None
            raise Invalid(f"arms.{arm}", f"{err.key}: {err.problem}") from None
    if recipe.sweep and recipe.arms:
        _check_points(run_points(recipe), recipe, check_files)


def _check_points(runs: Iterable[RunPoint], recipe: Recipe, check_files: bool) -> None:
    for d, arm, point in runs:
        try:
            _build(d, recipe.path, None, check_files)
        except Invalid as err:
            if arm is not None:
                raise Invalid(f"arms.{arm}", f"at sweep point [{point_label(point)}]: {err.key}: {err.problem}") \
                    from None
            if err.key in point:
                raise Invalid(f"sweep.{err.key}", err.problem) from None
            raise Invalid(f"sweep point [{point_label(point)}]", f"{err.key}: {err.problem}") from None


def _check_tune(recipe: Recipe, check_files: bool) -> None:
    """Each tuned key as a `--set` of each of its bounds and choices would be checked (alone: what two tuned
    keys break together ends that trial, failed), untouched by the sweep and the arms, and the objective logged
    by the last stage of every chain."""
    assert recipe.tune is not None
    for key, space in recipe.tune.space.items():
        where = f"tune.space.{key}"
        if key in recipe.sweep:
            raise Invalid(where, f"also swept (sweep.{key}): a trial takes one value of it")
        for name, overrides in recipe.arms.items():
            if key in overrides:
                raise Invalid(where, f"also set by arms.{name}: the arm would override the trial's value")
        for label, value in space.values():
            try:
                _build(with_values(recipe.to_dict(), {key: value}), recipe.path, None, check_files)
            except Invalid as err:
                broken = err.problem if err.key == key else f"{show(value)}: {err.key}: {err.problem}"
                raise Invalid(where, f"{label}: {broken}") from None
    for arm, armed in armed_dicts(recipe):
        chain = _build(armed, recipe.path, None, False).run.stages
        unscored = objective_problem(recipe.tune, chain[-1])
        if unscored is not None:
            raise Invalid("tune.objective", unscored if arm is None else f"arms.{arm}: {unscored}")
