import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ssnas.data.features import FORMAT, build_feature_cache, read_features, write_features
from ssnas.data.pyramids import SPLITS, FeatureSet
from ssnas.errors import DatasetError

N = 12


def make_features(labels: bool = True) -> FeatureSet:
    g = torch.Generator().manual_seed(0)
    return FeatureSet(
        ("image", "text", "audio"),
        [
            [torch.randn(N, 4, 3, 3, generator=g), torch.randn(N, 6, 2, 2, generator=g)],
            [torch.randn(N, 8, generator=g), torch.randn(N, 5, 7, generator=g)],
            [torch.randn(N, 3, 4, generator=g)],
        ],
        {"train": torch.arange(0, 8), "dev": torch.tensor([9, 8]), "test": torch.tensor([10, 11])},
        labels=(torch.rand(N, 3, generator=g) > 0.5).float() if labels else None,
        label_names=("a", "b", "c") if labels else None,
        source="unit test",
    )


def assert_same(a: FeatureSet, b: FeatureSet, atol: float = 0.0) -> None:
    assert a.modalities == b.modalities
    for pa, pb in zip(a.levels, b.levels, strict=True):
        assert len(pa) == len(pb)
        for la, lb in zip(pa, pb, strict=True):
            assert la.shape == lb.shape and lb.dtype == torch.float32
            torch.testing.assert_close(la, lb, atol=atol, rtol=atol)
    for split in SPLITS:
        assert torch.equal(a.splits[split], b.splits[split])
    assert a.has_labels == b.has_labels
    if a.has_labels:
        assert torch.equal(a.labels, b.labels) and b.labels.dtype == torch.float32
        assert a.label_names == b.label_names


def test_round_trip_float32(tmp_path: Path) -> None:
    features = make_features()
    path = write_features(features, tmp_path / "x.h5", dtype="float32")
    back = read_features(path)
    assert_same(features, back)
    assert back.source == str(path)
    with h5py.File(path) as f:
        assert f.attrs["format"] == FORMAT
        assert json.loads(f.attrs["modalities"]) == ["image", "text", "audio"]
        assert f.attrs["source"] == "unit test"
        assert f["labels"].dtype == np.uint8 and f["splits/train"].dtype == np.int64
        assert f["modalities/image/level_0"].dtype == np.float32


def test_round_trip_float16_is_the_default(tmp_path: Path) -> None:
    features = make_features()
    path = build_feature_cache(features, tmp_path / "x.h5")
    with h5py.File(path) as f:
        assert f["modalities/text/level_1"].dtype == np.float16
    assert_same(features, read_features(path), atol=2e-3)


def test_round_trip_without_labels(tmp_path: Path) -> None:
    features = make_features(labels=False)
    path = write_features(features, tmp_path / "x.h5")
    with h5py.File(path) as f:
        assert "labels" not in f and "label_names" not in f.attrs
    back = read_features(path)
    assert not back.has_labels
    assert_same(features, back, atol=2e-3)


def test_write_is_atomic_and_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    write_features(make_features(), path)
    write_features(make_features(labels=False), path)
    assert not read_features(path).has_labels
    assert [p.name for p in tmp_path.iterdir()] == ["x.h5"]


def test_float16_overflow_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    features = make_features()
    features.levels[1][0][0, 0] = 1e6
    with pytest.raises(DatasetError, match=r"/modalities/text/level_0: values exceed the float16 range"):
        write_features(features, tmp_path / "x.h5")
    assert list(tmp_path.iterdir()) == []
    write_features(features, tmp_path / "x.h5", dtype="float32")


def test_a_nan_level_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    """The reader refuses NaN (tests/test_feature_check.py holds every refusal), so the writer does too."""
    features = make_features()
    features.levels[2][0][4, 1, 2] = float("nan")
    with pytest.raises(DatasetError, match=r"x\.h5: /modalities/audio/level_0: contains NaN or inf \(first at row 4\)"):
        write_features(features, tmp_path / "x.h5", dtype="float32")
    assert list(tmp_path.iterdir()) == []


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nope\.h5: file not found"):
        read_features(tmp_path / "nope.h5")


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    path.write_text("just text")
    with pytest.raises(DatasetError, match=r"x\.h5: not an HDF5 file"):
        read_features(path)
