"""TOML recipes -> one validated, fully defaulted description of a run (DESIGN.md 5; docs/recipes.md).

A recipe is read in three steps: the `extends` chain of files is merged (child wins, tables merge,
lists replace) with every relative path resolved against the file that wrote it; `--set KEY=VALUE`
overrides are applied; the merged tree is checked key by key and becomes a `Recipe` whose section
dicts hold every value, defaulted, as plain JSON types. That dict form (`Recipe.to_dict`) is what
the registry stores and the worker rebuilds with `Recipe.from_dict`.

A recipe may name `[arms.NAME]` (variants of itself: dotted keys -> values, e.g. a supervised search
beside the self-supervised one) and a `[sweep]` (lists whose product expands into sibling runs);
`expand_sweep` turns it into one plain recipe per arm x sweep point, every one checked at load.

No torch, even indirectly: `ssnas recipe show` and `ssnas run` validate recipes before anything heavy
is imported. The settings of `SpaceConfig` and the three stage configs (torch-free modules) are read
from their dataclasses and checked by building them; `ViewConfig`, `Runtime`, `SyntheticConfig` and
`load_mmimdb` live in modules that import torch, so their fields and checks are mirrored here
(tests/test_recipe.py holds each mirror to the real class). Every error is a `RecipeError` of one
line: `FILE: KEY: PROBLEM`, where FILE is the file (or `--set ...` override) that set the key.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from ssnas.errors import ConfigError, DatasetError, GenotypeError, RecipeError
from ssnas.nas.space import SpaceConfig
from ssnas.stages.config import FinetuneConfig, PretrainConfig, SearchConfig

# A field spec: (name, kind, default). Kinds are the dataclasses' annotations as text, plus `path`
# (a file, relative to the recipe that names it), `genotype` (a path, "baseline:NAME" or "random") and
# `dict[str, str]` (a table of strings).
Field = tuple[str, str, Any]

STAGES: tuple[str, ...] = ("search", "pretrain", "finetune")
RUN_STAGES: tuple[str, ...] = (*STAGES, "pipeline")
EXECUTORS: tuple[str, ...] = ("local", "ray")  # ssnas.launcher.open_executor
DATASET_KINDS: tuple[str, ...] = ("synthetic", "mmimdb", "features")  # mirrors ssnas.data.datasets
VIEW_POLICIES: tuple[str, ...] = ("cross_modal", "instance")  # mirrors ssnas.data.views
MMIMDB_PIXELS: tuple[str, ...] = ("auto", "rgb", "caffe_bgr")  # mirrors ssnas.data.mmimdb.Pixels

# Mirrors of dataclasses in torch-importing modules, in their field order.
RUNTIME_FIELDS: tuple[Field, ...] = (  # ssnas.stages.runtime.Runtime
    ("seed", "int", 0),
    ("device", "str", "auto"),
    ("bf16", "bool", False),
    ("eager", "bool", False),
    ("compile", "bool", False),
)
VIEW_FIELDS: tuple[Field, ...] = (  # ssnas.data.views.ViewConfig
    ("policy", "str", "cross_modal"),
    ("noise", "float", 0.1),
    ("channel_dropout", "float", 0.1),
    ("position_mask", "float", 0.1),
    ("modality_dropout", "float", 0.0),
    ("level_mix", "float", 0.0),
)
SYNTHETIC_FIELDS: tuple[Field, ...] = (  # ssnas.data.synthetic.SyntheticConfig
    ("train", "int", 2048),
    ("dev", "int", 512),
    ("test", "int", 512),
    ("image_levels", "int", 4),
    ("image_channels", "int", 32),
    ("image_side", "int", 4),
    ("text_dims", "tuple[int, ...]", (64, 128)),
    ("shared_dim", "int", 8),
    ("specific_dim", "int", 8),
    ("classes", "int", 8),
    ("planted_image", "int", 2),
    ("planted_text", "int", 0),
    ("noise", "float", 0.5),
    ("cross_noise", "float", 1.5),
    ("leak", "float", 0.3),
    ("seed", "int", 0),
)
MMIMDB_FIELDS: tuple[Field, ...] = (  # keyword options of ssnas.data.mmimdb.load_mmimdb (not path, device, progress)
    ("image_weights", "path | None", None),
    ("text_weights", "path | None", None),
    ("batch_size", "int", 64),
    ("image_size", "tuple[int, int] | None", None),
    ("limit", "int | None", None),
    ("map_side", "int", 4),
    ("pixels", "str", "auto"),
)

# One batch size and one label ratio feed every stage; they live in [data].
SHARED_KEYS = ("batch_size", "label_ratio")


def _fields_of(cls: type, without: Sequence[str] = ()) -> tuple[Field, ...]:
    return tuple((f.name, f.type, f.default) for f in dataclasses.fields(cls) if f.name not in without)


RUN_FIELDS: tuple[Field, ...] = (
    ("name", "str", None),  # default: the recipe file's name without .toml
    ("stage", "str", "pipeline"),
    *RUNTIME_FIELDS,
    ("tags", "tuple[str, ...]", ()),
    ("executor", "str", "local"),
    ("genotype", "genotype | None", None),
    ("genotype_nodes", "dict[str, str] | None", None),
    ("checkpoint", "path | None", None),
    ("stages", "tuple[str, ...]", STAGES),
)
DATA_FIELDS: tuple[Field, ...] = (
    ("dataset", "str", "synthetic"),
    ("path", "path | None", None),
    ("label_ratio", "float", SearchConfig.label_ratio),
    ("batch_size", "int", SearchConfig.batch_size),
    ("standardize", "bool", True),  # centre and scale every input channel on the training rows
)
SECTIONS: dict[str, tuple[Field, ...]] = {
    "run": RUN_FIELDS,
    "data": DATA_FIELDS,
    "space": _fields_of(SpaceConfig),
    "search": _fields_of(SearchConfig, without=SHARED_KEYS),
    "views": VIEW_FIELDS,
    "pretrain": _fields_of(PretrainConfig, without=SHARED_KEYS),
    "finetune": _fields_of(FinetuneConfig, without=SHARED_KEYS),
}
SUBTABLES: dict[str, tuple[Field, ...]] = {"data.synthetic": SYNTHETIC_FIELDS, "data.mmimdb": MMIMDB_FIELDS}
TOP_LEVEL: tuple[str, ...] = (*SECTIONS, "sweep", "arms")

# Every settable key, dotted, with its kind: what --set and [sweep] may name.
LEAVES: dict[str, str] = {
    f"{table}.{name}": kind
    for table, fields in (*SECTIONS.items(), *SUBTABLES.items())
    for name, kind, _ in fields
}
SWEEP_ALIASES: dict[str, str] = {"label_ratio": "data.label_ratio", "seed": "run.seed"}
UNSWEPT: tuple[str, ...] = ("run.name", "run.stage", "run.stages", "run.executor")
UNARMED: tuple[str, ...] = ("run.name",)  # an arm's runs are named after the recipe and the arm
ARM_NAME = re.compile(r"[A-Za-z0-9_+-]+")  # goes into run names and the tag arm:NAME
ARM_TAG = "arm:"

_KIND_TEXT = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "path": "a string (a file path)",
    "genotype": "a string (a genotype JSON path, 'baseline:NAME' or 'random')",
    "dict[str, str]": 'a table of node names (genotype node = dataset node, e.g. {"image[2]" = "pix[0]"})',
    "tuple[str, ...]": "a list of strings",
    "tuple[int, ...]": "a list of integers",
    "tuple[int, int]": "a list of two integers",
}

# Problems that deserve more than "unknown key".
_HINTS = {
    **{f"{s}.{k}": f"set data.{k} instead (one value feeds every stage)"
       for s in ("search", "pretrain", "finetune") for k in SHARED_KEYS},
    "space.C": "unknown key (did you mean channels?)",
    "space.L": "unknown key (did you mean positions?)",
    "data.features": "a features file takes no options",
    "finetune.freeze_encoder": "unknown key (replaced by finetune.mode = \"probe\", \"full\" or \"auto\")",
}


# --------------------------------------------------------------------------------------------
# The resolved recipe.


@dataclass(frozen=True)
class RunSection:
    name: str
    stage: str = "pipeline"  # "search", "pretrain", "finetune" or "pipeline"
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda" or "cuda:N"
    bf16: bool = False
    eager: bool = False  # the plain compute path (no view batching, nothing compiled)
    compile: bool = False  # torch.compile the stages' losses (for CUDA)
    tags: tuple[str, ...] = ()
    executor: str = "local"
    genotype: str | None = None  # absolute path, "baseline:NAME" or "random"; runs that start without search
    genotype_nodes: dict[str, str] | None = None  # genotype input node -> dataset input node, where names differ
    checkpoint: str | None = None  # absolute path of a pretrained network; a finetune run alone
    stages: tuple[str, ...] = STAGES  # the chain this run executes ([stage] unless a pipeline)

    @property
    def runtime(self) -> dict[str, Any]:
        """Keyword arguments of `Runtime`."""
        return {name: getattr(self, name) for name, _, _ in RUNTIME_FIELDS}


@dataclass(frozen=True)
class DataSection:
    dataset: str = "synthetic"
    path: str | None = None  # absolute; mmimdb and features only
    label_ratio: float = 1.0
    batch_size: int = 96
    standardize: bool = True  # inputs centred and scaled on the training rows (data.standardize)
    synthetic: dict[str, Any] | None = None  # SyntheticConfig fields, when the dataset is synthetic
    mmimdb: dict[str, Any] | None = None  # load_mmimdb's options, when the dataset is mmimdb

    @property
    def options(self) -> dict[str, Any]:
        """The `options` of `load_dataset(dataset, path, options)`."""
        return copy.deepcopy(self.synthetic or self.mmimdb or {})


@dataclass(frozen=True)
class Recipe:
    path: str  # the file it came from (messages); relative paths inside are already resolved
    run: RunSection
    data: DataSection
    space: dict[str, Any]
    search: dict[str, Any]
    views: dict[str, Any]
    pretrain: dict[str, Any]
    finetune: dict[str, Any]
    sweep: dict[str, list]  # dotted keys -> values; empty after expand_sweep
    arms: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # name -> dotted key -> value; ditto

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain JSON-able data: every default filled in, paths absolute."""
        data = {name: getattr(self.data, name) for name, _, _ in DATA_FIELDS}
        for kind in ("synthetic", "mmimdb"):
            if getattr(self.data, kind) is not None:
                data[kind] = getattr(self.data, kind)
        return copy.deepcopy({
            "run": {name: _plain(getattr(self.run, name)) for name, _, _ in RUN_FIELDS},
            "data": data,
            "space": self.space,
            "search": self.search,
            "views": self.views,
            "pretrain": self.pretrain,
            "finetune": self.finetune,
            "sweep": self.sweep,
            "arms": self.arms,
        })

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str = "<registry>") -> Recipe:
        """Rebuild a recipe from `to_dict`'s form, checked like a file (files on disk are not re-checked)."""
        if not isinstance(d, Mapping):
            raise RecipeError(f"{path}: expected a table of sections, got {_show(d)}")
        tree = _upgraded(dict(d))
        if "sweep" in tree:
            tree["sweep"] = _normalize_sweep(tree["sweep"], path)
        if "arms" in tree:
            tree["arms"] = _normalize_arms(tree["arms"], path)
        return _checked(tree, {}, path, default_name=None, check_files=False)

    # Torch-free configs, built here; ViewConfig, Runtime and SyntheticConfig are built by the worker.
    def space_config(self) -> SpaceConfig:
        return SpaceConfig(**self.space)

    def search_config(self) -> SearchConfig:
        return SearchConfig(**self.search, batch_size=self.data.batch_size, label_ratio=self.data.label_ratio)

    def pretrain_config(self) -> PretrainConfig:
        return PretrainConfig(**self.pretrain, batch_size=self.data.batch_size)

    def finetune_config(self) -> FinetuneConfig:
        return FinetuneConfig(**self.finetune, batch_size=self.data.batch_size, label_ratio=self.data.label_ratio)


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read, merge, override and check the recipe at `path`; overrides are "KEY=VALUE" (VALUE in TOML)."""
    shown = str(path)
    origins: dict[str, str] = {}
    tree = _load_chain(shown, origins, stack=())
    for text in overrides:
        _apply_override(tree, origins, text)
    return _checked(tree, origins, shown, default_name=Path(shown).stem, check_files=True)


def expand_sweep(recipe: Recipe) -> list[Recipe]:
    """One recipe per run: per arm (in recipe order), per point of the sweep's cartesian product; arms and
    sweep emptied, the name suffixed (`name[arm=ssl,label_ratio=0.1,seed=0]`), an arm's runs tagged
    `arm:NAME`. [recipe] when there is neither."""
    if not recipe.sweep and not recipe.arms:
        return [recipe]
    return [Recipe.from_dict(d, recipe.path) for d, _, _ in _run_points(recipe)]


def arm_of(tags: Sequence[str]) -> str | None:
    """The arm a run was expanded from, by its `arm:NAME` tag."""
    return next((t.removeprefix(ARM_TAG) for t in tags if t.startswith(ARM_TAG)), None)


def pipeline_stages(recipe: Recipe) -> list[str]:
    """The stages a run executes, in order: [stage] for one stage, the chain for a pipeline."""
    return list(recipe.run.stages)


def format_recipe(recipe: Recipe) -> str:
    """The resolved recipe as TOML (unset optional keys as comments), for `ssnas recipe show`."""
    d = recipe.to_dict()
    tables: list[tuple[str, dict[str, Any]]] = [("run", d["run"])]
    data = d["data"]
    tables.append(("data", {k: v for k, v in data.items() if not isinstance(v, dict)}))
    tables += [(f"data.{k}", v) for k, v in data.items() if isinstance(v, dict)]
    tables += [(name, d[name]) for name in ("space", "search", "views", "pretrain", "finetune")]
    if d["sweep"]:
        tables.append(("sweep", d["sweep"]))
    tables += [(f"arms.{_toml_key(name)}", overrides) for name, overrides in d["arms"].items()]
    lines = [f"# {recipe.path}, resolved: every default filled in, paths absolute"]
    for name, values in tables:
        lines += ["", f"[{name}]"]
        for key, value in values.items():
            if value is None:
                lines.append(f"# {_toml_key(key)} is not set")
            else:
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Reading files: extends chains, path resolution, overrides.


class _Invalid(Exception):
    """A problem with one key; turned into a RecipeError naming the file that set the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def _checked(tree: dict[str, Any], origins: dict[str, str], where: str, default_name: str | None,
             check_files: bool) -> Recipe:
    try:
        recipe = _build(tree, where, default_name, check_files)
        _check_runs(recipe, check_files)
        return recipe
    except _Invalid as err:
        source = origins.get(re.sub(r"\[\d+\]$", "", err.key), where)
        if source.startswith("--set "):
            raise RecipeError(f"{source}: {err.problem}") from None
        raise RecipeError(f"{source}: {err.key}: {err.problem}") from None


def _load_chain(shown: str, origins: dict[str, str], stack: tuple[str, ...]) -> dict[str, Any]:
    """The merged tree of `shown` and its parents; `origins` maps each dotted key to the file that set it."""
    raw = _read_toml(shown)
    parent = raw.pop("extends", None)
    tree: dict[str, Any] = {}
    if parent is not None:
        if not isinstance(parent, str):
            raise RecipeError(f"{shown}: extends: expected a string (a recipe path), got {_show(parent)}")
        parent_shown = os.path.normpath(os.path.join(os.path.dirname(shown), os.path.expanduser(parent)))
        chain = (*stack, os.path.realpath(shown))
        if os.path.realpath(parent_shown) in chain:
            names = [*(_display(p) for p in chain), parent_shown]
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
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise RecipeError(f"{shown}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise RecipeError(f"{shown}: TOML syntax error: {err}") from None


def _normalize_sweep(raw: Any, where: str) -> Any:
    """Sweep keys flattened (`a.b = [...]` nests in TOML) and bare aliases made dotted."""
    if not isinstance(raw, Mapping):
        return raw
    flat: dict[str, Any] = {}
    written: dict[str, str] = {}

    def walk(table: Mapping[str, Any], prefix: str) -> None:
        for key, value in table.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, Mapping) and dotted not in LEAVES:
                walk(value, f"{dotted}.")
                continue
            target = SWEEP_ALIASES.get(dotted, dotted)
            if target in flat:
                raise RecipeError(f"{where}: sweep.{target}: given twice (as {written[target]} and {dotted})")
            flat[target], written[target] = value, dotted

    walk(raw, "")
    return flat


def _normalize_arms(raw: Any, where: str) -> Any:
    """Each arm's keys flattened to dotted keys (`search.objective = ...` nests in TOML, "search.objective" not)."""
    if not isinstance(raw, Mapping):
        return raw
    arms: dict[str, Any] = {}
    for name, table in raw.items():
        if not isinstance(table, Mapping):
            arms[name] = table
            continue
        flat: dict[str, Any] = {}

        def walk(inner: Mapping[str, Any], prefix: str) -> None:
            for key, value in inner.items():
                dotted = f"{prefix}{key}"
                if isinstance(value, Mapping) and dotted not in LEAVES:
                    walk(value, f"{dotted}.")
                elif dotted in flat:
                    raise RecipeError(f"{where}: arms.{name}.{dotted}: given twice")
                else:
                    flat[dotted] = value

        walk(table, "")
        arms[name] = flat
    return arms


def _is_path(kind: str, value: Any) -> bool:
    base = kind.removesuffix(" | None")
    if not isinstance(value, str) or base not in ("path", "genotype"):
        return False
    return not (base == "genotype" and (value == "random" or value.startswith("baseline:")))


def _resolve(kind: str, value: Any, base_dir: str) -> Any:
    if _is_path(kind, value):
        return os.path.abspath(os.path.join(base_dir, os.path.expanduser(value)))
    return value


def _resolve_paths(raw: dict[str, Any], base_dir: str) -> None:
    """Relative paths of one file become absolute, against that file's folder."""
    for key, kind in LEAVES.items():
        *tables, name = key.split(".")
        table: Any = raw
        for part in tables:
            table = table.get(part) if isinstance(table, Mapping) else None
        if isinstance(table, dict) and name in table:
            table[name] = _resolve(kind, table[name], base_dir)
    sweep = raw.get("sweep")
    if isinstance(sweep, dict):
        for key, values in sweep.items():
            if key in LEAVES and isinstance(values, list):
                sweep[key] = [_resolve(LEAVES[key], v, base_dir) for v in values]
    arms = raw.get("arms")
    for overrides in arms.values() if isinstance(arms, dict) else ():
        if isinstance(overrides, dict):
            for key, value in overrides.items():
                if key in LEAVES:
                    overrides[key] = _resolve(LEAVES[key], value, base_dir)


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


def _apply_override(tree: dict[str, Any], origins: dict[str, str], text: str) -> None:
    origin = "--set " + text.replace("\n", "\\n")  # one line, even when the shell passed a newline
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise RecipeError(f"{origin}: expected KEY=VALUE (e.g. search.epochs=5)")
    if key.startswith("sweep.") and len(key) > len("sweep."):
        target = key.removeprefix("sweep.")
        target = SWEEP_ALIASES.get(target, target)
        value = _parse_value(raw, None)
        if target in LEAVES and isinstance(value, list):
            value = [_resolve(LEAVES[target], v, ".") for v in value]
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
    table[name] = _resolve(LEAVES[key], _parse_value(raw, LEAVES[key]), ".")
    origins[key] = origin


def _apply_arm_override(tree: dict[str, Any], origins: dict[str, str], origin: str, key: str, raw: str) -> None:
    """`--set arms.NAME.KEY=VALUE`: add or replace one key of an arm (an arm that is not there is made)."""
    name, _, target = key.partition(".")
    if not name or not target:
        raise RecipeError(f"{origin}: expected arms.NAME.KEY=VALUE (e.g. arms.ssl.search.epochs=5)")
    kind = LEAVES.get(target)
    value = _parse_value(raw, kind)
    if kind is not None:
        value = _resolve(kind, value, ".")
    if not isinstance(tree.get("arms"), dict):
        tree["arms"] = {}
    if not isinstance(tree["arms"].get(name), dict):
        tree["arms"][name] = {}
        origins.setdefault(f"arms.{name}", origin)
    tree["arms"][name][target] = value
    origins[f"arms.{name}.{target}"] = origin


def _parse_value(raw: str, kind: str | None) -> Any:
    """A TOML value; a string-valued key also takes bare text (`run.device=cpu`); bad text stays text,
    so that the type check names what was expected."""
    try:
        parsed = tomllib.loads(f"value = {raw}")
        ok = list(parsed) == ["value"]
    except tomllib.TOMLDecodeError:
        ok = False
    if kind is not None and kind.removesuffix(" | None") in ("str", "path", "genotype"):
        return parsed["value"] if ok and isinstance(parsed["value"], str) else raw
    return parsed["value"] if ok else raw


# --------------------------------------------------------------------------------------------
# Checking the merged tree.


def _build(tree: Mapping[str, Any], where: str, default_name: str | None, check_files: bool) -> Recipe:
    for name in tree:
        if name not in TOP_LEVEL:
            raise _Invalid(name, _unknown(name, name, TOP_LEVEL, "section"))
    run = _read_run(tree.get("run"), default_name)
    data = _read_data(tree.get("data"))
    space = _read_section(tree.get("space"), "space", SECTIONS["space"])
    _via_config(SpaceConfig, space)
    search = _read_section(tree.get("search"), "search", SECTIONS["search"])
    _via_config(SearchConfig, {**search, "batch_size": data.batch_size, "label_ratio": data.label_ratio})
    views = _read_section(tree.get("views"), "views", VIEW_FIELDS)
    _check_views(views)
    pretrain = _read_section(tree.get("pretrain"), "pretrain", SECTIONS["pretrain"])
    _via_config(PretrainConfig, {**pretrain, "batch_size": data.batch_size})
    finetune = _read_section(tree.get("finetune"), "finetune", SECTIONS["finetune"])
    _via_config(FinetuneConfig, {**finetune, "batch_size": data.batch_size, "label_ratio": data.label_ratio})
    _check_model(run, finetune)
    sweep = _read_sweep(tree.get("sweep"))
    arms = _read_arms(tree.get("arms"), sweep)
    if check_files:
        _check_files(run, data)
        _check_binding(run, data)
    return Recipe(where, run, data, space, search, views, pretrain, finetune, sweep, arms)


def _read_section(raw: Any, key: str, fields: Sequence[Field], tables: Sequence[str] = ()) -> dict[str, Any]:
    """The section's values, type-checked, every absent key at its default."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise _Invalid(key, f"expected a table ([{key}]), got {_show(raw)}")
    names = [name for name, _, _ in fields]
    for name in raw:
        if name not in names and name not in tables:
            raise _Invalid(f"{key}.{name}", _unknown(f"{key}.{name}", name, names, "key"))
    return {name: _coerce(kind, raw[name], f"{key}.{name}") if name in raw else _plain(default)
            for name, kind, default in fields}


def _unknown(dotted: str, name: str, known: Sequence[str], what: str) -> str:
    if dotted in _HINTS:
        return _HINTS[dotted]
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"unknown {what} (did you mean {close[0]}?)" if close else f"unknown {what} (known: {', '.join(known)})"


def _coerce(kind: str, value: Any, key: str) -> Any:
    """`value` checked against `kind`: ints pass as floats, bools never pass as numbers; lists stay lists."""
    base = kind.removesuffix(" | None")
    if value is None:
        if base != kind:
            return None
        raise _Invalid(key, f"needs a value ({_KIND_TEXT[base]})")
    if base == "float" and _is_int(value):
        value = float(value)
    if base == "float" and isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(key, f"{_show(value)} is not a finite number")
    if isinstance(value, tuple):
        value = list(value)
    if not _has_kind(base, value):
        raise _Invalid(key, f"expected {_KIND_TEXT[base]}, got {_show(value)}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _has_kind(base: str, value: Any) -> bool:
    if base == "int":
        return _is_int(value)
    if base == "float":
        return isinstance(value, float)
    if base == "bool":
        return isinstance(value, bool)
    if base in ("str", "path", "genotype"):
        return isinstance(value, str)
    if base == "dict[str, str]":
        return isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if not isinstance(value, list):
        return False
    if base == "tuple[str, ...]":
        return all(isinstance(v, str) for v in value)
    if base == "tuple[int, ...]":
        return all(_is_int(v) for v in value)
    return base == "tuple[int, int]" and len(value) == 2 and all(_is_int(v) for v in value)


def _via_config(cls: type, values: dict[str, Any]) -> None:
    """Range checks of a torch-free config dataclass, whose messages already read `section.key: problem`."""
    try:
        cls(**values)
    except ConfigError as err:
        key, _, problem = str(err).partition(": ")
        raise _Invalid(key, problem) from None


def _read_run(raw: Any, default_name: str | None) -> RunSection:
    run = _read_section(raw, "run", RUN_FIELDS)
    if run["name"] is None:
        if default_name is None:
            raise _Invalid("run.name", f"needs a value ({_KIND_TEXT['str']})")
        run["name"] = default_name
    if not run["name"].strip():
        raise _Invalid("run.name", "must not be empty")
    if run["stage"] not in RUN_STAGES:
        raise _Invalid("run.stage", f"{run['stage']!r} is not one of {', '.join(RUN_STAGES)}")
    if run["seed"] < 0:
        raise _Invalid("run.seed", f"{run['seed']} is out of range (>= 0)")
    device = run["device"]
    if not (device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", device)):
        raise _Invalid("run.device", f"{device!r} is not auto, cpu, cuda or cuda:N")
    if run["executor"] not in EXECUTORS:
        raise _Invalid("run.executor", f"{run['executor']!r} is not one of {', '.join(EXECUTORS)}")
    run["stages"] = _chain(run, explicit=isinstance(raw, Mapping) and "stages" in raw)
    _check_start(run)
    return RunSection(**{k: tuple(v) if isinstance(v, list) else v for k, v in run.items()})


def _chain(run: dict[str, Any], explicit: bool) -> list[str]:
    stage, stages = run["stage"], run["stages"]
    if stage != "pipeline":
        if explicit and stages != [stage]:
            raise _Invalid("run.stages", f"only a pipeline run lists stages (stage is {stage!r})")
        return [stage]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise _Invalid("run.stages", f"{unknown[0]!r} is not one of {', '.join(STAGES)}")
    if not stages or [s for s in STAGES if s in stages] != stages:
        raise _Invalid("run.stages", f"{_show(stages)} is not a chain of search, pretrain, finetune "
                                     "(each at most once, in that order)")
    return stages


_GENOTYPE_NEEDED = "needed when the run starts with {first} (a genotype JSON file, 'baseline:NAME' or 'random')"


def _upgraded(tree: dict[str, Any]) -> dict[str, Any]:
    """A registry config written before `finetune.freeze_encoder` became `finetune.mode`, read as the
    same run (a frozen encoder was a probe; else the whole network was trained)."""
    finetune = tree.get("finetune")
    if isinstance(finetune, Mapping) and "freeze_encoder" in finetune:
        finetune = dict(finetune)
        finetune["mode"] = "probe" if finetune.pop("freeze_encoder") else "full"
        tree["finetune"] = finetune
    return tree


def _check_model(run: RunSection, finetune: Mapping[str, Any]) -> None:
    """A no-search baseline (`finetune.model` other than "nas") is a finetune run alone, with no genotype."""
    if finetune["model"] == "nas":
        if run.stages[0] == "finetune" and run.genotype is None:
            raise _Invalid("run.genotype", _GENOTYPE_NEEDED.format(first="finetune"))
        return
    if list(run.stages) != ["finetune"]:
        raise _Invalid("finetune.model", f"{finetune['model']!r} is a no-search baseline: it needs no search or "
                                         "pretraining (set run.stage = \"finetune\")")
    if run.genotype is not None or run.checkpoint is not None:
        key = "run.genotype" if run.genotype is not None else "run.checkpoint"
        raise _Invalid(key, f"finetune.model {finetune['model']!r} is a no-search baseline and reads no genotype "
                            "or checkpoint (remove it)")


def _check_start(run: dict[str, Any]) -> None:
    """A run that starts with search finds its genotype; any other needs one; only finetune takes a checkpoint."""
    first, genotype = run["stages"][0], run["genotype"]
    if first == "search" and genotype is not None:
        raise _Invalid("run.genotype", "a run that starts with search finds its own genotype (remove it, "
                                       "or set run.stage to pretrain or finetune)")
    if first == "pretrain" and genotype is None:  # a finetune run's needs depend on finetune.model
        raise _Invalid("run.genotype", _GENOTYPE_NEEDED.format(first=first))
    if genotype is not None and genotype.startswith("baseline:"):
        from ssnas.baselines import baseline_names

        name, known = genotype.removeprefix("baseline:"), baseline_names()
        if name not in known:
            raise _Invalid("run.genotype", f"unknown baseline {name!r} (known: {', '.join(known)})")
    if run["genotype_nodes"] and genotype in (None, "random"):
        why = "a random genotype is drawn on the dataset's own nodes" if genotype else "this run has no run.genotype"
        raise _Invalid("run.genotype_nodes", f"maps the nodes of a genotype file or baseline to the dataset's; {why}")
    if run["checkpoint"] is not None and first != "finetune":
        stages = ", ".join(run["stages"])
        raise _Invalid("run.checkpoint", f"only a finetune run starts from a checkpoint (stages: {stages})")


def _read_data(raw: Any) -> DataSection:
    data = _read_section(raw, "data", DATA_FIELDS, tables=("synthetic", "mmimdb"))
    dataset = data["dataset"]
    if dataset not in DATASET_KINDS:
        raise _Invalid("data.dataset", f"{dataset!r} is not one of {', '.join(DATASET_KINDS)}")
    if dataset == "synthetic" and data["path"] is not None:
        raise _Invalid("data.path", "the synthetic dataset is generated; it reads no file")
    if dataset != "synthetic" and data["path"] is None:
        raise _Invalid("data.path", f"the {dataset} dataset needs a file path")
    if not 0.0 < data["label_ratio"] <= 1.0:
        raise _Invalid("data.label_ratio", f"{data['label_ratio']} is out of range (0, 1]")
    if data["batch_size"] < 1:
        raise _Invalid("data.batch_size", f"{data['batch_size']} is out of range (>= 1)")
    raw = raw or {}
    for kind in ("synthetic", "mmimdb"):
        if kind in raw and dataset != kind:
            raise _Invalid(f"data.{kind}", f"options of the {kind} dataset, but data.dataset is {dataset!r}")
    if dataset == "synthetic":
        data["synthetic"] = _read_section(raw.get("synthetic"), "data.synthetic", SYNTHETIC_FIELDS)
        _check_synthetic(data["synthetic"])
    if dataset == "mmimdb":
        data["mmimdb"] = _read_section(raw.get("mmimdb"), "data.mmimdb", MMIMDB_FIELDS)
        _check_mmimdb(data["mmimdb"])
    return DataSection(**data)


def _check_synthetic(s: dict[str, Any]) -> None:
    """SyntheticConfig.__post_init__'s checks, with its messages (plus non-negative specific_dim and seed)."""
    def fail(name: str, problem: str) -> _Invalid:
        return _Invalid(f"data.synthetic.{name}", problem)

    for name in ("train", "dev", "test", "image_levels", "image_channels", "image_side", "classes"):
        if s[name] < 1:
            raise fail(name, f"{s[name]} is out of range (>= 1)")
    if s["shared_dim"] < 2 or s["shared_dim"] % 2:
        raise fail("shared_dim", f"{s['shared_dim']} must be even and >= 2")
    if not s["text_dims"] or min(s["text_dims"]) < 1:
        raise fail("text_dims", f"{list(s['text_dims'])} needs one or more sizes >= 1")
    if not 0 <= s["planted_image"] < s["image_levels"]:
        raise fail("planted_image", f"{s['planted_image']} is not a level (0..{s['image_levels'] - 1})")
    if not 0 <= s["planted_text"] < len(s["text_dims"]):
        raise fail("planted_text", f"{s['planted_text']} is not a level (0..{len(s['text_dims']) - 1})")
    for name in ("noise", "cross_noise", "leak", "specific_dim", "seed"):
        if s[name] < 0:
            raise fail(name, f"{s[name]} is out of range (>= 0)")


def _check_mmimdb(o: dict[str, Any]) -> None:
    for name in ("batch_size", "map_side"):
        if o[name] < 1:
            raise _Invalid(f"data.mmimdb.{name}", f"{o[name]} is out of range (>= 1)")
    if o["limit"] is not None and o["limit"] < 1:
        raise _Invalid("data.mmimdb.limit", f"{o['limit']} is not a positive number of rows")
    if o["image_size"] is not None and min(o["image_size"]) < 1:
        raise _Invalid("data.mmimdb.image_size", f"{o['image_size']} needs two sizes >= 1 (height, width)")
    if o["pixels"] not in MMIMDB_PIXELS:
        raise _Invalid("data.mmimdb.pixels", f"{o['pixels']!r} is not one of {', '.join(MMIMDB_PIXELS)}")


def _check_views(v: dict[str, Any]) -> None:
    """ViewConfig.__post_init__'s checks, with its messages."""
    if v["policy"] not in VIEW_POLICIES:
        raise _Invalid("views.policy", f"{v['policy']!r} is not one of {', '.join(VIEW_POLICIES)}")
    if v["noise"] < 0:
        raise _Invalid("views.noise", f"{v['noise']} is out of range (>= 0)")
    for name in ("channel_dropout", "position_mask", "modality_dropout"):
        if not 0.0 <= v[name] < 1.0:
            raise _Invalid(f"views.{name}", f"{v[name]} is out of range ([0, 1))")
    if not 0.0 <= v["level_mix"] <= 1.0:
        raise _Invalid("views.level_mix", f"{v['level_mix']} is out of range ([0, 1])")
    if v["policy"] == "cross_modal" and v["modality_dropout"] > 0:
        raise _Invalid("views.modality_dropout", f"{v['modality_dropout']} applies to policy 'instance' only; "
                                                 "'cross_modal' already hides modalities (set it to 0)")


def _check_files(run: RunSection, data: DataSection) -> None:
    """Files named by the recipe exist (and a genotype file parses)."""
    files = [("data.path", data.path), ("run.checkpoint", run.checkpoint)]
    files += [(f"data.mmimdb.{k}", (data.mmimdb or {}).get(k)) for k in ("image_weights", "text_weights")]
    if _is_path("genotype", run.genotype):
        files.append(("run.genotype", run.genotype))
    for key, path in files:
        if path is not None and not os.path.isfile(path):
            problem = "not a file" if os.path.exists(path) else "file not found"
            raise _Invalid(key, f"{_display(path)}: {problem}")
    if _is_path("genotype", run.genotype):
        from ssnas.nas.genotype import Genotype

        try:
            Genotype.load(_display(run.genotype))
        except GenotypeError as err:
            raise _Invalid("run.genotype", str(err)) from None


def _check_binding(run: RunSection, data: DataSection) -> None:
    """A given genotype reads only input nodes the dataset has, by name or through run.genotype_nodes
    (ssnas.nas.binding), so that it is refused before any run exists rather than applied by position."""
    if run.genotype is None or run.genotype == "random":
        return
    from ssnas.data.nodes import dataset_node_names
    from ssnas.nas.binding import bind_given, load_given

    genotype = load_given(run.genotype)
    path = _display(data.path) if data.path else None
    try:
        names = dataset_node_names(data.dataset, path, data.options)
    except DatasetError as err:
        raise _Invalid("data.path", str(err)) from None
    try:
        bind_given(genotype, names, run.genotype_nodes, path or f"the {data.dataset} data")
    except GenotypeError as err:
        key, _, problem = str(err).partition(": ")
        raise _Invalid(key, problem) from None


def _read_sweep(raw: Any) -> dict[str, list]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _Invalid("sweep", f"expected a table ([sweep]) of lists, got {_show(raw)}")
    sweep = {}
    for key, values in raw.items():
        where = f"sweep.{key}"
        if key not in LEAVES:
            raise _Invalid(where, _unknown(where, key, [*SWEEP_ALIASES, *LEAVES], "key"))
        if key in UNSWEPT:
            raise _Invalid(where, "cannot be swept (the runs of one sweep share it)")
        if not isinstance(values, (list, tuple)):
            raise _Invalid(where, f"expected a list of values, got {_show(values)}")
        if not values:
            raise _Invalid(where, "needs at least one value (an empty list makes no runs)")
        checked = [_coerce(LEAVES[key], v, f"{where}[{i}]") for i, v in enumerate(values)]
        seen = set()
        for value in checked:
            if json.dumps(value) in seen:
                raise _Invalid(where, f"{_show(value)} repeats")
            seen.add(json.dumps(value))
        sweep[key] = checked
    return sweep


def _read_arms(raw: Any, sweep: Mapping[str, list]) -> dict[str, dict[str, Any]]:
    """Each arm's overrides, type-checked like --set values (whole recipes are checked per run later)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _Invalid("arms", f"expected tables ([arms.NAME]) of dotted keys, got {_show(raw)}")
    arms = {}
    for name, overrides in raw.items():
        where = f"arms.{name}"
        if not ARM_NAME.fullmatch(name):
            raise _Invalid(where, f"{name!r} is not an arm name (letters, digits, _, + and -: it goes into run "
                                  "names and the tag arm:NAME)")
        if not isinstance(overrides, Mapping):
            raise _Invalid(where, f"expected a table ([arms.{name}]) of dotted keys, got {_show(overrides)}")
        checked = {}
        for key, value in overrides.items():
            at = f"{where}.{key}"
            if key not in LEAVES:
                raise _Invalid(at, _unknown(key, key, list(LEAVES), "key"))
            if key in UNARMED:
                raise _Invalid(at, "an arm cannot rename its runs (they are named after the recipe and the arm)")
            if key == "run.executor":
                raise _Invalid(at, "an arm cannot change the executor (the runs of one recipe start together)")
            if key in sweep:
                raise _Invalid(at, f"also swept (sweep.{key}): the sweep would override the arm")
            checked[key] = _coerce(LEAVES[key], value, at)
        arms[name] = checked
    return arms


def _run_points(recipe: Recipe) -> Iterator[tuple[dict[str, Any], str | None, dict[str, Any]]]:
    """(the resolved dict of one run, its arm or None, its sweep point) for every run of the recipe."""
    keys = list(recipe.sweep)
    points = [dict(zip(keys, values)) for values in itertools.product(*(recipe.sweep[k] for k in keys))]
    for arm, armed in _armed(recipe):
        for point in points:
            d = _with_values(armed, point)
            d["run"]["name"] = f"{recipe.run.name}[{_point_label(point, arm)}]"
            yield d, arm, point


def _armed(recipe: Recipe) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(arm, the resolved dict of the recipe with the arm's values and tag) per arm; (None, the recipe) without."""
    base = recipe.to_dict()
    base["sweep"], base["arms"] = {}, {}
    if not recipe.arms:
        yield None, base
    for arm, overrides in recipe.arms.items():
        d = _with_values(base, overrides)
        if "run.stage" in overrides and "run.stages" not in overrides:
            del d["run"]["stages"]  # the arm's stage decides its chain
        d["run"]["tags"] = list(dict.fromkeys([*d["run"]["tags"], f"{ARM_TAG}{arm}"]))
        yield arm, d


def _with_values(d: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a resolved dict with dotted keys set."""
    d = copy.deepcopy(d)
    for key, value in values.items():
        *tables, name = key.split(".")
        table = d
        for part in tables:
            table = table.setdefault(part, {})
        table[name] = copy.deepcopy(value)
    return d


def _point_label(point: Mapping[str, Any], arm: str | None = None) -> str:
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
    return _show(value)


def _check_runs(recipe: Recipe, check_files: bool) -> None:
    """Every run of the recipe is itself a valid recipe (ranges and cross-key rules included): the recipe at
    every sweep point, every arm, and every arm at every point. An error names the sweep's key or the arm's,
    else the point or the arm that breaks another key."""
    if recipe.sweep:
        _check_points(_run_points(dataclasses.replace(recipe, arms={})), recipe, check_files)
    for arm, armed in _armed(recipe) if recipe.arms else ():
        try:
            _build(armed, recipe.path, None, check_files)
        except _Invalid as err:
            if err.key in recipe.arms[arm]:
                raise _Invalid(f"arms.{arm}.{err.key}", err.problem) from None
            raise _Invalid(f"arms.{arm}", f"{err.key}: {err.problem}") from None
    if recipe.sweep and recipe.arms:
        _check_points(_run_points(recipe), recipe, check_files)


def _check_points(runs: Iterable[tuple[dict[str, Any], str | None, dict[str, Any]]], recipe: Recipe,
                  check_files: bool) -> None:
    for d, arm, point in runs:
        try:
            _build(d, recipe.path, None, check_files)
        except _Invalid as err:
            if arm is not None:
                raise _Invalid(f"arms.{arm}", f"at sweep point [{_point_label(point)}]: {err.key}: {err.problem}") \
                    from None
            if err.key in point:
                raise _Invalid(f"sweep.{err.key}", err.problem) from None
            raise _Invalid(f"sweep point [{_point_label(point)}]", f"{err.key}: {err.problem}") from None


# --------------------------------------------------------------------------------------------
# Showing values.


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _show(value: Any) -> str:
    """A value as the user wrote it, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _display(path: str) -> str:
    """A path relative to the working folder when it is inside it, else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {value!r}")
