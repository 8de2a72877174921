"""A dataset's input-node names read from its settings without torch or loading its data.

`ssnas run` binds a genotype to a dataset by these names before any run exists (recipe checks and
preflight); the naming rule itself is `ssnas.data.nodes`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssnas.data.nodes import MMIMDB_PYRAMIDS, SYNTHETIC_MODALITIES, node_names
from ssnas.errors import DatasetError


def dataset_node_names(dataset: str, path: str | Path | None = None,
                       options: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The input-node names `load_dataset(dataset, path, options)` would give, without loading the data.

    synthetic: from its settings (`image_levels`, `text_dims`, as a recipe's resolved `[data.synthetic]`
    holds them); mmimdb: fixed by its encoders; features: the file's header (its `modalities`
    attribute and `/modalities/<name>/level_<k>` groups), read with h5py, no array loaded; a plugin's
    dataset: its `node_names` (ssnas.data.plugin_dataset).
    """
    if dataset == "synthetic":
        options = options or {}
        image, text = SYNTHETIC_MODALITIES
        return node_names(((image, options["image_levels"]), (text, len(options["text_dims"]))))
    if dataset == "mmimdb":
        return node_names(MMIMDB_PYRAMIDS)
    if dataset == "features":
        if path is None:
            raise DatasetError("data.path: the features dataset needs a file path")
        return feature_file_node_names(path)
    from ssnas import plugins
    from ssnas.data.plugin_dataset import DatasetPlugin

    known = plugins.known_names(plugins.DATASETS_GROUP)
    if dataset not in known:
        raise DatasetError(f"data.dataset: {dataset!r} is not one of {', '.join(known)}")
    return DatasetPlugin.named(dataset).node_names(None if path is None else str(path), options or {})


def feature_file_node_names(path: str | Path) -> tuple[str, ...]:
    """A features file's input-node names from its header: the root attribute `modalities` and the
    `level_0`, `level_1`, ... under each `/modalities/<name>`; no array is read.

    Not a validation (`read_features` checks the whole file where a run loads it): only what naming
    the nodes needs, so that a file too broken to name its nodes fails with one line here too.
    """
    import h5py

    from ssnas.data.feature_file import open_feature_file

    with open_feature_file(Path(path)) as f:
        raw = f.attrs.get("modalities")
        try:
            modalities = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        except (TypeError, ValueError):
            modalities = None
        if not (isinstance(modalities, list) and modalities and all(isinstance(m, str) and m for m in modalities)):
            raise DatasetError(f"{path}: modalities: expected a root attribute holding a JSON list of names, "
                               f"got {raw!r}")
        pyramids = []
        for modality in modalities:
            group = f.get(f"modalities/{modality}")
            levels = 0
            while isinstance(group, h5py.Group) and f"level_{levels}" in group:
                levels += 1
            if not levels:
                raise DatasetError(f"{path}: /modalities/{modality}/level_0: missing")
            pyramids.append((modality, levels))
    return node_names(pyramids)
