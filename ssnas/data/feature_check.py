"""The whole check of an `ssnas-features/1` file, torch-free, so that a bad file is refused before a run exists.

`ssnas run` calls `check_feature_file` before it records anything, the worker's `read_features`
runs the same check again before it loads, and `ssnas features` checks every features file it is
given: one set of rules, so that what one refuses the others refuse with the same line,
`<path>: <key>: <problem>`. Metadata is checked first (a malformed header fails before any large
array is read), then every level and the labels are scanned a block of rows at a time: NaN and
inf are found in bounded memory whatever the file's size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ssnas.data.feature_file import open_feature_file
from ssnas.data.feature_format import FORMAT, LEVEL_NAME, SPLITS, check_splits, feature_error, is_name_list, overflows
from ssnas.data.row_scan import first_non_finite_row, row_blocks
from ssnas.data.split_needs import SplitNeeds, label_findings, scan_labels, split_findings, split_owner

__all__ = ["CheckedFeatures", "SplitNeeds", "check_feature_file", "check_open_feature_file"]

SPLIT_KEYS = {split: f"/splits/{split}" for split in SPLITS}


@dataclass(frozen=True)
class CheckedFeatures:
    """What the check learned that a reader needs, so that it reads the file without asking again."""

    modalities: tuple[str, ...]
    level_keys: tuple[tuple[str, ...], ...]  # per modality, its levels' HDF5 keys in level order
    rows: int
    has_labels: bool
    label_names: tuple[str, ...] | None
    splits: dict[str, np.ndarray]  # int64 row indices
    warnings: tuple[str, ...]


def check_feature_file(path: str | Path, needs: SplitNeeds | None = None) -> list[str]:
    """Refuse (DatasetError) anything a run would trip on; return warnings (one line each) for what is
    legal but degenerate."""
    path = Path(path)
    with open_feature_file(path) as f:
        return list(check_open_feature_file(f, path, needs).warnings)


def check_open_feature_file(f: h5py.File, path: Path, needs: SplitNeeds | None = None) -> CheckedFeatures:
    """`check_feature_file` on a file already open (the reader's), returning what it found."""
    _check_format(f, path)
    modalities = _modalities(f, path)
    levels = [_level_datasets(f, name, path) for name in modalities]
    n = _rows(levels, path)
    labels = _labels(f, n, path)
    names = _label_names(f, labels, path)
    splits = _splits(f, n, path)
    warnings = split_findings(path, {split: idx.size for split, idx in splits.items()}, SPLIT_KEYS, needs)
    if labels is None and needs is not None and needs.labeled:
        read = [split for split in SPLITS if split in needs.labeled]
        raise feature_error(path, "/labels", f"missing; this run's stages read the labels of the "
                                             f"{' and '.join(read)} split{'s' * (len(read) > 1)}")
    for dataset in (dataset for pyramid in levels for dataset in pyramid):
        _scan_level(dataset, path)
    if labels is not None:
        counts = scan_labels(labels, split_owner(n, splits), path, "/labels")
        warnings += label_findings(path, "/labels", counts, names, needs)
    return CheckedFeatures(
        tuple(modalities),
        tuple(tuple(dataset.name for dataset in pyramid) for pyramid in levels),
        n,
        labels is not None,
        tuple(names) if names is not None else None,
        splits,
        tuple(warnings),
    )


def _json_attr(f: h5py.File, name: str, path: Path) -> Any:
    raw = f.attrs[name]
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if not isinstance(raw, str):
        raise feature_error(path, name, f"expected a JSON string attribute, got {type(raw).__name__}")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise feature_error(path, name, f"not valid JSON ({exc.msg})") from None


def _check_format(f: h5py.File, path: Path) -> None:
    if "format" not in f.attrs:
        raise feature_error(path, "format", f"missing root attribute; expected {FORMAT!r}")
    fmt = f.attrs["format"]
    fmt = fmt.decode("utf-8") if isinstance(fmt, bytes) else fmt
    if fmt != FORMAT:
        raise feature_error(path, "format", f"is {fmt!r}, expected {FORMAT!r}")


def _modalities(f: h5py.File, path: Path) -> list[str]:
    if "modalities" not in f.attrs:
        raise feature_error(path, "modalities", "missing root attribute (a JSON list of modality names)")
    names = _json_attr(f, "modalities", path)
    if not is_name_list(names) or len(names) < 2:
        raise feature_error(path, "modalities", f"expected a JSON list of at least two names, got {names!r}")
    if len(set(names)) != len(names):
        raise feature_error(path, "modalities", f"names repeat: {names!r}")
    return names


def _level_datasets(f: h5py.File, name: str, path: Path) -> list[h5py.Dataset]:
    """A modality's levels in order: named level_0, level_1, ... without a gap, each a float array
    of 2 to 4 dimensions with no empty axis."""
    key = f"/modalities/{name}"
    if key not in f or not isinstance(f[key], h5py.Group):
        raise feature_error(path, key, "missing group")
    group = f[key]
    numbers = []
    for member in group:
        match = LEVEL_NAME.fullmatch(member)
        if match is None:
            raise feature_error(path, f"{key}/{member}", "unexpected member; levels are named level_0, level_1, ...")
        numbers.append(int(match.group(1)))
    if 0 not in numbers:
        raise feature_error(path, f"{key}/level_0", "missing")
    numbers.sort()
    for expected, found in enumerate(numbers):
        if found != expected:
            raise feature_error(path, f"{key}/level_{expected}", f"missing (levels jump to level_{found})")
    levels = []
    for k in numbers:
        dataset = group[f"level_{k}"]
        level_key = f"{key}/level_{k}"
        if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind != "f":
            raise feature_error(path, level_key, "expected a float16 or float32 dataset")
        if dataset.ndim not in (2, 3, 4):
            raise feature_error(path, level_key, f"has {dataset.ndim} dimensions {dataset.shape}, expected 2, 3 or 4: "
                                                 "(N, channels[, positions | height, width])")
        if 0 in dataset.shape[1:]:
            raise feature_error(path, level_key, f"has shape {dataset.shape}: a level needs at least one channel "
                                                 "(and position)")
        levels.append(dataset)
    return levels


def _rows(levels: list[list[h5py.Dataset]], path: Path) -> int:
    """N: the first level's rows, which every other level must have too (and at least one)."""
    first = levels[0][0]
    n = first.shape[0]
    if n == 0:
        raise feature_error(path, first.name, "has no rows")
    for dataset in (dataset for pyramid in levels for dataset in pyramid):
        if dataset.shape[0] != n:
            raise feature_error(path, dataset.name, f"has {dataset.shape[0]} rows, expected {n}")
    return n


def _scan_level(dataset: h5py.Dataset, path: Path) -> None:
    """Every value finite, and within float32 (what levels are read as) when stored wider."""
    bad = first_non_finite_row(dataset)
    if bad is not None:
        raise feature_error(path, dataset.name, f"contains NaN or inf (first at row {bad})")
    if dataset.dtype.itemsize > 4:
        for block in row_blocks(dataset.shape, dataset.dtype.itemsize):
            if overflows(dataset[block], "float32"):
                raise feature_error(path, dataset.name, f"values exceed the float32 range that levels are read in "
                                                        f"(in rows {block.start}..{block.stop - 1})")


def _labels(f: h5py.File, n: int, path: Path) -> h5py.Dataset | None:
    if "labels" not in f:
        return None
    dataset = f["labels"]
    if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 2:
        raise feature_error(path, "/labels", f"expected an (N, classes) dataset, got shape "
                                             f"{getattr(dataset, 'shape', None)}")
    if dataset.shape[0] != n:
        raise feature_error(path, "/labels", f"has {dataset.shape[0]} rows, expected {n}")
    if dataset.shape[1] == 0:
        raise feature_error(path, "/labels", f"has shape {dataset.shape}: no classes")
    return dataset


def _label_names(f: h5py.File, labels: h5py.Dataset | None, path: Path) -> list[str] | None:
    if "label_names" not in f.attrs:
        return None
    if labels is None:
        raise feature_error(path, "label_names", "given, but the file has no /labels")
    names = _json_attr(f, "label_names", path)
    if not is_name_list(names):
        raise feature_error(path, "label_names", f"expected a JSON list of names, got {names!r}")
    if len(names) != labels.shape[1]:
        raise feature_error(path, "label_names", f"has {len(names)} names, but /labels has {labels.shape[1]} classes")
    if len(set(names)) != len(names):
        raise feature_error(path, "label_names", f"names repeat: {names!r}")
    return names


def _splits(f: h5py.File, n: int, path: Path) -> dict[str, np.ndarray]:
    splits: dict[str, np.ndarray] = {}
    for split, key in SPLIT_KEYS.items():
        if key not in f:
            raise feature_error(path, key, "missing")
        dataset = f[key]
        if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 1 or dataset.dtype.kind not in "iu":
            raise feature_error(path, key, "expected a 1-D integer dataset of row indices")
        splits[split] = dataset[()].astype(np.int64)
    check_splits(splits, n, {split: (path, key) for split, key in SPLIT_KEYS.items()})
    return splits
