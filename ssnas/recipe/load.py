"""Reading a recipe: the `extends` chain of TOML files merged, relative paths resolved against the file
that wrote them, `--set` overrides applied, and for every key the file (or override) that set it, so
that validation can name it."""

from __future__ import annotations

import copy
import difflib
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ssnas.errors import RecipeError
from ssnas.nesting import MAX_DEPTH, too_deep
from ssnas.recipe.expand import run_points
from ssnas.recipe.kinds import Kind, resolve
from ssnas.recipe.messages import display, show
from ssnas.recipe.model import Recipe
from ssnas.recipe.schema import LEAVES, SWEEP_ALIASES
from ssnas.recipe.validate import checked

MAX_EXTENDS = 64  # recipes in one `extends` chain: far beyond what people write, well within Python's stack


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read, merge, override and check the recipe at `path`; overrides are "KEY=VALUE" (VALUE in TOML)."""
    shown = str(path)
    origins: dict[str, str] = {}
    tree = _load_chain(shown, origins, stack=())
    for text in overrides:
        apply_override(tree, origins, text)
    return checked(tree, origins, shown, default_name=Path(shown).stem, check_files=True)


def recipe_from_dict(d: Mapping[str, Any], path: str = "<registry>") -> Recipe:
    """A recipe rebuilt from `Recipe.to_dict`'s form (what the registry stores), checked like a file (files on
    disk are not re-checked)."""
    if not isinstance(d, Mapping):
        raise RecipeError(f"{path}: expected a table of sections, got {show(d)}")
    tree = _upgraded(dict(d))
    if "sweep" in tree:
        tree["sweep"] = _normalize_sweep(tree["sweep"], path)
    if "arms" in tree:
        tree["arms"] = _normalize_arms(tree["arms"], path)
    return checked(tree, {}, path, default_name=None, check_files=False)


def expand_sweep(recipe: Recipe) -> list[Recipe]:
    """One recipe per run: per arm (in recipe order), per point of the sweep's cartesian product; arms and
    sweep emptied, the name suffixed (`name[arm=ssl,label_ratio=0.1,seed=0]`), an arm's runs tagged
    `arm:NAME`. [recipe] when there is neither."""
    if not recipe.sweep and not recipe.arms:
        return [recipe]
    return [recipe_from_dict(d, recipe.path) for d, _, _ in run_points(recipe)]


def _upgraded(tree: dict[str, Any]) -> dict[str, Any]:
    """A registry config written before `finetune.freeze_encoder` became `finetune.mode`, read as the
    same run (a frozen encoder was a probe; else the whole network was trained)."""
    finetune = tree.get("finetune")
    if isinstance(finetune, Mapping) and "freeze_encoder" in finetune:
        finetune = dict(finetune)
        finetune["mode"] = "probe" if finetune.pop("freeze_encoder") else "full"
        tree["finetune"] = finetune
    return tree


def _load_chain(shown: str, origins: dict[str, str], stack: tuple[str, ...]) -> dict[str, Any]:
    """The merged tree of `shown` and its parents; `origins` maps each dotted key to the file that set it."""
    raw = _read_toml(shown)
    parent = raw.pop("extends", None)
    tree: dict[str, Any] = {}
    if parent is not None:
        if not isinstance(parent, str):
            raise RecipeError(f"{shown}: extends: expected a string (a recipe path), got {show(parent)}")
        parent_shown = os.path.normpath(os.path.join(os.path.dirname(shown), os.path.expanduser(parent)))
        chain = (*stack, os.path.realpath(shown))
        if len(chain) == MAX_EXTENDS:
            raise RecipeError(f"{shown}: extends: more than {MAX_EXTENDS} recipes in one chain "
                              f"(from {display(chain[0])})")
        if os.path.realpath(parent_shown) in chain:
            names = [*(display(p) for p in chain), parent_shown]
            raise RecipeError(f"{shown}: extends: cycle {' -> '.join(names)}")
        if not os.path.exists(parent_shown):
            raise RecipeError(f"{shown}: extends: {parent_shown}: file not found")
        tree = _load_chain(parent_shown, origins, chain)
    if "sweep" in raw:
        raw["sweep"] = _normalize_sweep(raw["sweep"], shown)
    if "arms" in raw:
        raw["arms"] = _normalize_arms(raw["arms"], shown)
    _resolve_paths(raw, os.path.dirname(shown))
    _merge(tree, raw, origins, shown)
    return tree


def _read_toml(shown: str) -> dict[str, Any]:
    try:
        data = Path(shown).read_bytes()
    except FileNotFoundError:
        raise RecipeError(f"{shown}: file not found") from None
    except OSError as err:
        raise RecipeError(f"{shown}: cannot read ({err.strerror})") from None
    try:
        tree = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise RecipeError(f"{shown}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise RecipeError(f"{shown}: TOML syntax error: {err}") from None
    except RecursionError:  # the parser's own limit, reached before ours
        raise _nested_too_deeply(shown) from None
    if too_deep(tree):
        raise _nested_too_deeply(shown)
    return tree


def _nested_too_deeply(where: str) -> RecipeError:
    """A file or --set value whose tables or lists nest past `MAX_DEPTH`: merging and checking it would
    recurse past Python's limit."""
    return RecipeError(f"{where}: nested too deeply (more than {MAX_DEPTH} levels)")


def _dotted_leaves(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) for every value of nested tables, in order; a key whose value is itself a
    table (LEAVES, e.g. run.genotype_nodes) is one leaf. `a.b = 1` nests in TOML, "a.b" = 1 does not."""
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and dotted not in LEAVES:
            yield from _dotted_leaves(value, f"{dotted}.")
        else:
            yield dotted, value


def _normalize_sweep(raw: Any, where: str) -> Any:
    """Sweep keys flattened and bare aliases made dotted."""
    if not isinstance(raw, Mapping):
        return raw
    flat: dict[str, Any] = {}
    written: dict[str, str] = {}
    for dotted, value in _dotted_leaves(raw):
        target = SWEEP_ALIASES.get(dotted, dotted)
        if target in flat:
            raise RecipeError(f"{where}: sweep.{target}: given twice (as {written[target]} and {dotted})")
        flat[target], written[target] = value, dotted
    return flat


def _normalize_arms(raw: Any, where: str) -> Any:
    """Each arm's keys flattened to dotted keys (`search.objective = ...` nests in TOML, "search.objective" not)."""
    if not isinstance(raw, Mapping):
        return raw
    arms: dict[str, Any] = {}
    for name, table in raw.items():
        arms[name] = _flatten_arm(table, f"{where}: arms.{name}") if isinstance(table, Mapping) else table
    return arms


def _flatten_arm(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One arm's nested tables as dotted keys; `where` names the arm in errors."""
    flat: dict[str, Any] = {}
    for dotted, value in _dotted_leaves(table):
        if dotted in flat:
            raise RecipeError(f"{where}.{dotted}: given twice")
        flat[dotted] = value
    return flat


def _resolve_paths(raw: dict[str, Any], base_dir: str) -> None:
    """Relative paths of one file become absolute, against that file's folder."""
    for key, kind in LEAVES.items():
        *tables, name = key.split(".")
        table: Any = raw
        for part in tables:
            table = table.get(part) if isinstance(table, Mapping) else None
        if isinstance(table, dict) and name in table:
            table[name] = resolve(kind, table[name], base_dir)
    sweep = raw.get("sweep")
    if isinstance(sweep, dict):
        for key, values in sweep.items():
            if key in LEAVES and isinstance(values, list):
                sweep[key] = [resolve(LEAVES[key], v, base_dir) for v in values]
    arms = raw.get("arms")
    for overrides in arms.values() if isinstance(arms, dict) else ():
        if isinstance(overrides, dict):
            for key, value in overrides.items():
                if key in LEAVES:
                    overrides[key] = resolve(LEAVES[key], value, base_dir)


def _merge(tree: dict[str, Any], raw: Mapping[str, Any], origins: dict[str, str], source: str,
           prefix: str = "") -> None:
    """Deep-merge `raw` into `tree`: tables merge, anything else (lists too) replaces."""
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(tree.get(key), dict):
            origins.setdefault(dotted, source)
            _merge(tree[key], value, origins, source, f"{dotted}.")
        else:
            tree[key] = copy.deepcopy(value)
            _mark(origins, dotted, value, source)


def _mark(origins: dict[str, str], dotted: str, value: Any, source: str) -> None:
    origins[dotted] = source
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _mark(origins, f"{dotted}.{key}", inner, source)


def apply_override(tree: dict[str, Any], origins: dict[str, str], text: str) -> None:
    """Apply one `--set KEY=VALUE` to a recipe tree, recording in `origins` that the override set the key."""
    shown = text if len(text) <= 100 else f"{text[:97]}..."  # a value of thousands of characters is not news
    origin = "--set " + shown.replace("\n", "\\n")  # one line, even when the shell passed a newline
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise RecipeError(f"{origin}: expected KEY=VALUE (e.g. search.epochs=5)")
    if key.startswith("sweep.") and len(key) > len("sweep."):
        target = key.removeprefix("sweep.")
        target = SWEEP_ALIASES.get(target, target)
        value = _parse_value(raw, None, origin)
        if target in LEAVES and isinstance(value, list):
            value = [resolve(LEAVES[target], v, ".") for v in value]
        tree.setdefault("sweep", {})
        if not isinstance(tree["sweep"], dict):
            tree["sweep"] = {}
        tree["sweep"][target] = value
        origins[f"sweep.{target}"] = origin
        return
    if key.startswith("arms."):
        _apply_arm_override(tree, origins, origin, key.removeprefix("arms."), raw)
        return
    if key not in LEAVES:
        close = difflib.get_close_matches(key, list(LEAVES), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise RecipeError(f"{origin}: unknown key {key}{hint}")
    *tables, name = key.split(".")
    table = tree
    for part in tables:
        if not isinstance(table.get(part), dict):
            table[part] = {}
        table = table[part]
    table[name] = resolve(LEAVES[key], _parse_value(raw, LEAVES[key], origin), ".")
    origins[key] = origin


def _apply_arm_override(tree: dict[str, Any], origins: dict[str, str], origin: str, key: str, raw: str) -> None:
    """`--set arms.NAME.KEY=VALUE`: add or replace one key of an arm (an arm that is not there is made)."""
    name, _, target = key.partition(".")
    if not name or not target:
        raise RecipeError(f"{origin}: expected arms.NAME.KEY=VALUE (e.g. arms.ssl.search.epochs=5)")
    kind = LEAVES.get(target)
    value = _parse_value(raw, kind, origin)
    if kind is not None:
        value = resolve(kind, value, ".")
    if not isinstance(tree.get("arms"), dict):
        tree["arms"] = {}
    if not isinstance(tree["arms"].get(name), dict):
        tree["arms"][name] = {}
        origins.setdefault(f"arms.{name}", origin)
    tree["arms"][name][target] = value
    origins[f"arms.{name}.{target}"] = origin


def _parse_value(raw: str, kind: Kind | None, origin: str) -> Any:
    """A TOML value; a string-valued key also takes bare text (`run.device=cpu`); bad text stays text,
    so that the type check names what was expected. One nested too deeply is refused, naming `origin`."""
    try:
        parsed = tomllib.loads(f"value = {raw}")
        ok = list(parsed) == ["value"]
    except tomllib.TOMLDecodeError:
        ok = False
    except RecursionError:
        raise _nested_too_deeply(origin) from None
    if ok and too_deep(parsed["value"]):
        raise _nested_too_deeply(origin)
    if kind is not None and kind.is_text:
        return parsed["value"] if ok and isinstance(parsed["value"], str) else raw
    return parsed["value"] if ok else raw
