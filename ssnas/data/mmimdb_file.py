"""The check of GMU's MM-IMDB HDF5 file, torch-free, so that `ssnas run` refuses a bad one before a run exists.

The layout is described in `mmimdb` (which encodes the file into pyramids and imports torch);
this module holds the rules alone: array shapes, genre values, label names, split boundaries,
finite plot features, and what a run needs of the splits (`split_needs`). `load_mmimdb` runs the
same check before it encodes, so the worker refuses exactly what preflight refuses. Genres and
features are scanned a block of rows at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import h5py
import numpy as np

from ssnas.data.feature_file import open_feature_file
from ssnas.data.feature_format import SPLITS
from ssnas.data.row_scan import first_non_finite_row
from ssnas.data.split_needs import SplitNeeds, label_findings, scan_labels, split_findings, split_owner
from ssnas.errors import DatasetError

# MM-IMDB's 23 genres in GMU's column order (most to least frequent).
GENRES = (
    "Drama", "Comedy", "Romance", "Thriller", "Crime", "Action", "Adventure", "Horror",
    "Documentary", "Mystery", "Sci-Fi", "Fantasy", "Family", "Biography", "War", "History",
    "Music", "Animation", "Musical", "Western", "Sport", "Short", "Film-Noir",
)  # fmt: skip


@dataclass(frozen=True)
class MMIMDBHeader:
    """What the check learned that the loader needs: N, the genre names and each split's row range."""

    rows: int
    label_names: tuple[str, ...]
    ranges: dict[str, tuple[int, int]]  # split -> (start, stop), stop excluded
    warnings: tuple[str, ...]


def check_mmimdb_file(path: str | Path, needs: SplitNeeds | None = None) -> list[str]:
    """Refuse (DatasetError) an MM-IMDB file a run would trip on; return warnings (one line each)
    for what is legal but degenerate."""
    path = Path(path)
    with open_feature_file(path) as f:
        return list(check_open_mmimdb_file(f, path, needs).warnings)


def check_open_mmimdb_file(f: h5py.File, path: Path, needs: SplitNeeds | None = None) -> MMIMDBHeader:
    """`check_mmimdb_file` on a file already open (the loader's), returning what it found."""
    n = _check_arrays(f, path)
    names = _label_names(f, path)
    ranges = _split_ranges(f, n, path)
    warnings = split_findings(path, {s: b - a for s, (a, b) in ranges.items()}, {s: s for s in SPLITS}, needs)
    bad = first_non_finite_row(f["features"])
    if bad is not None:
        raise DatasetError(f"{path}: features: contains NaN or inf (first at row {bad})")
    owner = split_owner(n, {split: slice(a, b) for split, (a, b) in ranges.items()})
    warnings += label_findings(path, "genres", scan_labels(f["genres"], owner, path, "genres"), names, needs)
    return MMIMDBHeader(n, names, ranges, tuple(warnings))


def _check_arrays(f: h5py.File, path: Path) -> int:
    """Check the shapes and types of features / images / genres / imdb_ids; return N."""
    for key in ("genres", "features", "images"):
        if key not in f or not isinstance(f[key], h5py.Dataset):
            raise DatasetError(f"{path}: {key}: missing dataset")
    genres, features, images = f["genres"], f["features"], f["images"]
    if genres.ndim != 2 or genres.shape[1] != len(GENRES):
        raise DatasetError(f"{path}: genres: shape {genres.shape}, expected (N, {len(GENRES)})")
    n = genres.shape[0]
    if n == 0:
        raise DatasetError(f"{path}: genres: has no rows")
    if features.ndim != 2 or features.shape[0] != n or features.dtype.kind != "f" or features.shape[1] == 0:
        raise DatasetError(f"{path}: features: shape {features.shape} {features.dtype}, expected float (N={n}, D)")
    if images.ndim != 4 or images.shape[:2] != (n, 3) or images.dtype.kind not in "uif" or 0 in images.shape[2:]:
        raise DatasetError(f"{path}: images: shape {images.shape} {images.dtype}, expected numbers (N={n}, 3, H, W)")
    if "imdb_ids" in f and f["imdb_ids"].shape != (n,):
        raise DatasetError(f"{path}: imdb_ids: shape {f['imdb_ids'].shape}, expected (N={n},)")
    return n


def _label_names(f: h5py.File, path: Path) -> tuple[str, ...]:
    raw = f["genres"].attrs.get("target_names")
    if raw is None:
        return GENRES
    try:
        names = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (TypeError, json.JSONDecodeError):
        names = None
    if not (isinstance(names, list) and len(names) == len(GENRES) and all(isinstance(x, str) for x in names)):
        raise DatasetError(f"{path}: genres.target_names: expected a JSON list of {len(GENRES)} names")
    return tuple(names)


def _split_ranges(f: h5py.File, n: int, path: Path) -> dict[str, tuple[int, int]]:
    """The (start, stop) row range of each split, from `train`/`dev`/`test` or Fuel's `split`."""
    if any(split in f.attrs for split in SPLITS):
        ranges = {split: _range_attr(f, split, n, path) for split in SPLITS}
    elif "split" in f.attrs:
        ranges = _fuel_ranges(f.attrs["split"], n, path)
    else:
        raise DatasetError(
            f"{path}: train: no split boundaries; expected root attributes train, dev, test, "
            "each (start, stop), or GMU's Fuel 'split' attribute"
        )
    for a, b in combinations(SPLITS, 2):
        (a0, a1), (b0, b1) = ranges[a], ranges[b]
        if max(a0, b0) < min(a1, b1):
            raise DatasetError(f"{path}: {b}: rows [{b0}, {b1}) overlap {a} rows [{a0}, {a1})")
    return ranges


def _range_attr(f: h5py.File, split: str, n: int, path: Path) -> tuple[int, int]:
    if split not in f.attrs:
        raise DatasetError(f"{path}: {split}: missing root attribute (start, stop)")
    value = np.asarray(f.attrs[split])
    if value.shape != (2,) or value.dtype.kind not in "iu":
        raise DatasetError(f"{path}: {split}: {value.tolist()!r} is not a (start, stop) pair of integers")
    return _check_range(split, int(value[0]), int(value[1]), n, path)


def _fuel_ranges(table: np.ndarray, n: int, path: Path) -> dict[str, tuple[int, int]]:
    names = table.dtype.names or ()
    if not {"split", "source", "start", "stop"} <= set(names):
        raise DatasetError(f"{path}: split: not a Fuel split array (fields {list(names)})")

    def text(value: bytes | str) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    ranges = {}
    for split in SPLITS:
        entries = [e for e in table if text(e["split"]) == split and ("available" not in names or e["available"])]
        if not entries:
            raise DatasetError(f"{path}: split: no entry for split {split!r}")
        entry = next((e for e in entries if text(e["source"]) == "genres"), entries[0])
        ranges[split] = _check_range(split, int(entry["start"]), int(entry["stop"]), n, path)
    return ranges


def _check_range(split: str, start: int, stop: int, n: int, path: Path) -> tuple[int, int]:
    if not 0 <= start <= stop <= n:
        raise DatasetError(f"{path}: {split}: ({start}, {stop}) is not a row range within 0..{n}")
    return start, stop
