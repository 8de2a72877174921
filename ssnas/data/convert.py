"""Per-view numpy arrays -> one `ssnas-features/1` file: the easy way to bring real data in.

Everything a run would trip over later (NaN, float16 overflow, row counts that disagree, labels
that are not classes, splits that overlap) is refused here, as one `DatasetError` line naming the
input and the field, before anything is written. numpy and h5py only: `ssnas features from-arrays`
must start without torch (STYLE.md).

Errors name `<file>: <key>` of an input when the caller says where it came from (`origins`, which
the CLI fills in), else `<output>: <argument>`, e.g. `out.h5: views['text'][1]: contains NaN or
inf (first at row 7)`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ssnas.data.feature_format import DTYPES, SPLITS, check_splits, overflows, write_feature_file
from ssnas.data.row_scan import first_non_finite_row
from ssnas.errors import DatasetError

MODALITY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def arrays_to_features(
    views: Mapping[str, Sequence[np.ndarray]],
    output: str | Path,
    labels: np.ndarray | None = None,
    label_names: Sequence[str] | None = None,
    splits: Mapping[str, np.ndarray] | None = None,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    source: str = "",
    dtype: str = "float32",
    *,
    origins: Mapping[str, tuple[str, str]] | None = None,
) -> Path:
    """Check per-view arrays, labels and splits, and write them as an `ssnas-features/1` file.

    `views` maps each modality name to its levels in increasing depth, each (N, channels),
    (N, channels, positions) or (N, channels, height, width). `labels` is (N,) class ids or
    strings (single-label) or (N, K) multi-hot 0/1. `label_names` default to the sorted class
    values (single-label) or `class_0`, ... (multi-hot). Without `splits` ({"train", "dev",
    "test"} -> row indices) the rows are split by `fractions` with `seed`, stratified by class
    when each row has exactly one class. `origins` maps an argument as errors name it
    (`views['image'][0]`, `labels`, `label_names`, `splits['dev']`) to the (file, key) it was
    read from, so that errors point at the user's file. The file is written atomically.
    """
    output = Path(output)
    fields = _Fields(output, origins or {})
    if dtype not in DTYPES:
        raise fields.error("dtype", f"{dtype!r} is not 'float16' or 'float32'")
    if not output.parent.is_dir():
        raise DatasetError(f"{output}: folder {output.parent} does not exist")
    modalities, levels = _checked_views(views, dtype, fields)
    n = levels[0][0].shape[0]
    matrix, names, classes = None, None, None
    if labels is not None:
        first_level = f"views[{modalities[0]!r}][0]"  # the reference for row counts
        matrix, names, classes = _checked_labels(labels, label_names, n, first_level, fields)
    elif label_names is not None:
        raise fields.error("label_names", "given without labels")
    if splits is not None:
        index = _checked_splits(splits, n, fields)
    else:
        index = _seeded_splits(n, _checked_fractions(fractions, fields), seed, classes, names, fields)
    return write_feature_file(output, modalities, levels, index, matrix, names, source, dtype)


class _Fields:
    """How errors name an argument: the input file and key it came from, or the output and the argument."""

    def __init__(self, output: Path, origins: Mapping[str, tuple[str, str]]) -> None:
        self.output = output
        self.origins = origins

    def where(self, field: str) -> tuple[str, str]:
        return self.origins.get(field, (str(self.output), field))

    def name(self, field: str) -> str:
        return ": ".join(part for part in self.where(field) if part)

    def other(self, field: str, beside: str) -> str:
        """`field` named within an error about `beside`: its key alone when both are in one file."""
        file, key = self.where(field)
        return key if file == self.where(beside)[0] else self.name(field)

    def error(self, field: str, problem: str) -> DatasetError:
        return DatasetError(f"{self.name(field)}: {problem}")


def _checked_views(
    views: Mapping[str, Sequence[np.ndarray]], dtype: str, fields: _Fields
) -> tuple[list[str], list[list[np.ndarray]]]:
    if not isinstance(views, Mapping) or len(views) < 2:
        got = list(views) if isinstance(views, Mapping) else type(views).__name__
        raise fields.error("views", f"need at least two modalities, got {got}")
    modalities, levels = [], []
    reference: tuple[str, int] | None = None  # (field, rows) of the first level, for row-count errors
    for name, pyramid in views.items():
        if not isinstance(name, str) or not MODALITY_NAME.fullmatch(name):
            raise fields.error("views", f"modality name {name!r} must start with a letter and hold only letters, "
                                        "digits, '_' and '-'")
        if isinstance(pyramid, np.ndarray) or not isinstance(pyramid, Sequence) or not pyramid:
            what = "one array" if isinstance(pyramid, np.ndarray) else repr(pyramid)[:40]
            raise fields.error(f"views[{name!r}]", f"expected a non-empty list of levels (shallow to deep), got {what}")
        checked = []
        for k, level in enumerate(pyramid):
            field = f"views[{name!r}][{k}]"
            array = _checked_level(level, dtype, field, fields)
            if reference is None:
                reference = (field, array.shape[0])
            elif array.shape[0] != reference[1]:
                raise fields.error(field, f"has {array.shape[0]} rows, but {fields.other(reference[0], field)} has "
                                          f"{reference[1]}")
            checked.append(array)
        modalities.append(name)
        levels.append(checked)
    return modalities, levels


def _checked_level(level: np.ndarray, dtype: str, field: str, fields: _Fields) -> np.ndarray:
    array = np.asarray(level)
    if array.dtype.kind not in "iuf":
        raise fields.error(field, f"has dtype {array.dtype}, expected numbers")
    if array.ndim not in (2, 3, 4):
        raise fields.error(field, f"has shape {array.shape}, expected (N, channels), (N, channels, positions) "
                                  "or (N, channels, height, width)")
    if array.shape[0] == 0:
        raise fields.error(field, "has no rows")
    if 0 in array.shape[1:]:
        raise fields.error(field, f"has shape {array.shape}: a level needs at least one channel (and position)")
    if array.dtype.kind == "f":
        bad = first_non_finite_row(array)
        if bad is not None:
            raise fields.error(field, f"contains NaN or inf (first at row {bad})")
    if overflows(array, dtype):
        limit = f"{np.finfo(dtype).max:.5g}"
        hint = "; use dtype float32" if dtype == "float16" else "; rescale them"
        raise fields.error(field, f"values exceed the {dtype} range (±{limit}){hint}")
    return array


def _checked_labels(
    labels: np.ndarray, label_names: Sequence[str] | None, n: int, first_level: str, fields: _Fields
) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """(multi-hot matrix, names, class per row or None): the class per row exists when every row has
    exactly one class, and is what a seeded split stratifies by."""
    array = np.asarray(labels)
    if array.ndim not in (1, 2):
        raise fields.error("labels", f"has shape {array.shape}, expected (N,) classes or (N, classes) multi-hot")
    if array.shape[0] != n:
        raise fields.error("labels", f"has {array.shape[0]} rows, but {fields.other(first_level, 'labels')} has {n}")
    names = _checked_names(label_names, "label_names", fields) if label_names is not None else None
    classes: np.ndarray | None
    if array.ndim == 1:
        classes, names = _class_ids(array, names, fields)
        matrix = np.zeros((n, len(names)), dtype=np.uint8)
        matrix[np.arange(n), classes] = 1
    else:
        matrix = _multi_hot(array, fields)
        if names is None:
            names = [f"class_{k}" for k in range(matrix.shape[1])]
        elif len(names) != matrix.shape[1]:
            raise fields.error("label_names", f"has {len(names)} names, but labels have {matrix.shape[1]} columns")
        classes = matrix.argmax(axis=1) if (matrix.sum(axis=1) == 1).all() else None
    empty = np.flatnonzero(matrix.sum(axis=0) == 0)
    if empty.size:
        # Refused, not warned: a class with no rows cannot be learned or scored, and is nearly always
        # a wrong column, a wrong label_names entry or a filtered-away class.
        raise fields.error("labels", f"class {names[empty[0]]!r} has no rows; drop it from the labels and label names")
    return matrix, names, classes


def _checked_names(label_names: Sequence[str], field: str, fields: _Fields) -> list[str]:
    """Class names as the file keeps them (a JSON list the reader accepts): distinct, non-empty, no '/'."""
    if isinstance(label_names, str) or not isinstance(label_names, Sequence):
        raise fields.error(field, f"expected a list of names, got {type(label_names).__name__}")
    names = list(label_names)
    for name in names:
        if not isinstance(name, str) or not name.strip() or "/" in name:
            raise fields.error(field, f"{name!r} is not a class name (a non-empty string without '/')")
    if len(set(names)) != len(names):
        repeated = next(name for name in names if names.count(name) > 1)
        raise fields.error(field, f"{repeated!r} appears more than once")
    return names


def _class_ids(array: np.ndarray, names: list[str] | None, fields: _Fields) -> tuple[np.ndarray, list[str]]:
    """Single-label values -> (column per row, names). Integer ids index `names` when given;
    strings must be among `names`; without names the sorted distinct values are the classes."""
    if array.dtype.kind == "O" and not all(isinstance(v, str) for v in array.tolist()):
        raise fields.error("labels", "an object array of labels must hold strings (class names)")
    if array.dtype.kind in "OUS":
        values = array.astype(str)
        if names is None:
            names = _checked_names(sorted(set(values.tolist())), "labels", fields)
        position = {name: k for k, name in enumerate(names)}
        unknown = [v for v in values.tolist() if v not in position]
        if unknown:
            raise fields.error("labels", f"class {unknown[0]!r} is not in label_names")
        return np.array([position[v] for v in values.tolist()], dtype=np.int64), names
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or (array != np.round(array)).any():
            raise fields.error("labels", "a 1-D label column must hold integer class ids or strings")
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise fields.error("labels", f"has dtype {array.dtype}; expected class ids, class names or multi-hot 0/1")
    if names is not None:
        bad = array[(array < 0) | (array >= len(names))]
        if bad.size:
            raise fields.error("labels", f"class id {bad[0]} has no name (label_names holds {len(names)}: "
                                         f"ids 0..{len(names) - 1})")
        return array.astype(np.int64), names
    values, columns = np.unique(array, return_inverse=True)
    return columns.astype(np.int64), [str(v) for v in values.tolist()]


def _multi_hot(array: np.ndarray, fields: _Fields) -> np.ndarray:
    if array.shape[1] == 0:
        raise fields.error("labels", "has no columns")
    if array.dtype.kind not in "biuf" or not np.isin(array, (0, 1)).all():
        raise fields.error("labels", "a 2-D label matrix must be multi-hot: every value 0 or 1")
    return array.astype(np.uint8)


def _checked_splits(splits: Mapping[str, np.ndarray], n: int, fields: _Fields) -> dict[str, np.ndarray]:
    if not isinstance(splits, Mapping):
        raise fields.error("splits", "expected a mapping of train, dev, test to row indices, "
                                     f"got {type(splits).__name__}")
    unknown = [name for name in splits if name not in SPLITS]
    if unknown:
        raise fields.error("splits", f"unknown split {unknown[0]!r}; expected train, dev and test")
    index = {}
    for split in SPLITS:
        field = f"splits[{split!r}]"
        if split not in splits:
            raise fields.error(field, "missing")
        idx = np.asarray(splits[split])
        if idx.dtype.kind == "b":
            raise fields.error(field, "is a boolean mask; give row indices (np.flatnonzero(mask))")
        if idx.ndim != 1 or (idx.dtype.kind not in "iu" and idx.size):
            raise fields.error(field, f"expected a 1-D array of integer row indices, got {idx.dtype} {idx.shape}")
        index[split] = idx.astype(np.int64)
    check_splits(index, n, {split: fields.where(f"splits[{split!r}]") for split in SPLITS})
    if index["train"].size == 0:
        raise fields.error("splits['train']", "is empty")
    return index


def _checked_fractions(fractions: Sequence[float], fields: _Fields) -> tuple[float, float, float]:
    try:
        train, dev, test = (float(f) for f in fractions)
    except (TypeError, ValueError):
        raise fields.error("fractions", f"expected three numbers (train, dev, test), got {fractions!r}") from None
    values = (train, dev, test)
    if not all(math.isfinite(v) and v >= 0 for v in values) or abs(sum(values) - 1) > 1e-6 or train <= 0:
        raise fields.error("fractions", f"{values} must be three non-negative numbers summing to 1, train above 0")
    total = sum(values)  # exactly 1 after this, so that the row counts always add up to N
    return (train / total, dev / total, test / total)


def _seeded_splits(
    n: int,
    fractions: tuple[float, float, float],
    seed: int,
    classes: np.ndarray | None,
    names: list[str] | None,
    fields: _Fields,
) -> dict[str, np.ndarray]:
    """Disjoint train/dev/test rows covering all N, fixed by `seed`; per class when `classes` is given,
    so that every split sees every class in proportion."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if classes is None else [np.flatnonzero(classes == c) for c in range(len(names or ()))]
    if classes is not None:
        smallest = min(f for f in fractions if f > 0)
        needed = math.ceil(1 / smallest - 1e-9)
        for c, rows in enumerate(groups):
            if 0 < rows.size < needed:
                assert names is not None  # groups are per named class
                rows_text = f"{rows.size} row{'s' * (rows.size > 1)}"
                raise fields.error("labels", f"class {names[c]!r} has {rows_text}; a stratified split "
                                             f"{', '.join(f'{f:g}' for f in fractions)} needs at least {needed} "
                                             "per class (give the splits, or merge rare classes)")
    parts: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
    for rows, counts in zip(groups, _allocate_by_group([rows.size for rows in groups], fractions), strict=True):
        order = rng.permutation(rows)
        for split, chunk in zip(SPLITS, np.split(order, np.cumsum(counts)[:-1]), strict=True):
            parts[split].append(chunk)
    return {split: np.sort(np.concatenate(parts[split])).astype(np.int64) for split in SPLITS}


def _allocate(m: int, fractions: tuple[float, float, float]) -> list[int]:
    """Split m rows by `fractions`: floors first, the rest to the largest remainders (ties: split order)."""
    raw = [m * f for f in fractions]
    counts = [math.floor(r + 1e-9) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in by_remainder[: m - sum(counts)]:
        counts[i] += 1
    return counts


def _allocate_by_group(sizes: list[int], fractions: tuple[float, float, float]) -> list[list[int]]:
    """Rows per (group, split): each group split by the fractions, rounded so that the split totals
    are still those of all rows split at once (per-group rounding alone would drift)."""
    totals = _allocate(sum(sizes), fractions)
    raw = [[m * f for f in fractions] for m in sizes]
    counts = [[math.floor(r + 1e-9) for r in row] for row in raw]
    group_left = [m - sum(row) for m, row in zip(sizes, counts, strict=True)]
    split_left = [t - sum(row[s] for row in counts) for s, t in enumerate(totals)]
    cells = sorted(((g, s) for g in range(len(sizes)) for s in range(len(fractions))),
                   key=lambda gs: (-(raw[gs[0]][gs[1]] - counts[gs[0]][gs[1]]), gs[1], gs[0]))
    while any(group_left):  # both sides hold the same number of rows, so every pass places some
        for g, s in cells:
            if group_left[g] and split_left[s]:
                counts[g][s] += 1
                group_left[g] -= 1
                split_left[s] -= 1
    return counts
