"""Scanning an array a block of rows at a time, so that checking a level larger than memory stays cheap.

The same loop serves numpy arrays (`convert`, the writer) and h5py datasets (`feature_check`,
`mmimdb_file`): both slice by rows, and an h5py slice reads only those rows from disk.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import h5py

BLOCK_BYTES = 64 << 20  # per block: the rows read plus the masks computed on them
_FLOAT16_EXPONENT = np.uint16(0x7C00)


def row_blocks(shape: tuple[int, ...], bytes_per_element: int) -> Iterator[slice]:
    """Consecutive row slices covering `shape[0]` rows, each about BLOCK_BYTES at `bytes_per_element`
    (the value and its masks); at least one row a block, however wide."""
    per_row = max(1, math.prod(shape[1:]) * bytes_per_element)
    step = max(1, BLOCK_BYTES // per_row)
    for start in range(0, shape[0], step):
        yield slice(start, min(start + step, shape[0]))


def first_non_finite_row(array: np.ndarray | h5py.Dataset) -> int | None:
    """The first row holding NaN, +inf or -inf, or None; float16 infinities included."""
    for block in row_blocks(array.shape, 2 * array.dtype.itemsize):  # the block, and a mask or exponents
        bad = _first_non_finite(array[block])
        if bad is not None:
            return block.start + bad
    return None


def _first_non_finite(values: np.ndarray) -> int | None:
    # A function of its own so that a block and its masks are freed before the next block is read.
    if values.dtype == np.float16:
        # numpy's isfinite widens each float16; NaN and inf are exactly the all-ones exponents, and
        # testing those bits is about 3x faster, which is most of a check's time on a float16 file.
        exponents = values.view(np.uint16) & _FLOAT16_EXPONENT
        if exponents.max(initial=0) != _FLOAT16_EXPONENT:
            return None
        finite = exponents != _FLOAT16_EXPONENT
    else:
        finite = np.isfinite(values)
        if finite.all():
            return None
    return int(np.argmin(finite.reshape(finite.shape[0], -1).all(axis=1)))
