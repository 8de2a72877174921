"""The resolved recipe: every section defaulted, in the plain JSON form the registry stores.

`[run]` and `[data]` are dataclasses of their own; the other sections are dicts whose keys are the
fields of the config dataclasses they build (`space_config()` and the others).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ssnas.config.data import MMIMDBOptions, SyntheticConfig
from ssnas.config.kinds import FilePath, GenotypeRef, NodeMap
from ssnas.config.runtime import Runtime
from ssnas.config.stages import FinetuneConfig, PretrainConfig, SearchConfig
from ssnas.config.views import ViewConfig
from ssnas.nas.space import SpaceConfig
from ssnas.recipe.kinds import plain
from ssnas.recipe.tuning import TuneSection

STAGES: tuple[str, ...] = ("search", "pretrain", "finetune")
RUN_STAGES: tuple[str, ...] = (*STAGES, "pipeline")
EXECUTORS: tuple[str, ...] = ("local", "ray", "slurm")  # ssnas.scheduling.daemon.open_engine
STAGE_CONFIGS: tuple[type, ...] = (SearchConfig, PretrainConfig, FinetuneConfig)

Config = TypeVar("Config")


@dataclass(frozen=True)
class _RunIdentity:
    """The first keys of `[run]`: which run this is (a base of RunSection, so that they come first)."""

    name: str
    stage: str = "pipeline"  # "search", "pretrain", "finetune" or "pipeline"


@dataclass(frozen=True)
class RunSection(Runtime, _RunIdentity):
    """`[run]`: the run's name and stages, the `Runtime` every stage computes with, and where it starts."""

    tags: tuple[str, ...] = ()
    executor: str = "local"
    genotype: GenotypeRef | None = None  # absolute path, "baseline:NAME" or "random"; runs that start without search
    genotype_nodes: NodeMap | None = None  # genotype input node -> dataset input node, where names differ
    checkpoint: FilePath | None = None  # absolute path of a pretrained network; a finetune run alone
    stages: tuple[str, ...] = STAGES  # the chain this run executes ([stage] unless a pipeline)
    sinks: tuple[str, ...] = ()  # plugins' tracking sinks its metrics and events also go to (ssnas.sinks)

    @property
    def runtime(self) -> dict[str, Any]:
        """Keyword arguments of `Runtime`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Runtime)}


@dataclass(frozen=True)
class DataSection:
    """`[data]`: which dataset, the batch size and label ratio every stage shares, and the dataset's
    own options as a subtable named after it (`metadata["table"]`: the dataclass that checks them; None
    for a plugin's dataset, whose table `[data.<name>]` is passed to the plugin as it is)."""

    dataset: str = "synthetic"
    path: FilePath | None = None  # absolute; mmimdb, features, and plugin datasets that read one
    label_ratio: float = SearchConfig.label_ratio
    batch_size: int = SearchConfig.batch_size
    standardize: bool = True  # inputs centred and scaled on the training rows (data.standardize)
    synthetic: dict[str, Any] | None = dataclasses.field(default=None, metadata={"table": SyntheticConfig})
    mmimdb: dict[str, Any] | None = dataclasses.field(default=None, metadata={"table": MMIMDBOptions})
    plugin_options: dict[str, Any] | None = dataclasses.field(default=None, metadata={"table": None})

    @property
    def tables(self) -> dict[str, dict[str, Any]]:
        """The dataset's own options as a recipe writes them, `{dataset: options}`; {} when it takes none."""
        for f in dataclasses.fields(self):
            table = getattr(self, f.name)
            if "table" in f.metadata and table is not None:
                return {self.dataset: copy.deepcopy(table)}
        return {}

    @property
    def options(self) -> dict[str, Any]:
        """The `options` of `load_dataset(dataset, path, options)`."""
        return self.tables.get(self.dataset, {})


# The built-in datasets' option tables of [data] (name -> the dataclass of its options), and the keys of
# [data] that also belong to a stage config: one batch size and one label ratio feed every stage.
DATA_TABLES: dict[str, type] = {f.name: f.metadata["table"] for f in dataclasses.fields(DataSection)
                                if f.metadata.get("table") is not None}
SHARED_KEYS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(DataSection)
    if any(f.name in {g.name for g in dataclasses.fields(c)} for c in STAGE_CONFIGS))


@dataclass(frozen=True)
class Recipe:
    """A resolved recipe: what `ssnas run` validated and the registry stores (`to_dict`) for every run."""

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
    tune: TuneSection | None = None  # what `ssnas tune` samples; no run reads it, so `to_dict` leaves it out

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain JSON-able data: every default filled in, paths absolute."""
        data = {f.name: getattr(self.data, f.name) for f in dataclasses.fields(DataSection)
                if "table" not in f.metadata}
        return copy.deepcopy({
            "run": {f.name: plain(getattr(self.run, f.name)) for f in dataclasses.fields(RunSection)},
            "data": {**data, **self.data.tables},
            "space": self.space,
            "search": self.search,
            "views": self.views,
            "pretrain": self.pretrain,
            "finetune": self.finetune,
            "sweep": self.sweep,
            "arms": self.arms,
        })

    def space_config(self) -> SpaceConfig:
        return SpaceConfig(**self.space)

    def search_config(self) -> SearchConfig:
        return self._stage_config(SearchConfig, self.search)

    def pretrain_config(self) -> PretrainConfig:
        return self._stage_config(PretrainConfig, self.pretrain)

    def finetune_config(self) -> FinetuneConfig:
        return self._stage_config(FinetuneConfig, self.finetune)

    def views_config(self) -> ViewConfig:
        return ViewConfig(**self.views)

    def runtime_config(self) -> Runtime:
        return Runtime(**self.run.runtime)

    def _stage_config(self, cls: type[Config], section: Mapping[str, Any]) -> Config:
        return cls(**section, **shared_values(cls, self.data))


def shared_values(cls: type, data: DataSection) -> dict[str, Any]:
    """The `[data]` values a stage config takes as its own fields (batch_size, and label_ratio where it has one)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {key: getattr(data, key) for key in SHARED_KEYS if key in names}
