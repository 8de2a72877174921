"""The whole check of an ssnas-features/1 file (ssnas.data.feature_check): what it refuses, what it
warns about, and that the reader and `ssnas features` refuse the same files with the same line."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from ssnas.cli import main
from ssnas.data import row_scan
from ssnas.data.feature_check import SplitNeeds, check_feature_file
from ssnas.data.feature_format import write_feature_file
from ssnas.errors import DatasetError

N = 12
TRAIN, DEV, TEST = np.arange(8), np.array([8, 9]), np.array([10, 11])
# Every class has positives and negatives in train, and a positive in dev and test: no warning.
LABELS = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 1, 0],
                   [1, 1, 1], [0, 0, 0], [1, 1, 1], [0, 0, 0]], dtype=np.uint8)


def valid_file(path: Path, labels: np.ndarray | None = LABELS, names: list[str] | None = None) -> Path:
    rng = np.random.default_rng(0)
    levels = [[rng.normal(size=(N, 4, 3, 3)), rng.normal(size=(N, 6))], [rng.normal(size=(N, 5, 7))]]
    return write_feature_file(path, ["image", "text"], levels, {"train": TRAIN, "dev": DEV, "test": TEST},
                              labels=labels, label_names=(names or ["a", "b", "c"]) if labels is not None else None)


def _replace(f: h5py.File, key: str, data: np.ndarray) -> None:
    del f[key]
    f.create_dataset(key, data=data)


def _set(key: str, index: tuple, value: float, dtype: str | None = None) -> Callable[[h5py.File], None]:
    """Put `value` at `index` of dataset `key`, rewritten as `dtype` when given."""
    def mutate(f: h5py.File) -> None:
        data = f[key][()]
        data = data.astype(dtype) if dtype else data
        data[index] = value
        _replace(f, key, data)
    return mutate


def _zero_rows(f: h5py.File) -> None:
    for key in ("modalities/image/level_0", "modalities/image/level_1", "modalities/text/level_0", "labels"):
        _replace(f, key, np.zeros((0, *f[key].shape[1:]), f[key].dtype))
    for split in ("train", "dev", "test"):
        _replace(f, f"splits/{split}", np.zeros(0, np.int64))


def _no_train_positive(f: h5py.File) -> None:
    labels = f["labels"][()]
    labels[TRAIN] = 0
    _replace(f, "labels", labels)


TRAIN_LABELS = SplitNeeds({"train": 1}, frozenset({"train"}))

# Each case: (mutation of a valid file, needs or None, what follows "<path>: ": the key, then the problem).
BAD: dict[str, tuple[Callable[[h5py.File], None], SplitNeeds | None, str]] = {
    "nan in a level": (_set("modalities/image/level_1", (5, 2), np.nan), None,
                       "/modalities/image/level_1: contains NaN or inf (first at row 5)"),
    "+inf in a float32 level": (_set("modalities/text/level_0", (3, 1, 1), np.inf, "float32"), None,
                                "/modalities/text/level_0: contains NaN or inf (first at row 3)"),
    "-inf in a map": (_set("modalities/image/level_0", (11, 3, 2, 2), -np.inf), None,
                      "/modalities/image/level_0: contains NaN or inf (first at row 11)"),
    "float16 inf": (_set("modalities/image/level_1", (7, 0), np.float16(np.inf)), None,
                    "/modalities/image/level_1: contains NaN or inf (first at row 7)"),
    "float64 beyond float32": (_set("modalities/text/level_0", (2, 0, 0), 1e300, "float64"), None,
                               "/modalities/text/level_0: values exceed the float32 range"),
    "(N, 0) level": (lambda f: _replace(f, "modalities/image/level_1", np.zeros((N, 0), np.float16)), None,
                     "/modalities/image/level_1: has shape (12, 0): a level needs at least one channel"),
    "(N, C, 0) level": (lambda f: _replace(f, "modalities/text/level_0", np.zeros((N, 5, 0), np.float16)), None,
                        "/modalities/text/level_0: has shape (12, 5, 0)"),
    "zero rows": (_zero_rows, None, "/modalities/image/level_0: has no rows"),
    "level rows mismatch": (lambda f: _replace(f, "modalities/text/level_0", np.zeros((9, 5, 7), np.float16)), None,
                            "/modalities/text/level_0: has 9 rows, expected 12"),
    "labels of value 2": (_set("labels", (4, 1), 2), None, "/labels: values must be 0 or 1 (multi-hot); row 4 holds 2"),
    "NaN label": (_set("labels", (6, 0), np.nan, "float32"), None, "/labels: values must be 0 or 1 (multi-hot); row 6"),
    "labels wrong rows": (lambda f: _replace(f, "labels", np.zeros((9, 3), np.uint8)), None,
                          "/labels: has 9 rows, expected 12"),
    "labels without classes": (lambda f: _replace(f, "labels", np.zeros((N, 0), np.uint8)), None,
                               "/labels: has shape (12, 0): no classes"),
    "labels 1-D": (lambda f: _replace(f, "labels", np.zeros(N, np.uint8)), None, "/labels: expected an (N, classes)"),
    "overlapping splits": (lambda f: _replace(f, "splits/test", np.array([10, 3])), None,
                           "/splits/test: overlaps /splits/train"),
    "repeated row in a split": (lambda f: _replace(f, "splits/dev", np.array([9, 9])), None,
                                "/splits/dev: repeats a row"),
    "out-of-range index": (lambda f: _replace(f, "splits/test", np.array([10, 12])), None,
                           "/splits/test: index 12 out of range 0..11"),
    "negative index": (lambda f: _replace(f, "splits/dev", np.array([-1, 8])), None,
                       "/splits/dev: index -1 out of range 0..11"),
    "missing split": (lambda f: f.__delitem__("splits/dev"), None, "/splits/dev: missing"),
    "non-integer split": (lambda f: _replace(f, "splits/dev", np.array([9.0, 8.0])), None,
                          "/splits/dev: expected a 1-D integer dataset of row indices"),
    "2-D split": (lambda f: _replace(f, "splits/train", TRAIN.reshape(2, 4)), None,
                  "/splits/train: expected a 1-D integer dataset"),
    "train too small for the run": (lambda f: None, SplitNeeds({"train": 20}),
                                    "/splits/train: has 8 rows; needs at least 20 for this run's stages"),
    "dev of one row, two needed": (lambda f: _replace(f, "splits/dev", np.array([8])), SplitNeeds({"dev": 2}),
                                   "/splits/dev: has 1 row; needs at least 2"),
    "no /labels, labels needed": (lambda f: (f.__delitem__("labels"), f.attrs.__delitem__("label_names")),
                                  SplitNeeds({"train": 1}, frozenset({"train", "dev"})),
                                  "/labels: missing; this run's stages read the labels of the train and dev splits"),
    "all-zero labels in a labeled split": (_no_train_positive, TRAIN_LABELS,
                                           "/labels: no positive label in the train split; F1 would be 0"),
    "bad format attr": (lambda f: f.attrs.__setitem__("format", "ssnas-features/9"), None,
                        "format: is 'ssnas-features/9', expected 'ssnas-features/1'"),
    "missing format attr": (lambda f: f.attrs.__delitem__("format"), None, "format: missing root attribute"),
    "missing modalities attr": (lambda f: f.attrs.__delitem__("modalities"), None,
                                "modalities: missing root attribute"),
    "modalities not JSON": (lambda f: f.attrs.__setitem__("modalities", "image,text"), None,
                            "modalities: not valid JSON"),
    "single modality": (lambda f: f.attrs.__setitem__("modalities", '["image"]'), None,
                        "modalities: expected a JSON list of at least two names"),
    "repeated modality": (lambda f: f.attrs.__setitem__("modalities", '["image", "image"]'), None,
                          "modalities: names repeat"),
    "missing modality group": (lambda f: f.__delitem__("modalities/text"), None, "/modalities/text: missing group"),
    "level gap": (lambda f: f.move("modalities/image/level_1", "modalities/image/level_2"), None,
                  "/modalities/image/level_1: missing (levels jump to level_2)"),
    "no level_0": (lambda f: f.move("modalities/text/level_0", "modalities/text/level_1"), None,
                   "/modalities/text/level_0: missing"),
    "stray member": (lambda f: f.create_dataset("modalities/text/extra", data=np.zeros(N)), None,
                     "/modalities/text/extra: unexpected member"),
    "5-D level": (lambda f: _replace(f, "modalities/image/level_0", np.zeros((N, 2, 2, 2, 2), np.float16)), None,
                  "/modalities/image/level_0: has 5 dimensions (12, 2, 2, 2, 2), expected 2, 3 or 4"),
    "1-D level": (lambda f: _replace(f, "modalities/text/level_0", np.zeros(N, np.float16)), None,
                  "/modalities/text/level_0: has 1 dimensions"),
    "integer level dtype": (lambda f: _replace(f, "modalities/image/level_1", np.zeros((N, 6), np.int32)), None,
                            "/modalities/image/level_1: expected a float16 or float32 dataset"),
    "label_names count mismatch": (lambda f: f.attrs.__setitem__("label_names", '["a", "b"]'), None,
                                   "label_names: has 2 names, but /labels has 3 classes"),
    "label_names repeat": (lambda f: f.attrs.__setitem__("label_names", '["a", "b", "a"]'), None,
                           "label_names: names repeat"),
    "label_names without labels": (lambda f: f.__delitem__("labels"), None,
                                   "label_names: given, but the file has no /labels"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_file_is_refused_naming_the_path_the_key_and_the_problem(tmp_path: Path, case: str) -> None:
    mutate, needs, expected = BAD[case]
    path = valid_file(tmp_path / "x.h5")
    with h5py.File(path, "r+") as f:
        mutate(f)
    with pytest.raises(DatasetError) as info:
        check_feature_file(path, needs)
    message = str(info.value)
    assert message.startswith(f"{path}: {expected}") and "\n" not in message


def test_not_hdf5_and_missing_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    path.write_text("just text")
    with pytest.raises(DatasetError, match=rf"^{path}: not an HDF5 file$"):
        check_feature_file(path)
    with pytest.raises(DatasetError, match=r"nope\.h5: file not found$"):
        check_feature_file(tmp_path / "nope.h5")


def test_a_valid_file_passes_with_no_warning_and_meets_its_needs(tmp_path: Path) -> None:
    path = valid_file(tmp_path / "x.h5")
    assert check_feature_file(path) == []
    assert check_feature_file(str(path), SplitNeeds({"train": 8, "dev": 2, "test": 2},
                                                    frozenset({"train", "dev", "test"}))) == []


def test_float16_extremes_are_finite(tmp_path: Path) -> None:
    """The largest float16, its negative and a subnormal pass; only the all-ones exponent is NaN or inf."""
    path = valid_file(tmp_path / "x.h5")
    with h5py.File(path, "r+") as f:
        _set("modalities/image/level_1", (slice(None), slice(0, 3)), np.array([65504, -65504, 6e-8], np.float16))(f)
    assert check_feature_file(path) == []


def test_degenerate_train_columns_are_warned_about_by_name(tmp_path: Path) -> None:
    labels = LABELS.copy()
    labels[TRAIN, 1] = 0  # 'b': positives in dev and test only
    labels[TRAIN, 2] = 1  # 'c': every train row
    warnings = check_feature_file(valid_file(tmp_path / "x.h5", labels))
    path = tmp_path / "x.h5"
    assert warnings == [f"{path}: /labels: class 'b' has no positive label in the train split",
                        f"{path}: /labels: class 'c' has a positive label in every train row (8)"]


def test_unnamed_classes_are_named_by_index_and_an_empty_train_split_is_warned_about(tmp_path: Path) -> None:
    path = valid_file(tmp_path / "x.h5")
    with h5py.File(path, "r+") as f:
        f.attrs.__delitem__("label_names")
        labels = f["labels"][()]
        labels[TRAIN, 0] = 0
        labels[TRAIN, 2] = 0
        _replace(f, "labels", labels)
    assert check_feature_file(path) == [f"{path}: /labels: classes 0, 2 have no positive label in the train split"]
    with h5py.File(path, "r+") as f:
        _replace(f, "splits/train", np.zeros(0, np.int64))
    assert check_feature_file(path) == [f"{path}: /splits/train: is empty; no stage can train on this file"]


def test_levels_and_labels_are_scanned_a_block_of_rows_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """Blocks of a row or two find the same first bad row, and count the same positives, as one block."""
    labels = LABELS.copy()
    labels[TRAIN, 1] = 0
    path = valid_file(tmp_path / "x.h5", labels)
    whole = check_feature_file(path)
    monkeypatch.setattr(row_scan, "BLOCK_BYTES", 40)
    assert [(s.start, s.stop) for s in row_scan.row_blocks((7, 4), 5)] == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert len(list(row_scan.row_blocks((3, 1000), 2))) == 3  # a row wider than the budget: one row a block
    assert check_feature_file(path, SplitNeeds({"train": 8}, frozenset({"train", "dev", "test"}))) == whole
    assert len(whole) == 1
    with h5py.File(path, "r+") as f:
        _set("modalities/text/level_0", (10, 4, 6), np.nan)(f)
    with pytest.raises(DatasetError, match=r"/modalities/text/level_0: contains NaN or inf \(first at row 10\)$"):
        check_feature_file(path)


def test_split_needs_name_only_splits() -> None:
    with pytest.raises(ValueError, match="'val' is not a split"):
        SplitNeeds({"val": 1})


WITHOUT_NEEDS = [case for case, (_, needs, _) in BAD.items() if needs is None]


@pytest.mark.parametrize("case", WITHOUT_NEEDS, ids=WITHOUT_NEEDS)
def test_the_reader_refuses_what_the_check_refuses_with_the_same_line(tmp_path: Path, case: str) -> None:
    """The worker (read_features) and preflight (check_feature_file) refuse the same files, in the same words."""
    from ssnas.data.features import read_features

    mutate, _, expected = BAD[case]
    path = valid_file(tmp_path / "x.h5")
    with h5py.File(path, "r+") as f:
        mutate(f)
    with pytest.raises(DatasetError) as checked:
        check_feature_file(path)
    with pytest.raises(DatasetError) as read:
        read_features(path)
    assert str(read.value) == str(checked.value) and str(read.value).startswith(f"{path}: {expected}")


def test_ssnas_features_refuses_a_nan_input_in_one_line(tmp_path: Path) -> None:
    path = valid_file(tmp_path / "in.h5")
    with h5py.File(path, "r+") as f:
        BAD["float16 inf"][0](f)
    out = tmp_path / "out.h5"
    result = CliRunner().invoke(main, ["features", "dataset", "features", str(out), "--path", str(path)])
    assert result.exit_code == 2
    assert result.output == f"Error: {path}: /modalities/image/level_1: contains NaN or inf (first at row 7)\n"
    assert not out.exists()


def test_ssnas_features_prints_warnings_and_copies_a_degenerate_file(tmp_path: Path) -> None:
    labels = LABELS.copy()
    labels[TRAIN, 1] = 0
    path = valid_file(tmp_path / "in.h5", labels)
    out = tmp_path / "out.h5"
    result = CliRunner().invoke(main, ["features", "dataset", "features", str(out), "--path", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"warning: {path}: /labels: class 'b' has no positive label in the train split\n"
    assert result.stdout.startswith(f"{out}: 12 samples")


def test_from_arrays_warns_of_a_degenerate_train_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.normal(size=(N, 3)))
    np.save(tmp_path / "b.npy", rng.normal(size=(N, 2)))
    labels = LABELS.copy()
    labels[TRAIN, 1] = 0
    np.save(tmp_path / "labels.npy", labels)
    np.savez(tmp_path / "splits.npz", train=TRAIN, dev=DEV, test=TEST)
    out = tmp_path / "out.h5"
    result = CliRunner().invoke(main, ["features", "from-arrays", str(out), "--view", f"a={tmp_path / 'a.npy'}",
                                       "--view", f"b={tmp_path / 'b.npy'}", "--labels", str(tmp_path / "labels.npy"),
                                       "--splits", str(tmp_path / "splits.npz")])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"warning: {out}: /labels: class 'class_1' has no positive label in the train split\n"


def test_the_checks_import_no_torch() -> None:
    code = "import sys, ssnas.data.feature_check, ssnas.data.mmimdb_file; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_writer_refuses_what_the_check_would(tmp_path: Path) -> None:
    """A NaN never reaches a file: write_feature_file refuses it, naming the level, and writes nothing."""
    levels = [[np.zeros((N, 2))], [np.full((N, 3), np.nan)]]
    with pytest.raises(DatasetError, match=r"x\.h5: /modalities/text/level_0: contains NaN or inf \(first at row 0\)$"):
        write_feature_file(tmp_path / "x.h5", ["image", "text"], levels, {"train": TRAIN, "dev": DEV, "test": TEST})
    assert list(tmp_path.iterdir()) == []
