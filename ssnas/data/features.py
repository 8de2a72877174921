"""The `ssnas-features/1` HDF5 feature cache: the one file format every dataset becomes.

Layout (DESIGN.md section 8, user documentation in docs/features.md):

- root attributes `format = "ssnas-features/1"`, `modalities` (JSON list of names, node order),
  `label_names` (JSON list, only with labels), `source` (free text);
- `/modalities/<name>/level_<k>`, k = 0, 1, ...: float16 / float32 arrays shaped (N, channels),
  (N, channels, positions) or (N, channels, height, width), in increasing depth;
- `/labels`: (N, classes) multi-hot uint8, optional;
- `/splits/train`, `/splits/dev`, `/splits/test`: disjoint int64 row indices.

The reader checks all of it where the file enters, so that a malformed file fails at once with the
file and the key instead of deep inside a training step. Whole datasets are read with `[()]`: one
HDF5 read per array is what keeps loading fast. The torch-free parts (the constants, the split
checks, the writer) live in `feature_format`, which `convert` (arrays -> file) shares.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import torch

from ssnas.data.feature_file import open_feature_file
from ssnas.data.feature_format import (
    FORMAT,
    LEVEL_NAME,
    SPLITS,
    check_splits,
    is_name_list,
    write_feature_file,
)
from ssnas.data.feature_format import feature_error as _error
from ssnas.data.pyramids import FeatureSet


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
    """Read and validate an `ssnas-features/1` file into memory (levels and labels as float32)."""
    path = Path(path)
    with open_feature_file(path) as f:
        # Metadata first: a malformed file fails before any large array is read.
        _check_format(f, path)
        modalities = _read_modalities(f, path)
        pyramids = [_level_datasets(f, name, path) for name in modalities]
        n = pyramids[0][0].shape[0]
        for name, pyramid in zip(modalities, pyramids, strict=True):
            for k, dataset in enumerate(pyramid):
                if dataset.shape[0] != n:
                    raise _error(path, f"/modalities/{name}/level_{k}", f"has {dataset.shape[0]} rows, expected {n}")
        labels = _read_labels(f, n, path)
        label_names = _read_label_names(f, labels, path)
        splits = _read_splits(f, n, path)
        levels = [[torch.from_numpy(dataset[()]).float() for dataset in pyramid] for pyramid in pyramids]
    return FeatureSet(
        modalities,
        levels,
        {split: torch.from_numpy(idx) for split, idx in splits.items()},
        labels=torch.from_numpy(labels).float() if labels is not None else None,
        label_names=label_names,
        source=str(path),
    )


def _json_attr(f: h5py.File, name: str, path: Path) -> Any:
    raw = f.attrs[name]
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if not isinstance(raw, str):
        raise _error(path, name, f"expected a JSON string attribute, got {type(raw).__name__}")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _error(path, name, f"not valid JSON ({exc.msg})") from None


def _check_format(f: h5py.File, path: Path) -> None:
    if "format" not in f.attrs:
        raise _error(path, "format", f"missing root attribute; expected {FORMAT!r}")
    fmt = f.attrs["format"]
    fmt = fmt.decode("utf-8") if isinstance(fmt, bytes) else fmt
    if fmt != FORMAT:
        raise _error(path, "format", f"is {fmt!r}, expected {FORMAT!r}")


def _read_modalities(f: h5py.File, path: Path) -> list[str]:
    if "modalities" not in f.attrs:
        raise _error(path, "modalities", "missing root attribute (a JSON list of modality names)")
    names = _json_attr(f, "modalities", path)
    if not is_name_list(names) or len(names) < 2:
        raise _error(path, "modalities", f"expected a JSON list of at least two names, got {names!r}")
    if len(set(names)) != len(names):
        raise _error(path, "modalities", f"names repeat: {names!r}")
    return names


def _level_datasets(f: h5py.File, name: str, path: Path) -> list[h5py.Dataset]:
    key = f"/modalities/{name}"
    if key not in f or not isinstance(f[key], h5py.Group):
        raise _error(path, key, "missing group")
    group = f[key]
    numbers = []
    for member in group:
        match = LEVEL_NAME.fullmatch(member)
        if match is None:
            raise _error(path, f"{key}/{member}", "unexpected member; levels are named level_0, level_1, ...")
        numbers.append(int(match.group(1)))
    if 0 not in numbers:
        raise _error(path, f"{key}/level_0", "missing")
    numbers.sort()
    for expected, found in enumerate(numbers):
        if found != expected:
            raise _error(path, f"{key}/level_{expected}", f"missing (levels jump to level_{found})")
    levels = []
    for k in numbers:
        dataset = group[f"level_{k}"]
        level_key = f"{key}/level_{k}"
        if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind != "f":
            raise _error(path, level_key, "expected a float16 or float32 dataset")
        if dataset.ndim not in (2, 3, 4):
            raise _error(
                path,
                level_key,
                f"has {dataset.ndim} dimensions {dataset.shape}, expected 2, 3 or 4: "
                "(N, channels[, positions | height, width])",
            )
        levels.append(dataset)
    return levels


def _read_labels(f: h5py.File, n: int, path: Path) -> np.ndarray | None:
    if "labels" not in f:
        return None
    dataset = f["labels"]
    if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 2:
        raise _error(path, "/labels", f"expected an (N, classes) dataset, got shape {getattr(dataset, 'shape', None)}")
    if dataset.shape[0] != n:
        raise _error(path, "/labels", f"has {dataset.shape[0]} rows, expected {n}")
    labels = dataset[()]
    if not np.isin(labels, (0, 1)).all():
        raise _error(path, "/labels", "values must be 0 or 1 (multi-hot)")
    return labels.astype(np.uint8)


def _read_label_names(f: h5py.File, labels: np.ndarray | None, path: Path) -> list[str] | None:
    if "label_names" not in f.attrs:
        return None
    if labels is None:
        raise _error(path, "label_names", "given, but the file has no /labels")
    names = _json_attr(f, "label_names", path)
    if not is_name_list(names):
        raise _error(path, "label_names", f"expected a JSON list of names, got {names!r}")
    if len(names) != labels.shape[1]:
        raise _error(path, "label_names", f"has {len(names)} names, but /labels has {labels.shape[1]} classes")
    return names


def _read_splits(f: h5py.File, n: int, path: Path) -> dict[str, np.ndarray]:
    splits: dict[str, np.ndarray] = {}
    for split in SPLITS:
        key = f"/splits/{split}"
        if key not in f:
            raise _error(path, key, "missing")
        dataset = f[key]
        if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 1 or dataset.dtype.kind not in "iu":
            raise _error(path, key, "expected a 1-D integer dataset of row indices")
        splits[split] = dataset[()].astype(np.int64)
    check_splits(splits, n, {split: (path, f"/splits/{split}") for split in SPLITS})
    return splits
