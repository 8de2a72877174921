"""Dataset kinds by name, as recipes name them: `synthetic`, `mmimdb`, `features`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssnas.data.pyramids import FeatureSet
from ssnas.errors import ConfigError

DATASET_KINDS = ("synthetic", "mmimdb", "features")


def load_dataset(kind: str, path: str | Path | None = None, options: Mapping[str, Any] | None = None) -> FeatureSet:
    """The feature set of a dataset kind; `options` are the kind's own settings.

    synthetic: SyntheticConfig fields (no path). mmimdb: the MM-IMDB HDF5 file and load_mmimdb's
    keyword arguments (local encoder weights among them). features: an ssnas-features/1 file.
    """
    options = dict(options or {})
    if kind == "synthetic":
        from ssnas.data.synthetic import SyntheticConfig, make_synthetic

        known = {f.name for f in dataclasses.fields(SyntheticConfig)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"data.synthetic.{unknown[0]}: unknown setting (known: {', '.join(sorted(known))})")
        return make_synthetic(SyntheticConfig(**options))
    if kind not in DATASET_KINDS:
        raise ConfigError(f"data.dataset: {kind!r} is not one of {', '.join(DATASET_KINDS)}")
    if path is None:
        raise ConfigError(f"data.path: the {kind} dataset needs a file path")
    if kind == "mmimdb":
        from ssnas.data.mmimdb import load_mmimdb

        return load_mmimdb(path, **options)
    if options:
        raise ConfigError(f"data.features.{sorted(options)[0]}: a features file takes no options")
    from ssnas.data.features import read_features

    return read_features(path)
