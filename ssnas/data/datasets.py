"""Datasets by name, as recipes name them: `synthetic`, `mmimdb`, `features`, and installed plugins'."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from ssnas.config.data import MMIMDBOptions, SyntheticConfig, is_plugin_dataset, known_datasets
from ssnas.data.pyramids import FeatureSet
from ssnas.errors import ConfigError

Options = TypeVar("Options", SyntheticConfig, MMIMDBOptions)


def load_dataset(kind: str, path: str | Path | None = None, options: Mapping[str, Any] | None = None) -> FeatureSet:
    """The feature set of a dataset kind; `options` are the kind's own settings.

    synthetic: SyntheticConfig fields (no path). mmimdb: the MM-IMDB HDF5 file and MMIMDBOptions
    fields (local encoder weights among them). features: an ssnas-features/1 file. A plugin's
    dataset: whatever its `load` reads (ssnas.data.plugin_dataset).
    """
    options = dict(options or {})
    if kind == "synthetic":
        from ssnas.data.synthetic import make_synthetic

        return make_synthetic(_options(SyntheticConfig, options, "data.synthetic"))
    if kind not in known_datasets():
        raise ConfigError(f"data.dataset: {kind!r} is not one of {', '.join(known_datasets())}")
    if is_plugin_dataset(kind):
        from ssnas.data.plugin_dataset import DatasetPlugin

        return DatasetPlugin.named(kind).load(None if path is None else str(path), options)
    if path is None:
        raise ConfigError(f"data.path: the {kind} dataset needs a file path")
    if kind == "mmimdb":
        from ssnas.data.mmimdb import load_mmimdb

        return load_mmimdb(path, _options(MMIMDBOptions, options, "data.mmimdb"))
    if options:
        raise ConfigError(f"data.features.{sorted(options)[0]}: a features file takes no options")
    from ssnas.data.features import read_features

    return read_features(path)


def _options(cls: type[Options], options: dict[str, Any], table: str) -> Options:
    """A dataset's settings dataclass from a plain table, naming the first key it does not have."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"{table}.{unknown[0]}: unknown setting (known: {', '.join(sorted(known))})")
    return cls(**options)
