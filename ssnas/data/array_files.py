"""Arrays from the files features and labels usually sit in: NPZ / NPY, CSV and Parquet.

`ssnas features from-arrays` names each input as `FILE[:KEY]`; this module turns one such name
into an array and remembers where it came from, so that the converter's errors can name the
user's file and key. numpy only; Parquet through pyarrow when it is installed (not a dependency).

KEY is, per kind of file:
- `.npz`: the name of one array (optional when the file holds exactly one); `.npy`: none;
- `.csv` and `.parquet`: the columns, as a comma-separated list of names or shell-style patterns
  (`img_*`), in that order; all columns when absent. A CSV's first row is a header when any of its
  cells is not a number; without a header the columns are named by position, `0`, `1`, ... A
  Parquet column of lists (an embedding per row) gives one channel per list element.
"""

from __future__ import annotations

import csv
import fnmatch
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssnas.data.feature_format import SPLITS
from ssnas.errors import DatasetError

NPZ_SUFFIXES = (".npz",)
NPY_SUFFIXES = (".npy",)
CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class LoadedArray:
    """An array with the file and key it was read from (what an error about it names)."""

    array: np.ndarray
    file: str
    key: str  # the NPZ key or column selection as the user wrote it; "" for the whole file
    columns: tuple[str, ...] | None = None  # the table's column names behind the array's columns, if it has any

    @property
    def origin(self) -> tuple[str, str]:
        """(file, key) as the converter's `origins` take it."""
        return (self.file, self.key)


def split_spec(spec: str) -> tuple[Path, str]:
    """`FILE[:KEY]` -> (file, key); a name that is an existing file is taken whole (`C:\\x.npz`)."""
    if Path(spec).is_file() or ":" not in spec:
        return Path(spec), ""
    file, _, key = spec.rpartition(":")
    return Path(file), key


def load_array(spec: str, labels: bool = False) -> LoadedArray:
    """Read the array `spec` (`FILE[:KEY]`) names.

    Features are numbers, and table columns come back as an (N, columns) matrix. With `labels`,
    one table column comes back 1-D and may hold class names (strings); several columns are a
    multi-hot matrix.
    """
    file, key = split_spec(spec)
    if not file.is_file():
        raise DatasetError(f"{file}: file not found")
    suffix = file.suffix.lower()
    if suffix in NPZ_SUFFIXES:
        return _from_npz(file, key)
    if suffix in NPY_SUFFIXES:
        if key:
            raise DatasetError(f"{file}: {key}: a .npy file holds one array; drop ':{key}'")
        return LoadedArray(_load_npy(file), str(file), "")
    if suffix in CSV_SUFFIXES:
        header, cells, named = _read_csv(file)
        return _from_table(file, key, header, lambda names: [cells[:, header.index(c)] for c in names], labels, named)
    if suffix in PARQUET_SUFFIXES:
        return _from_parquet(file, key, labels)
    raise DatasetError(f"{file}: unknown kind of file {suffix or '(no suffix)'!r}; "
                       "expected .npz, .npy, .csv or .parquet")


def load_names(path: str | Path) -> list[str]:
    """Class names from a text file, one per line (blank lines skipped), or a `.json` list."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            names = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: not valid JSON ({exc.msg})") from None
        if not isinstance(names, list):
            raise DatasetError(f"{path}: expected a JSON list of names, got {type(names).__name__}")
        return names
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_splits(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, str]]]:
    """train / dev / test row indices from an NPZ, with the (file, key) of each for errors."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    if path.suffix.lower() not in NPZ_SUFFIXES:
        raise DatasetError(f"{path}: splits come in an .npz with arrays train, dev and test")
    with _open_npz(path) as npz:
        unknown = [name for name in npz.files if name not in SPLITS]
        if unknown:
            raise DatasetError(f"{path}: {unknown[0]}: unknown split; expected train, dev and test")
        missing = [name for name in SPLITS if name not in npz.files]
        if missing:
            raise DatasetError(f"{path}: {missing[0]}: missing (the file needs train, dev and test)")
        splits = {name: npz[name] for name in SPLITS}
    return splits, {f"splits[{name!r}]": (str(path), name) for name in SPLITS}


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({exc})") from None


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable .npy file ({exc})") from None


def _from_npz(file: Path, key: str) -> LoadedArray:
    with _open_npz(file) as npz:
        names = list(npz.files)
        if not key:
            if len(names) != 1:
                raise DatasetError(f"{file}: holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                                   f"name one as {file}:KEY")
            key = names[0]
        elif key not in names:
            raise DatasetError(f"{file}: {key}: no such array; the file holds {', '.join(names) or 'none'}")
        try:
            array = npz[key]
        except ValueError as exc:  # an object array, which would need pickle
            raise DatasetError(f"{file}: {key}: cannot be read without pickle ({exc})") from None
    return LoadedArray(array, str(file), key)


def _select(file: Path, key: str, available: Sequence[str]) -> list[str]:
    """The columns a `KEY` names (names or patterns, in the order given); all when `key` is empty."""
    if not key:
        return list(available)
    chosen: list[str] = []
    for part in (p.strip() for p in key.split(",")):
        if any(ch in part for ch in "*?["):
            matches = [c for c in available if fnmatch.fnmatchcase(c, part)]
        else:
            matches = [part] if part in available else []
        if not matches:
            shown = ", ".join(list(available)[:8]) + (", ..." if len(available) > 8 else "")
            raise DatasetError(f"{file}: {key}: no column matches {part!r} (columns: {shown})")
        chosen += [c for c in matches if c not in chosen]
    return chosen


def _from_table(
    file: Path,
    key: str,
    available: Sequence[str],
    columns_of: Callable[[list[str]], list[np.ndarray]],
    labels: bool,
    named: bool = True,
) -> LoadedArray:
    """Columns of a CSV or Parquet table as one array (see `load_array` for the shapes); `named`:
    the table has real column names (not positions), which can name classes."""
    names = _select(file, key, available)
    columns = columns_of(names)
    where = f"{file}: {key}" if key else str(file)
    kept = tuple(names) if named else None
    if labels and len(names) == 1 and columns[0].ndim == 1:
        return LoadedArray(_label_column(columns[0]), str(file), key, kept)
    parts = []
    for name, column in zip(names, columns, strict=True):
        if column.ndim == 1:
            column = column[:, None]
        parts.append(_numbers(column, where if key == name else f"{where}: column {name!r}"))
    return LoadedArray(np.concatenate(parts, axis=1), str(file), key, kept)


def _numbers(column: np.ndarray, where: str) -> np.ndarray:
    """A (N, d) column as numbers; the first cell that is not one is named with its row."""
    if column.dtype.kind in "biuf":
        return column
    try:
        return column.astype(np.float64)
    except (TypeError, ValueError):
        cells = column.reshape(-1).tolist()
        bad = next((i for i, value in enumerate(cells) if not _is_number(value)), 0)
        raise DatasetError(f"{where}: row {bad // column.shape[1]}: {cells[bad]!r} is not a number") from None


def _label_column(column: np.ndarray) -> np.ndarray:
    """A class column: integers when every value is one, else the values as strings."""
    if column.dtype.kind in "biu":
        return column
    try:
        numbers = column.astype(np.float64)
    except (TypeError, ValueError):
        return column.astype(str)
    if np.isfinite(numbers).all() and (numbers == np.round(numbers)).all():
        return numbers.astype(np.int64)
    return numbers


def _read_csv(file: Path) -> tuple[list[str], np.ndarray, bool]:
    """(column names, cells as strings, whether there was a header); the first row is a header when a
    cell of it is not a number."""
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{file}: not a readable CSV file ({exc})") from None
    if not rows:
        raise DatasetError(f"{file}: no rows")
    header = [str(k) for k in range(len(rows[0]))]
    named = not all(_is_number(cell) for cell in rows[0])
    if named:
        header, rows = [cell.strip() for cell in rows[0]], rows[1:]
        if len(set(header)) != len(header):
            raise DatasetError(f"{file}: header: a column name appears more than once")
    if not rows:
        raise DatasetError(f"{file}: a header but no rows")
    for line, row in enumerate(rows):
        if len(row) != len(header):
            raise DatasetError(f"{file}: row {line}: has {len(row)} cells, expected {len(header)}")
    return header, np.array([[cell.strip() for cell in row] for row in rows], dtype=str), named


def _is_number(cell: object) -> bool:
    try:
        float(cell)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _from_parquet(file: Path, key: str, labels: bool) -> LoadedArray:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError(f"{file}: reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        available = pq.read_schema(file).names
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise DatasetError(f"{file}: not a readable Parquet file ({exc})") from None

    def columns_of(names: list[str]) -> list[np.ndarray]:
        table = pq.read_table(file, columns=names)
        return [_parquet_column(file, name, table.column(name)) for name in names]

    return _from_table(file, key, available, columns_of, labels)


def _parquet_column(file: Path, name: str, column) -> np.ndarray:  # column: pyarrow.ChunkedArray
    """A Parquet column as numpy: scalars 1-D, a list per row (an embedding) 2-D."""
    if column.null_count:
        raise DatasetError(f"{file}: column {name!r}: {column.null_count} missing values")
    values = column.to_numpy()
    if values.dtype.kind == "O" and len(values) and isinstance(values[0], np.ndarray):
        widths = {len(v) for v in values}
        if len(widths) != 1:
            raise DatasetError(f"{file}: column {name!r}: lists of different lengths {sorted(widths)[:4]}")
        return np.stack(values)
    if values.dtype.kind == "O":
        return values.astype(str)
    return values
