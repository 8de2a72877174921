"""Reading a recipe's `[tune]` table: its structure and each value's type. `validate.py` then checks every
bound and choice against the recipe itself, as a `--set` of that value would be checked."""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from ssnas.recipe.kinds import Kind, coerce, names_a_file
from ssnas.recipe.messages import Invalid, show
from ssnas.recipe.schema import LEAVES, UNSWEPT, unknown
from ssnas.recipe.tuning import DEV_METRICS, DIRECTIONS, PRUNERS, SAMPLERS, Space, TuneSection

UNTUNED = (*UNSWEPT, "run.tags")  # what names or starts the runs; the tuner sets the tags itself
TABLE_KEYS = ("trials", "parallel", "objective", "direction", "sampler", "pruner", "space")
SPACE_KEYS = ("low", "high", "log", "step", "choices")


def read_tune(raw: Any) -> TuneSection:
    """The `[tune]` table, its structure and each key's type checked (not yet against the recipe)."""
    if not isinstance(raw, Mapping):
        raise Invalid("tune", f"expected a table ([tune]), got {show(raw)}")
    for name in raw:
        if name not in TABLE_KEYS:
            raise Invalid(f"tune.{name}", unknown(f"tune.{name}", name, TABLE_KEYS, "key"))
    values: dict[str, Any] = {}
    for name in ("trials", "parallel"):
        if name in raw:
            values[name] = coerce(Kind(int), raw[name], f"tune.{name}")
            if values[name] < 1:
                raise Invalid(f"tune.{name}", f"{values[name]} is out of range (>= 1)")
    for name, allowed in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("direction", DIRECTIONS)):
        if name in raw:
            values[name] = coerce(Kind(str), raw[name], f"tune.{name}")
            if values[name] not in allowed:
                raise Invalid(f"tune.{name}", f"{values[name]!r} is not one of {', '.join(allowed)}")
    objective = coerce(Kind(str), raw.get("objective", TuneSection.objective), "tune.objective")
    natural = _natural_direction(objective)
    if values.setdefault("direction", natural) != natural:
        better = "higher" if natural == "maximize" else "lower"
        raise Invalid("tune.direction", f"{values['direction']!r}, but {objective} is better {better} ({natural})")
    if "space" not in raw:
        raise Invalid("tune.space", "needs at least one key to tune ([tune.space])")
    return TuneSection(space=_read_space(raw["space"]), objective=objective, **values)


def _natural_direction(objective: str) -> str:
    """Which way the objective is better; it must be a dev metric that the last stage of a chain logs."""
    split, _, key = objective.removeprefix("metric.").partition(".")
    if not objective.startswith("metric.") or not key:
        raise Invalid("tune.objective", f"{objective!r} is not a metric (metric.dev.KEY, e.g. metric.dev.f1_weighted)")
    if split != "dev":
        raise Invalid("tune.objective", f"{objective!r}: a study chooses on the dev split only (metric.dev.KEY); "
                                        "a test score it chose on would be optimistic")
    for metrics in DEV_METRICS.values():
        if key in metrics:
            return metrics[key]
    known = sorted({k for metrics in DEV_METRICS.values() for k in metrics})
    raise Invalid("tune.objective", f"{key!r} is no dev metric a chain ends with (known: {', '.join(known)})")


def _read_space(raw: Any) -> dict[str, Space]:
    if not isinstance(raw, Mapping):
        raise Invalid("tune.space", f"expected a table ([tune.space]) of dotted keys, got {show(raw)}")
    space = {key: _read_key(key, table) for key, table in _flat_space(raw)}
    if not space:
        raise Invalid("tune.space", "needs at least one key to tune")
    return space


def _flat_space(raw: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, its table): `search.arch_lr = {...}` nests in TOML, `"search.arch_lr" = {...}` does not."""
    for name, value in raw.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, Mapping) and dotted not in LEAVES and not set(value) & set(SPACE_KEYS):
            yield from _flat_space(value, f"{dotted}.")
        else:
            yield dotted, value


def _read_key(key: str, table: Any) -> Space:
    where = f"tune.space.{key}"
    if key not in LEAVES:
        raise Invalid(where, unknown(key, key, list(LEAVES), "key"))
    if key in UNTUNED:
        raise Invalid(where, "cannot be tuned (the tuner names, tags and starts each trial's runs)")
    kind = LEAVES[key]
    if kind.hint not in (int, float, bool, str) and typing.get_origin(kind.hint) is not Literal:
        raise Invalid(where, f"cannot be tuned: it takes {kind.text()} (numbers, strings and booleans are tuned)")
    if not isinstance(table, Mapping):
        raise Invalid(where, f"expected a table, {{low = ..., high = ...}} or {{choices = [...]}}, got {show(table)}")
    for name in table:
        if name not in SPACE_KEYS:
            raise Invalid(f"{where}.{name}", unknown(f"{where}.{name}", name, SPACE_KEYS, "key"))
    if "choices" in table:
        return _read_choices(where, kind, table)
    return _read_range(where, kind, table)


def _read_choices(where: str, kind: Kind, table: Mapping[str, Any]) -> Space:
    extra = [name for name in table if name != "choices"]
    if extra:
        raise Invalid(where, f"choices or a range, not both (drop {extra[0]})")
    raw = table["choices"]
    if not isinstance(raw, list) or not raw:
        raise Invalid(f"{where}.choices", f"expected a non-empty list of values, got {show(raw)}")
    choices = [coerce(kind, value, f"{where}.choices[{i}]") for i, value in enumerate(raw)]
    seen: set[str] = set()
    for i, value in enumerate(choices):
        if names_a_file(kind, value):
            raise Invalid(f"{where}.choices[{i}]", f"{show(value)} is a path: arms take paths, a study does not")
        if json.dumps(value) in seen:
            raise Invalid(f"{where}.choices", f"{show(value)} repeats")
        seen.add(json.dumps(value))
    return Space(choices=tuple(choices))


def _read_range(where: str, kind: Kind, table: Mapping[str, Any]) -> Space:
    if kind.hint not in (int, float):
        raise Invalid(where, f"takes {kind.text()}: give choices = [...], not a range")
    for name in ("low", "high"):
        if name not in table:
            raise Invalid(where, f"needs low and high (or choices = [...]); {name} is missing")
    low, high = (coerce(kind, table[name], f"{where}.{name}") for name in ("low", "high"))
    log = coerce(Kind(bool), table.get("log", False), f"{where}.log")
    step = coerce(kind, table["step"], f"{where}.step") if "step" in table else None
    if not low < high:
        raise Invalid(where, f"low {show(low)} must be below high {show(high)}")
    if log and low <= 0:
        raise Invalid(f"{where}.low", f"{show(low)}: a log scale needs low > 0")
    if step is not None and step <= 0:
        raise Invalid(f"{where}.step", f"{show(step)} is out of range (> 0)")
    if log and step is not None and not (kind.hint is int and step == 1):
        raise Invalid(where, "log or step, not both")
    return Space(low=low, high=high, log=log, step=step)
