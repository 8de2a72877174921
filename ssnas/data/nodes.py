"""Input-node names: the one naming rule, and a dataset's names read from its settings without torch.

An input node is one level of one modality, named `modality[k]` (k = 0 is the shallowest level),
listed modality by modality. Genotypes are bound to datasets by these names, never by position
(DESIGN.md 10), so the rule lives here once: `FeatureSet.node_names` applies it to data in memory
and `dataset_node_names` to a recipe's `[data]` settings, which lets `ssnas run` refuse a genotype
that does not fit before any run exists (recipe validation imports no torch).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ssnas.errors import DatasetError

# ssnas.data.synthetic: image maps, then text vectors.
SYNTHETIC_MODALITIES: tuple[str, str] = ("image", "text")
# ssnas.data.mmimdb: VGG19's four taps (relu4_1, relu4_4, relu5_3, pool5), the text MLP's two levels (64, 128).
MMIMDB_PYRAMIDS: tuple[tuple[str, int], ...] = (("image", 4), ("text", 2))


def node_name(modality: str, level: int) -> str:
    """The name of level `level` of `modality`: `image[2]`."""
    return f"{modality}[{level}]"


def node_names(pyramids: Iterable[tuple[str, int]]) -> tuple[str, ...]:
    """Every input node's name, in node order, from (modality, number of levels) in modality order."""
    return tuple(node_name(modality, k) for modality, levels in pyramids for k in range(levels))


def dataset_node_names(dataset: str, path: str | Path | None = None,
                       options: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The input-node names `load_dataset(dataset, path, options)` would give, without loading the data.

    synthetic: from its settings (`image_levels`, `text_dims`, as a recipe's resolved `[data.synthetic]`
    holds them); mmimdb: fixed by its encoders; features: the file's header (its `modalities`
    attribute and `/modalities/<name>/level_<k>` groups), read with h5py, no array loaded.
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
    raise DatasetError(f"data.dataset: {dataset!r} is not one of synthetic, mmimdb, features")


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
