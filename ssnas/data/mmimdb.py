"""MM-IMDB, from the HDF5 file GMU built and BM-NAS reads, to feature pyramids.

Accepted file layout (N movies, rows in split order):

- `features`: (N, D) float, the averaged word2vec plot features (D = 300 in GMU's file);
- `images`: (N, 3, H, W) posters, any H, W (GMU: 256 x 160). Either RGB in 0..255 (uint8 or any
  number type) or, as GMU's `make_dataset.py` stores them, BGR with the Caffe ImageNet means
  (103.939, 116.779, 123.68) subtracted (int32); `pixels` says which ("auto" picks "caffe_bgr" when
  the file is not uint8 and its first batch has a negative value, which RGB cannot have);
- `genres`: (N, 23) 0/1; its optional attribute `target_names` (JSON list, as GMU writes it) names
  the columns, else they are `GENRES`;
- `imdb_ids`: (N,) strings, optional (checked for length, not kept);
- split boundaries in the root attributes, either `train`, `dev`, `test` each a (start, stop) pair
  of row numbers (stop exclusive), or GMU's Fuel `split` attribute (a structured array with fields
  `split`, `source`, `start`, `stop`; the rows of source `genres` are used). Splits must not overlap.

The file is checked whole first (`mmimdb_file.check_mmimdb_file`, the torch-free check `ssnas run`
makes before a run exists); the posters, too large to scan up front, are checked batch by batch
as they are encoded.

Each image map is adaptive-max-pooled to `map_side` x `map_side` while encoding: at 256 x 160 the
relu4_1 map alone is 512 x 32 x 20 floats per movie (about 34 GB for the dataset), and BM-NAS pools
every map to sqrt(L) x sqrt(L) (L = 16: 4 x 4) before fusing anyway, so nothing it uses is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from ssnas.config.data import MMIMDBOptions, Pixels
from ssnas.data.encoders import TextMLPPyramid, VGG19Pyramid, encode_in_batches
from ssnas.data.feature_file import open_feature_file
from ssnas.data.mmimdb_file import GENRES, check_open_mmimdb_file
from ssnas.data.nodes import MMIMDB_PYRAMIDS
from ssnas.data.pyramids import FeatureSet
from ssnas.errors import DatasetError

__all__ = ["CAFFE_BGR_MEAN", "GENRES", "load_mmimdb"]

# The Caffe VGG means GMU subtracted, in its BGR channel order.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def load_mmimdb(
    path: str | Path,
    options: MMIMDBOptions = MMIMDBOptions(),
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> FeatureSet:
    """MM-IMDB as image (VGG19: relu4_1, relu4_4, relu5_3, pool5) and text (maxout MLP: 64, 128)
    pyramids with the 23 genre labels and the file's train / dev / test split.

    `options` says how to encode (weights, batch size, poster size, row limit: `MMIMDBOptions`);
    `device` is where the backbones run; `progress(done, total)` follows the image encoding, the
    slow part. Weights are local state_dict files, None = random.
    """
    path = Path(path)
    with open_feature_file(path) as f:
        header = check_open_mmimdb_file(f, path)
        rows, splits = _select_rows(header.ranges, options.limit)
        text = torch.from_numpy(f["features"][()][rows].astype(np.float32))
        labels = torch.from_numpy(f["genres"][()][rows].astype(np.float32))
        images = _ImageRows(f["images"], rows, options.pixels, options.image_size, path, options.batch_size)
        vgg = VGG19Pyramid(options.image_weights, map_side=options.map_side).to(device)
        image_levels = encode_in_batches(vgg, images, options.batch_size, progress)
    mlp = TextMLPPyramid(input_dim=text.shape[1], weights_path=options.text_weights).to(device)
    text_levels = encode_in_batches(mlp, text, options.batch_size)
    return FeatureSet(
        tuple(modality for modality, _ in MMIMDB_PYRAMIDS),
        [image_levels, text_levels],
        {split: torch.from_numpy(idx) for split, idx in splits.items()},
        labels=labels,
        label_names=header.label_names,
        source=str(path),
    )


def _select_rows(
    ranges: dict[str, tuple[int, int]], limit: int | None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """File rows to load (increasing, as h5py reads need) and each split's positions among them."""
    kept = {s: (a, b if limit is None else min(b, a + limit)) for s, (a, b) in ranges.items()}
    rows = np.concatenate([np.arange(a, b) for a, b in kept.values()]).astype(np.int64)
    order = np.argsort(rows, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(len(rows))
    splits, offset = {}, 0
    for split, (a, b) in kept.items():
        splits[split] = position[offset : offset + b - a]
        offset += b - a
    return rows[order], splits


class _ImageRows:
    """Selected rows of the `images` dataset, read a slice at a time as RGB in [0, 1]."""

    def __init__(
        self,
        dataset: h5py.Dataset,
        rows: np.ndarray,
        pixels: Pixels,
        image_size: tuple[int, int] | None,
        path: Path,
        probe: int,
    ) -> None:
        self.dataset, self.rows, self.image_size, self.path = dataset, rows, image_size, path
        if pixels == "auto":
            pixels = "rgb" if dataset.dtype == np.uint8 or not len(rows) else self._guess(probe)
        self.pixels = pixels

    def _guess(self, probe: int) -> Pixels:
        first = self.dataset[self.rows[0] : self.rows[0] + probe]
        return "caffe_bgr" if first.min() < 0 else "rgb"

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: slice) -> torch.Tensor:
        rows = self.rows[index]
        contiguous = rows[-1] - rows[0] + 1 == len(rows)
        raw = self.dataset[rows[0] : rows[-1] + 1] if contiguous else self.dataset[rows]
        x = torch.from_numpy(np.asarray(raw, dtype=np.float32))
        if not torch.isfinite(x).all():
            raise DatasetError(f"{self.path}: images: NaN or inf in rows {rows[0]}..{rows[-1]}")
        if self.pixels == "caffe_bgr":
            x = (x + torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1)).flip(1).clamp(0, 255)
        elif x.min() < 0 or x.max() > 255:
            raise DatasetError(
                f"{self.path}: images: values {x.min():.0f}..{x.max():.0f} in rows {rows[0]}..{rows[-1]} "
                "are not RGB 0..255 (pass pixels='caffe_bgr' for GMU's mean-subtracted BGR)"
            )
        x = x / 255.0
        if self.image_size is not None:
            x = F.interpolate(x, size=tuple(self.image_size), mode="bilinear", antialias=True, align_corners=False)
        return x
