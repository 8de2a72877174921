import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ssnas.config.data import MMIMDBOptions
from ssnas.data.encoders import TextMLPPyramid, VGG19Pyramid
from ssnas.data.feature_check import SplitNeeds
from ssnas.data.features import read_features, write_features
from ssnas.data.mmimdb import CAFFE_BGR_MEAN, GENRES, load_mmimdb
from ssnas.data.mmimdb_file import check_mmimdb_file
from ssnas.errors import DatasetError

N, H, W = 12, 64, 40
RANGES = {"train": (0, 8), "dev": (8, 10), "test": (10, 12)}


def make_mmimdb(path: Path, images: np.ndarray | None = None, splits: str = "attrs") -> Path:
    """A tiny file in GMU's layout: rows in split order, boundaries in the root attributes."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["features"] = rng.normal(size=(N, 300)).astype(np.float32)
        f["images"] = rng.integers(0, 256, size=(N, 3, H, W), dtype=np.uint8) if images is None else images
        f["genres"] = (rng.random((N, 23)) > 0.7).astype(np.int32)
        f["imdb_ids"] = np.array([f"{i:07d}" for i in range(N)], dtype="S7")
        if splits == "attrs":
            for split, bounds in RANGES.items():
                f.attrs[split] = np.array(bounds, dtype=np.int64)
        elif splits == "fuel":
            f.attrs["split"] = fuel_split_array()
    return path


def fuel_split_array() -> np.ndarray:
    """What Fuel's H5PYDataset.create_split_array writes for GMU (the indices field left out)."""
    sources = ("features", "genres", "images")
    table = np.empty(
        len(RANGES) * len(sources),
        dtype=[("split", "S5"), ("source", "S8"), ("start", "i8"), ("stop", "i8"), ("available", "?")],
    )
    for i, (split, source) in enumerate((s, src) for s in RANGES for src in sources):
        table[i] = (split.encode(), source.encode(), *RANGES[split], True)
    return table


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Random backbone weights saved once, so that several loads see the same encoders."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save(VGG19Pyramid(None).state_dict(), folder / "vgg19.pth")
    torch.save(TextMLPPyramid().state_dict(), folder / "text.pth")
    return folder / "vgg19.pth", folder / "text.pth"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, weights: tuple[Path, Path]):
    path = make_mmimdb(tmp_path_factory.mktemp("mmimdb") / "mmimdb.h5")
    return path, load_mmimdb(path, MMIMDBOptions(image_weights=weights[0], text_weights=weights[1], batch_size=5))


def test_shapes_labels_and_splits(loaded) -> None:
    path, features = loaded
    assert features.modalities == ("image", "text")
    assert [tuple(level.shape) for level in features.levels[0]] == [(N, 512, 4, 4)] * 4
    assert [tuple(level.shape) for level in features.levels[1]] == [(N, 64), (N, 128)]
    assert features.label_names == GENRES and len(GENRES) == 23
    with h5py.File(path) as f:
        assert torch.equal(features.labels, torch.from_numpy(f["genres"][()]).float())
    for split, (start, stop) in RANGES.items():
        assert features.splits[split].tolist() == list(range(start, stop))
    assert features.source == str(path)


def test_cache_round_trip(loaded, tmp_path: Path) -> None:
    _, features = loaded
    back = read_features(write_features(features, tmp_path / "cache.h5", dtype="float32"))
    assert back.modalities == features.modalities and back.label_names == features.label_names
    for pa, pb in zip(features.levels, back.levels, strict=True):
        for a, b in zip(pa, pb, strict=True):
            assert torch.equal(a, b)
    assert torch.equal(back.labels, features.labels)
    assert all(torch.equal(back.splits[s], features.splits[s]) for s in RANGES)


def test_fuel_split_attribute_and_target_names(tmp_path: Path, weights) -> None:
    path = make_mmimdb(tmp_path / "m.h5", splits="fuel")
    names = [f"g{i}" for i in range(23)]
    with h5py.File(path, "r+") as f:
        f["genres"].attrs["target_names"] = json.dumps(names)
    features = load_mmimdb(path, MMIMDBOptions(image_weights=weights[0], limit=1))
    assert {s: idx.tolist() for s, idx in features.splits.items()} == {"train": [0], "dev": [1], "test": [2]}
    assert features.num_samples == 3 and features.label_names == tuple(names)


def test_limit_keeps_the_first_rows_of_each_split(tmp_path: Path, weights) -> None:
    path = make_mmimdb(tmp_path / "m.h5")
    full = load_mmimdb(path, MMIMDBOptions(image_weights=weights[0], text_weights=weights[1]))
    part = load_mmimdb(path, MMIMDBOptions(image_weights=weights[0], text_weights=weights[1], limit=2,
                                           image_size=(32, 32)))
    assert {s: idx.tolist() for s, idx in part.splits.items()} == {"train": [0, 1], "dev": [2, 3], "test": [4, 5]}
    rows = [0, 1, 8, 9, 10, 11]
    torch.testing.assert_close(part.levels[1][1], full.levels[1][1][rows])
    assert torch.equal(part.labels, full.labels[rows])


def test_gmu_caffe_bgr_images_give_the_same_features(tmp_path: Path, weights) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, size=(N, 3, H, W), dtype=np.uint8)
    caffe = rgb[:, ::-1].astype(np.float32) - np.array(CAFFE_BGR_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    a = load_mmimdb(make_mmimdb(tmp_path / "rgb.h5", images=rgb), MMIMDBOptions(image_weights=weights[0]))
    b = load_mmimdb(make_mmimdb(tmp_path / "caffe.h5", images=caffe), MMIMDBOptions(image_weights=weights[0]))
    for x, y in zip(a.levels[0], b.levels[0], strict=True):
        torch.testing.assert_close(x, y, atol=1e-3, rtol=1e-4)


def test_rgb_out_of_range_is_an_error(tmp_path: Path) -> None:
    path = make_mmimdb(tmp_path / "m.h5", images=np.full((N, 3, H, W), 300.0, dtype=np.float32))
    with pytest.raises(DatasetError, match=r"images: values 300\.\.300 in rows 0\.\.11 are not RGB 0\.\.255"):
        load_mmimdb(path, MMIMDBOptions(pixels="rgb", batch_size=N))


def _rewrite(path: Path, mutate) -> Path:
    with h5py.File(path, "r+") as f:
        mutate(f)
    return path


def _replace(f: h5py.File, key: str, data: np.ndarray) -> None:
    del f[key]
    f[key] = data


def _nan_at(key: str, index: tuple[int, ...]):
    def mutate(f: h5py.File) -> None:
        data = f[key][()]
        data[index] = np.nan
        _replace(f, key, data)
    return mutate


MALFORMED = {
    "missing genres": (lambda f: f.__delitem__("genres"), "genres: missing dataset"),
    "genres shape": (
        lambda f: _replace(f, "genres", np.zeros((10, 22), np.int32)),
        "genres: shape (10, 22), expected (N, 23)",
    ),
    "genres values": (lambda f: _replace(f, "genres", np.full((N, 23), 3, np.int32)), "genres: values must be 0 or 1"),
    "features rows": (
        lambda f: _replace(f, "features", np.zeros((9, 300), np.float32)),
        "features: shape (9, 300) float32, expected float (N=12, D)",
    ),
    "images channels": (
        lambda f: _replace(f, "images", np.zeros((N, 1, H, W), np.uint8)),
        "images: shape (12, 1, 64, 40) uint8, expected numbers (N=12, 3, H, W)",
    ),
    "imdb_ids rows": (lambda f: _replace(f, "imdb_ids", np.zeros(3, "S7")), "imdb_ids: shape (3,), expected (N=12,)"),
    "no split attributes": (
        lambda f: [f.attrs.__delitem__(s) for s in RANGES],
        "train: no split boundaries; expected root attributes train, dev, test",
    ),
    "one split missing": (lambda f: f.attrs.__delitem__("dev"), "dev: missing root attribute (start, stop)"),
    "split not a pair": (lambda f: f.attrs.__setitem__("test", np.array([10, 11, 12])), "test: [10, 11, 12] is not"),
    "split out of range": (
        lambda f: f.attrs.__setitem__("test", np.array([10, 13])),
        "test: (10, 13) is not a row range within 0..12",
    ),
    "overlapping splits": (
        lambda f: f.attrs.__setitem__("dev", np.array([6, 10])),
        "dev: rows [6, 10) overlap train rows [0, 8)",
    ),
    "bad target names": (
        lambda f: f["genres"].attrs.__setitem__("target_names", '["Drama"]'),
        "genres.target_names: expected a JSON list of 23 names",
    ),
    "NaN plot features": (_nan_at("features", (3, 7)), "features: contains NaN or inf (first at row 3)"),
    "no rows": (
        lambda f: [_replace(f, key, np.zeros((0, *f[key].shape[1:]), f[key].dtype)) for key in ("genres", "features")],
        "genres: has no rows",
    ),
    "features without columns": (
        lambda f: _replace(f, "features", np.zeros((N, 0), np.float32)),
        "features: shape (12, 0) float32, expected float (N=12, D)",
    ),
    "empty posters": (
        lambda f: _replace(f, "images", np.zeros((N, 3, 0, W), np.uint8)),
        "images: shape (12, 3, 0, 40) uint8, expected numbers (N=12, 3, H, W)",
    ),
}


@pytest.mark.parametrize("check", [load_mmimdb, check_mmimdb_file], ids=["load", "check"])
@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_file_names_path_and_key(tmp_path: Path, case: str, check) -> None:
    """The loader (worker) and the torch-free check (preflight) refuse the same files, in the same words."""
    mutate, message = MALFORMED[case]
    path = _rewrite(make_mmimdb(tmp_path / "mmimdb.h5"), mutate)
    with pytest.raises(DatasetError) as info:
        check(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_check_against_what_the_run_needs(tmp_path: Path, monkeypatch) -> None:
    from ssnas.data import row_scan

    path = make_mmimdb(tmp_path / "m.h5")
    needs = SplitNeeds({"train": 8, "dev": 2, "test": 2}, frozenset({"train", "dev", "test"}))
    monkeypatch.setattr(row_scan, "BLOCK_BYTES", 500)  # genres and features a few rows at a time
    assert check_mmimdb_file(path, needs) == check_mmimdb_file(path)
    with pytest.raises(DatasetError, match=rf"^{path}: train: has 8 rows; needs at least 9 for this run's stages$"):
        check_mmimdb_file(path, SplitNeeds({"train": 9}))
    with h5py.File(path, "r+") as f:
        genres = f["genres"][()]
        genres[8:10] = 0
        _replace(f, "genres", genres)
    with pytest.raises(DatasetError, match=rf"^{path}: genres: no positive label in the dev split; F1 would be 0$"):
        check_mmimdb_file(path, needs)
    assert check_mmimdb_file(path, SplitNeeds({"dev": 2}, frozenset({"train"}))) == check_mmimdb_file(path)


def test_an_empty_train_split_is_refused_when_the_run_trains(tmp_path: Path) -> None:
    path = make_mmimdb(tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["train"] = np.array([0, 0])
    assert check_mmimdb_file(path) == [f"{path}: train: is empty; no stage can train on this file"]
    with pytest.raises(DatasetError, match=rf"^{path}: train: has 0 rows; needs at least 1"):
        check_mmimdb_file(path, SplitNeeds({"train": 1}))


def test_degenerate_genres_are_warned_about_by_name(tmp_path: Path) -> None:
    path = make_mmimdb(tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        genres = np.zeros((N, 23), np.int32)
        genres[:, 0] = 1  # Drama in every movie
        genres[0, 1:] = 1  # every other genre once, Action only outside train
        genres[0, 5], genres[8, 5] = 0, 1
        _replace(f, "genres", genres)
    assert check_mmimdb_file(path) == [f"{path}: genres: class 'Action' has no positive label in the train split",
                                       f"{path}: genres: class 'Drama' has a positive label in every train row (8)"]


def test_nan_posters_are_refused_while_encoding(tmp_path: Path) -> None:
    images = np.full((N, 3, H, W), 10.0, dtype=np.float32)
    images[5, 1, 2, 3] = np.nan
    path = make_mmimdb(tmp_path / "m.h5", images=images)
    with pytest.raises(DatasetError, match=r"images: NaN or inf in rows 4\.\.7$"):
        load_mmimdb(path, MMIMDBOptions(pixels="rgb", batch_size=4))


def test_fuel_split_without_a_split(tmp_path: Path) -> None:
    path = make_mmimdb(tmp_path / "m.h5", splits="fuel")
    with h5py.File(path, "r+") as f:
        table = f.attrs["split"]
        f.attrs["split"] = table[table["split"] != b"dev"]
    with pytest.raises(DatasetError, match=r"m\.h5: split: no entry for split 'dev'"):
        load_mmimdb(path)


def test_missing_file_and_not_hdf5(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"mmimdb\.h5: file not found"):
        load_mmimdb(tmp_path / "mmimdb.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DatasetError, match=r"text\.h5: not an HDF5 file"):
        load_mmimdb(tmp_path / "text.h5")
