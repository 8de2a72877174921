"""Opening a features file: the one check every reader makes first (the file is there and is HDF5)."""

from __future__ import annotations

from pathlib import Path

import h5py

from ssnas.errors import DatasetError


def open_feature_file(path: Path) -> h5py.File:
    """Open a features file for reading; a missing file or one that is not HDF5 fails with one line."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    if not h5py.is_hdf5(path):
        raise DatasetError(f"{path}: not an HDF5 file")
    return h5py.File(path, "r")
