"""What a run reads of a dataset's splits and labels, and the checks of a file against it.

Shared by the two file checks (`feature_check` for ssnas-features/1, `mmimdb_file` for GMU's
MM-IMDB file): both know their splits' sizes and scan their labels here, so that a split too small
for the run, a labeled split without a single positive, or a degenerate class is worded the same
whichever file it is in. numpy only; labels are read a block of rows at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ssnas.data.feature_format import SPLITS, feature_error
from ssnas.data.row_scan import row_blocks

_LISTED = 8  # class names a warning spells out before it counts the rest


@dataclass(frozen=True)
class SplitNeeds:
    """What a run's stages read from a dataset: the rows each split must have at least, and which
    splits' labels they read."""

    min_rows: Mapping[str, int]  # "train"/"dev"/"test" -> minimum rows (0 or absent: not read)
    labeled: frozenset[str] = frozenset()  # splits whose labels the stages read

    def __post_init__(self) -> None:
        unknown = sorted((set(self.min_rows) | set(self.labeled)) - set(SPLITS))
        if unknown:
            raise ValueError(f"SplitNeeds: {unknown[0]!r} is not a split (train, dev, test)")


@dataclass(frozen=True)
class LabelCounts:
    """Per split: its rows, and how many of them are positive for each class."""

    rows: dict[str, int]
    positives: dict[str, np.ndarray]  # split -> (classes,) int64


def split_owner(n: int, rows: Mapping[str, np.ndarray | slice]) -> np.ndarray:
    """(n,) int8: the position in SPLITS of the split each row belongs to, -1 for rows in none."""
    owner = np.full(n, -1, dtype=np.int8)
    for s, split in enumerate(SPLITS):
        owner[rows[split]] = s
    return owner


def scan_labels(dataset: h5py.Dataset, owner: np.ndarray, path: Path, key: str) -> LabelCounts:
    """Refuse a value other than 0 and 1 (naming its row) and count positives per split and class."""
    if dataset.dtype.kind not in "biuf":
        raise feature_error(path, key, f"has dtype {dataset.dtype}, expected 0/1 numbers (multi-hot)")
    positives = {split: np.zeros(dataset.shape[1], dtype=np.int64) for split in SPLITS}
    for block in row_blocks(dataset.shape, dataset.dtype.itemsize + 4):
        _count_block(dataset[block], owner[block], block.start, positives, path, key)
    sizes = np.bincount(owner.astype(np.int64) + 1, minlength=len(SPLITS) + 1)[1:]
    return LabelCounts({split: int(size) for split, size in zip(SPLITS, sizes, strict=True)}, positives)


def _count_block(values: np.ndarray, owner: np.ndarray, start: int, positives: dict[str, np.ndarray],
                 path: Path, key: str) -> None:
    """One block of `scan_labels` (a function of its own: the block and its masks die with it)."""
    bad = (values != 0) & (values != 1)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise feature_error(path, key, f"values must be 0 or 1 (multi-hot); row {start + row} holds "
                                        f"{values[row, column].item()}")
    for s, split in enumerate(SPLITS):
        positives[split] += values[owner == s].sum(axis=0, dtype=np.int64)


def split_findings(path: Path, sizes: Mapping[str, int], keys: Mapping[str, str],
                   needs: SplitNeeds | None) -> list[str]:
    """Refuse a split with fewer rows than `needs` asks; warn of an empty train split.

    `keys[split]` is how the file names the split in an error (`/splits/train`, `train`).
    """
    for split in SPLITS:
        needed = needs.min_rows.get(split, 0) if needs is not None else 0
        if sizes[split] < needed:
            raise feature_error(path, keys[split], f"has {_rows(sizes[split])}; needs at least {needed} "
                                                   "for this run's stages")
    if sizes["train"] == 0:
        return [f"{path}: {keys['train']}: is empty; no stage can train on this file"]
    return []


def label_findings(path: Path, key: str, counts: LabelCounts, names: Sequence[str] | None,
                   needs: SplitNeeds | None) -> list[str]:
    """Refuse a split whose labels the run reads but that has no positive at all; warn of train
    columns that cannot be learned (no positive) or tell nothing apart (positive in every row)."""
    for split in SPLITS:
        if needs is not None and split in needs.labeled and not counts.positives[split].any():
            raise feature_error(path, key, f"no positive label in the {split} split; F1 would be 0")
    rows, positives = counts.rows["train"], counts.positives["train"]
    if rows == 0:
        return []
    warnings = []
    for columns, problem in ((np.flatnonzero(positives == 0), "no positive label in the train split"),
                             (np.flatnonzero(positives == rows), f"a positive label in every train row ({rows})")):
        if columns.size:
            verb = "has" if columns.size == 1 else "have"
            warnings.append(f"{path}: {key}: {_classes(columns, names)} {verb} {problem}")
    return warnings


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _classes(columns: np.ndarray, names: Sequence[str] | None) -> str:
    """`class 'Drama'`, `classes 0, 3`, or the first few and a count of the rest."""
    shown = [repr(names[c]) if names is not None else str(c) for c in columns[:_LISTED].tolist()]
    more = f" and {columns.size - _LISTED} more" if columns.size > _LISTED else ""
    return f"{'class' if columns.size == 1 else 'classes'} {', '.join(shown)}{more}"
