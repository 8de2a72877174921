"""The `ssnas-features/1` layout without torch: its constants, the checks, and the one writer.

Two front ends write the format: `features.write_features` (a torch `FeatureSet`) and
`convert.arrays_to_features` (numpy arrays, for `ssnas features from-arrays`, which must start
without torch). Both end in `write_feature_file`, and the file check in `feature_check` shares the
split checks, so that what one side writes the other accepts, with the same one-line errors.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ssnas.data.nodes import node_names
from ssnas.data.row_scan import first_non_finite_row
from ssnas.errors import DatasetError

FORMAT = "ssnas-features/1"
SPLITS = ("train", "dev", "test")
LEVEL_NAME = re.compile(r"level_(\d+)")
DTYPES = ("float16", "float32")


def feature_error(path: str | Path, key: str, problem: str) -> DatasetError:
    """The one error shape of the format: `<path>: <key>: <problem>`."""
    return DatasetError(f"{path}: {key}: {problem}")


def is_name_list(value: Any) -> bool:
    """Modality and label names: non-empty strings without `/` (they become HDF5 keys or JSON)."""
    return isinstance(value, list) and all(isinstance(v, str) and v and "/" not in v for v in value)


def overflows(array: np.ndarray, dtype: str) -> bool:
    """Whether storing `array` as `dtype` would turn some finite values into inf (no full-size copy)."""
    return bool(array.size) and max(float(array.max()), -float(array.min())) > float(np.finfo(dtype).max)


def stored_level(array: np.ndarray, dtype: str, path: str | Path, key: str) -> np.ndarray:
    """A level as the file stores it. NaN and inf are refused as the reader would refuse them, but
    before the file exists; float16 overflow is refused rather than stored as inf."""
    bad = first_non_finite_row(array) if array.dtype.kind == "f" else None
    if bad is not None:
        raise feature_error(path, key, f"contains NaN or inf (first at row {bad})")
    if dtype == "float16" and overflows(array, dtype):
        raise feature_error(path, key, "values exceed the float16 range; write with dtype='float32'")
    return np.asarray(array, dtype=dtype)


def stored_labels(labels: np.ndarray, path: str | Path) -> np.ndarray:
    """Labels as the file stores them: multi-hot uint8, anything but 0 and 1 refused."""
    if not np.isin(labels, (0, 1)).all():
        raise feature_error(path, "/labels", "values must be 0 or 1 (multi-hot)")
    return labels.astype(np.uint8)


def check_splits(splits: Mapping[str, np.ndarray], n: int, where: Mapping[str, tuple[str | Path, str]]) -> None:
    """Refuse split indices outside 0..n-1, repeated within a split, or shared by two splits.

    `where[split]` is the (file, key) an error names: the file being read, or the input the
    indices came from.
    """
    owner = np.full(n, -1, dtype=np.int64)
    for s, split in enumerate(SPLITS):
        idx = splits[split]
        path, key = where[split]
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            bad = idx[(idx < 0) | (idx >= n)][0]
            raise feature_error(path, key, f"index {bad} out of range 0..{n - 1}")
        if np.unique(idx).size != idx.size:
            raise feature_error(path, key, "repeats a row")
        taken = owner[idx]
        if (taken >= 0).any():
            other = SPLITS[int(taken[taken >= 0][0])]
            raise feature_error(path, key, f"overlaps {where[other][1]}")
        owner[idx] = s


def write_feature_file(
    path: str | Path,
    modalities: Sequence[str],
    levels: Sequence[Sequence[np.ndarray]],
    splits: Mapping[str, np.ndarray],
    labels: np.ndarray | None = None,
    label_names: Sequence[str] | None = None,
    source: str = "",
    dtype: str = "float16",
) -> Path:
    """Write checked arrays to `path` atomically (a temporary file renamed into place): a crash or a
    refused level never leaves a half-written file where a run would read it."""
    if dtype not in DTYPES:
        raise DatasetError(f"{path}: dtype: {dtype!r} is not 'float16' or 'float32'")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["modalities"] = json.dumps(list(modalities))
            f.attrs["source"] = source
            if labels is not None and label_names is not None:
                f.attrs["label_names"] = json.dumps(list(label_names))
            for name, pyramid in zip(modalities, levels, strict=True):
                for k, level in enumerate(pyramid):
                    key = f"/modalities/{name}/level_{k}"
                    f.create_dataset(key, data=stored_level(level, dtype, path, key))
            if labels is not None:
                f.create_dataset("/labels", data=stored_labels(labels, path))
            for split in SPLITS:
                f.create_dataset(f"/splits/{split}", data=np.asarray(splits[split], dtype=np.int64))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@dataclass(frozen=True)
class FeatureFileSummary:
    """What a feature file holds, from its metadata and shapes alone (no array is read)."""

    num_samples: int
    node_names: tuple[str, ...]  # "image[0]", ..., as the network's input nodes are named
    num_classes: int | None  # None: no /labels
    split_sizes: dict[str, int]

    def describe(self) -> str:
        """One line: samples, nodes, classes, split sizes."""
        classes = "unlabeled" if self.num_classes is None else f"{self.num_classes} classes"
        sizes = ", ".join(f"{split} {self.split_sizes[split]}" for split in SPLITS)
        return f"{self.num_samples} samples, nodes {', '.join(self.node_names)}; {classes}; {sizes}"


def summarize_feature_file(path: str | Path) -> FeatureFileSummary:
    """The summary of a file this module wrote (not a validation: `feature_check.check_feature_file` is that)."""
    with h5py.File(path, "r") as f:
        modalities = json.loads(f.attrs["modalities"])
        counts = [sum(1 for member in f[f"modalities/{name}"] if LEVEL_NAME.fullmatch(member)) for name in modalities]
        n = int(f[f"modalities/{modalities[0]}/level_0"].shape[0])
        classes = int(f["labels"].shape[1]) if "labels" in f else None
        sizes = {split: int(f[f"splits/{split}"].shape[0]) for split in SPLITS}
    return FeatureFileSummary(n, node_names(zip(modalities, counts, strict=True)), classes, sizes)
