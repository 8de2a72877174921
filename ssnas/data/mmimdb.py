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

Each image map is adaptive-max-pooled to `map_side` x `map_side` while encoding: at 256 x 160 the
relu4_1 map alone is 512 x 32 x 20 floats per movie (about 34 GB for the dataset), and BM-NAS pools
every map to sqrt(L) x sqrt(L) (L = 16: 4 x 4) before fusing anyway, so nothing it uses is lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from ssnas.config.data import MMIMDBOptions, Pixels
from ssnas.data.encoders import TextMLPPyramid, VGG19Pyramid, encode_in_batches
from ssnas.data.nodes import MMIMDB_PYRAMIDS
from ssnas.data.pyramids import SPLITS, FeatureSet
from ssnas.errors import DatasetError

# MM-IMDB's 23 genres in GMU's column order (most to least frequent).
GENRES = (
    "Drama", "Comedy", "Romance", "Thriller", "Crime", "Action", "Adventure", "Horror",
    "Documentary", "Mystery", "Sci-Fi", "Fantasy", "Family", "Biography", "War", "History",
    "Music", "Animation", "Musical", "Western", "Sport", "Short", "Film-Noir",
)  # fmt: skip

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
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    if not h5py.is_hdf5(path):
        raise DatasetError(f"{path}: not an HDF5 file")
    with h5py.File(path, "r") as f:
        n = _check_arrays(f, path)
        label_names = _label_names(f, path)
        rows, splits = _select_rows(_split_ranges(f, n, path), options.limit)
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
        label_names=label_names,
        source=str(path),
    )


def _check_arrays(f: h5py.File, path: Path) -> int:
    """Check features / images / genres / imdb_ids; return N."""
    for key in ("genres", "features", "images"):
        if key not in f or not isinstance(f[key], h5py.Dataset):
            raise DatasetError(f"{path}: {key}: missing dataset")
    genres, features, images = f["genres"], f["features"], f["images"]
    if genres.ndim != 2 or genres.shape[1] != len(GENRES):
        raise DatasetError(f"{path}: genres: shape {genres.shape}, expected (N, {len(GENRES)})")
    n = genres.shape[0]
    if features.ndim != 2 or features.shape[0] != n or features.dtype.kind != "f":
        raise DatasetError(f"{path}: features: shape {features.shape} {features.dtype}, expected float (N={n}, D)")
    if images.ndim != 4 or images.shape[:2] != (n, 3) or images.dtype.kind not in "uif":
        raise DatasetError(f"{path}: images: shape {images.shape} {images.dtype}, expected numbers (N={n}, 3, H, W)")
    if "imdb_ids" in f and f["imdb_ids"].shape != (n,):
        raise DatasetError(f"{path}: imdb_ids: shape {f['imdb_ids'].shape}, expected (N={n},)")
    if not np.isin(genres[()], (0, 1)).all():
        raise DatasetError(f"{path}: genres: values must be 0 or 1")
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
