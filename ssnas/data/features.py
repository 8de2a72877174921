"""The `ssnas-features/1` HDF5 feature cache: the one file format every dataset becomes.

Layout (DESIGN.md section 8, user documentation in docs/features.md):

- root attributes `format = "ssnas-features/1"`, `modalities` (JSON list of names, node order),
  `label_names` (JSON list, only with labels), `source` (free text);
- `/modalities/<name>/level_<k>`, k = 0, 1, ...: float16 / float32 arrays shaped (N, channels),
  (N, channels, positions) or (N, channels, height, width), in increasing depth;
- `/labels`: (N, classes) multi-hot uint8, optional;
- `/splits/train`, `/splits/dev`, `/splits/test`: disjoint int64 row indices.

The reader checks all of it where the file enters (`feature_check`, the same torch-free check
`ssnas run` makes before a run exists), so that a malformed file fails at once with the file and
the key instead of deep inside a training step. Once checked, whole datasets are read with `[()]`:
one HDF5 read per array is what keeps loading fast. The other torch-free parts (the constants, the
writer) live in `feature_format`, which `convert` (arrays -> file) shares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ssnas.data.feature_check import check_open_feature_file
from ssnas.data.feature_file import open_feature_file
from ssnas.data.feature_format import FORMAT, write_feature_file
from ssnas.data.pyramids import FeatureSet

__all__ = ["FORMAT", "build_feature_cache", "read_features", "write_features"]


def write_features(features: FeatureSet, path: str | Path, dtype: Literal["float16", "float32"] = "float16") -> Path:
    """Write `features` to `path` atomically (a temporary file renamed into place) and return the path.

    float16 halves the file and is ample for frozen-backbone activations; a level whose values
    would overflow it is refused rather than silently stored as inf.
    """
    labels = features.labels if features.has_labels else None
    return write_feature_file(
        path,
        features.modalities,
        [[level.detach().cpu().float().numpy() for level in pyramid] for pyramid in features.levels],
        {split: idx.cpu().numpy() for split, idx in features.splits.items()},
        labels=labels.detach().cpu().numpy() if labels is not None else None,
        label_names=features.label_names,
        source=features.source,
        dtype=dtype,
    )


def build_feature_cache(features: FeatureSet, path: str | Path) -> Path:
    """Cache `features` on disk in the default float16 layout (the same as `write_features`)."""
    return write_features(features, path)


def read_features(path: str | Path) -> FeatureSet:
    """Check an `ssnas-features/1` file whole (`feature_check`, the rules preflight applies too) and
    read it into memory, levels and labels as float32."""
    path = Path(path)
    with open_feature_file(path) as f:
        checked = check_open_feature_file(f, path)
        levels = [[torch.from_numpy(f[key][()]).float() for key in keys] for keys in checked.level_keys]
        labels = torch.from_numpy(f["labels"][()].astype(np.float32)) if checked.has_labels else None
    return FeatureSet(
        checked.modalities,
        levels,
        {split: torch.from_numpy(idx) for split, idx in checked.splits.items()},
        labels=labels,
        label_names=checked.label_names,
        source=str(path),
    )
