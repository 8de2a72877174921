"""Arrays -> ssnas-features/1 (ssnas.data.convert, ssnas.data.array_files, `ssnas features from-arrays`)."""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from ssnas.cli import main
from ssnas.data.convert import arrays_to_features
from ssnas.data.features import read_features
from ssnas.errors import DatasetError

N = 40


def make_views(n: int = N) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return {
        "image": [rng.normal(size=(n, 3, 2, 2)).astype(np.float32), rng.normal(size=(n, 5)).astype(np.float32)],
        "text": [rng.normal(size=(n, 4, 6))],  # float64 and a sequence level
    }


def string_classes(n: int = N) -> np.ndarray:
    return np.array(["owl", "cat", "dog", "cat"] * (n // 4))


def assert_partition(splits: dict, n: int) -> None:
    rows = np.concatenate([np.asarray(splits[s]) for s in ("train", "dev", "test")])
    assert np.array_equal(np.sort(rows), np.arange(n))


# -- the library


def test_round_trip_single_label_strings_with_a_stratified_split(tmp_path: Path) -> None:
    views, labels = make_views(), string_classes()
    path = arrays_to_features(views, tmp_path / "x.h5", labels=labels, source="unit test")
    back = read_features(path)
    assert back.modalities == ("image", "text")
    assert back.node_names == ("image[0]", "image[1]", "text[0]")
    for pyramid, original in zip(back.levels, views.values(), strict=True):
        for level, array in zip(pyramid, original, strict=True):
            np.testing.assert_allclose(level.numpy(), array, rtol=1e-6)
    assert back.label_names == ("cat", "dog", "owl")
    columns = back.labels.numpy().argmax(axis=1)
    assert np.array_equal(np.array(back.label_names)[columns], labels) and (back.labels.sum(1) == 1).all()
    splits = {s: idx.numpy() for s, idx in back.splits.items()}
    assert_partition(splits, N)
    # Stratified: each class (20 cat, 10 dog, 10 owl) is split 60/20/20 on its own.
    counts = {s: sorted(np.unique(labels[idx], return_counts=True)[1].tolist()) for s, idx in splits.items()}
    assert counts == {"train": [6, 6, 12], "dev": [2, 2, 4], "test": [2, 2, 4]}
    with h5py.File(path) as f:
        assert f.attrs["source"] == "unit test" and f["modalities/text/level_0"].dtype == np.float32


def test_seeded_splits_are_fixed_by_the_seed(tmp_path: Path) -> None:
    def splits(seed: int, name: str, labels=None) -> dict:
        path = arrays_to_features(make_views(), tmp_path / name, labels=labels, seed=seed, fractions=(0.5, 0.25, 0.25))
        return {s: idx.numpy() for s, idx in read_features(path).splits.items()}

    for labels in (None, string_classes()):
        a, b, c = splits(1, "a.h5", labels), splits(1, "b.h5", labels), splits(2, "c.h5", labels)
        assert all(np.array_equal(a[s], b[s]) for s in a)
        assert any(not np.array_equal(a[s], c[s]) for s in a)
        assert [a[s].size for s in ("train", "dev", "test")] == [20, 10, 10]
        assert_partition(a, N)


def test_class_ids_with_names_and_given_splits(tmp_path: Path) -> None:
    ids = np.arange(N) % 3
    given = {"train": np.arange(0, 30), "dev": np.array([31, 30]), "test": np.arange(32, 40)}
    back = read_features(arrays_to_features(make_views(), tmp_path / "x.h5", labels=ids,
                                            label_names=["rock", "jazz", "folk"], splits=given))
    assert back.label_names == ("rock", "jazz", "folk")
    assert np.array_equal(back.labels.numpy().argmax(1), ids)
    assert all(np.array_equal(back.splits[s].numpy(), given[s]) for s in given)


def test_multi_hot_labels_default_names_and_float16(tmp_path: Path) -> None:
    labels = np.zeros((N, 3), dtype=bool)
    labels[:, 0] = True
    labels[::2, 1] = True
    labels[::5, 2] = True
    path = arrays_to_features(make_views(), tmp_path / "x.h5", labels=labels, dtype="float16")
    back = read_features(path)
    assert back.label_names == ("class_0", "class_1", "class_2")
    assert np.array_equal(back.labels.numpy(), labels.astype(np.float32))
    assert_partition({s: idx.numpy() for s, idx in back.splits.items()}, N)
    with h5py.File(path) as f:
        assert f["modalities/image/level_0"].dtype == np.float16 and f["labels"].dtype == np.uint8


def test_unlabeled_data_has_no_labels(tmp_path: Path) -> None:
    back = read_features(arrays_to_features(make_views(), tmp_path / "x.h5"))
    assert not back.has_labels


def test_a_refused_input_leaves_the_old_file_alone(tmp_path: Path) -> None:
    path = arrays_to_features(make_views(), tmp_path / "x.h5")
    before = path.read_bytes()
    views = make_views()
    views["text"][0][3, 1, 2] = np.nan
    with pytest.raises(DatasetError):
        arrays_to_features(views, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["x.h5"]


def _with(views_change=None, **arguments):
    """The keyword arguments of a call with one thing broken."""
    views = make_views()
    if views_change:
        views_change(views)
    return {"views": views, **arguments}


def _set(level: str, k: int, index: tuple, value: float):
    def change(views):
        views[level][k][index] = value
    return change


# Each case: (arguments of arrays_to_features, the message after "<output>: ").
LIBRARY_ERRORS = {
    "nan": (_with(_set("text", 0, (7, 0, 0), np.nan)), "views['text'][0]: contains NaN or inf (first at row 7)"),
    "inf": (_with(_set("image", 1, (2, 0), np.inf)), "views['image'][1]: contains NaN or inf (first at row 2)"),
    "float16 overflow": (
        _with(_set("image", 0, (0, 0, 0, 0), 1e6), dtype="float16"),
        "views['image'][0]: values exceed the float16 range",
    ),
    "zero width": (
        _with(lambda v: v["image"].append(np.zeros((N, 0)))),
        "views['image'][2]: has shape (40, 0): a level needs at least one channel",
    ),
    "rows differ between views": (
        _with(lambda v: v["text"].__setitem__(0, np.zeros((N - 1, 4)))),
        "views['text'][0]: has 39 rows, but",
    ),
    "rows differ from labels": (_with(labels=np.zeros(N - 2, int)), "labels: has 38 rows, but"),
    "one modality": (_with(lambda v: v.pop("text")), "views: need at least two modalities"),
    "bad modality name": (_with(lambda v: v.__setitem__("my view", v.pop("text"))), "views: modality name 'my view'"),
    "levels not a list": (
        _with(lambda v: v.__setitem__("text", v["text"][0])),
        "views['text']: expected a non-empty list",
    ),
    "one dimension": (_with(lambda v: v["text"].append(np.zeros(N))), "views['text'][1]: has shape (40,), expected"),
    "strings as features": (_with(lambda v: v["text"].append(np.full((N, 2), "x"))), "views['text'][1]: has dtype <U1"),
    "multi-hot not 0/1": (_with(labels=np.full((N, 2), 2)), "labels: a 2-D label matrix must be multi-hot"),
    "an empty class column": (
        _with(labels=np.column_stack([np.ones(N, int), np.zeros(N, int)]), label_names=["yes", "never"]),
        "labels: class 'never' has no rows",
    ),
    "a named class with no rows": (
        _with(labels=np.arange(N) % 2, label_names=["a", "b", "c"]),
        "labels: class 'c' has no rows",
    ),
    "too few rows to stratify": (
        _with(labels=np.array([0] * 36 + [1] * 4)),
        "labels: class '1' has 4 rows; a stratified split 0.6, 0.2, 0.2 needs at least 5 per class",
    ),
    "class id without a name": (
        _with(labels=np.arange(N) % 3, label_names=["a", "b"]),
        "labels: class id 2 has no name",
    ),
    "class not among the names": (
        _with(labels=string_classes(), label_names=["cat", "dog"]),
        "labels: class 'owl' is not in",
    ),
    "fractional class ids": (_with(labels=np.full(N, 0.5)), "labels: a 1-D label column must hold integer class ids"),
    "class name with a slash": (
        _with(labels=np.array(["sci/fi", "drama"] * 20)),
        "labels: 'sci/fi' is not a class name",
    ),
    "repeated label names": (
        _with(labels=np.eye(2, dtype=int)[np.arange(N) % 2], label_names=["a", "a"]),
        "label_names: 'a' appears more than once",
    ),
    "label names of the wrong length": (
        _with(labels=np.eye(2, dtype=int)[np.arange(N) % 2], label_names=["a", "b", "c"]),
        "label_names: has 3 names, but labels have 2 columns",
    ),
    "label names without labels": (_with(label_names=["a"]), "label_names: given without labels"),
    "overlapping splits": (
        _with(splits={"train": np.arange(30), "dev": np.array([29, 30]), "test": np.arange(31, 40)}),
        "splits['dev']: overlaps splits['train']",
    ),
    "split out of range": (
        _with(splits={"train": np.arange(30), "dev": np.array([30]), "test": np.array([40])}),
        "splits['test']: index 40 out of range 0..39",
    ),
    "missing split": (_with(splits={"train": np.arange(30), "dev": np.arange(30, 40)}), "splits['test']: missing"),
    "unknown split": (
        _with(splits={"train": np.arange(30), "valid": np.arange(30, 40)}),
        "splits: unknown split 'valid'",
    ),
    "boolean mask as a split": (
        _with(splits={"train": np.ones(N, bool), "dev": np.array([], int), "test": np.array([], int)}),
        "splits['train']: is a boolean mask",
    ),
    "fractions that do not sum to 1": (_with(fractions=(0.6, 0.3, 0.3)), "fractions: (0.6, 0.3, 0.3) must be"),
    "dtype": (_with(dtype="float64"), "dtype: 'float64' is not 'float16' or 'float32'"),
}


@pytest.mark.parametrize("case", LIBRARY_ERRORS)
def test_library_errors_are_one_line_naming_the_field(tmp_path: Path, case: str) -> None:
    arguments, message = LIBRARY_ERRORS[case]
    out = tmp_path / "x.h5"
    with pytest.raises(DatasetError) as info:
        arrays_to_features(output=out, **arguments)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{out}: {message}"), text
    assert list(tmp_path.iterdir()) == []


# -- the command


def write_inputs(folder: Path) -> dict[str, Path]:
    """feats.npz (two image levels), text.csv (a header, extra columns), labels.csv, splits.npz, names.txt."""
    views = make_views()
    np.savez(folder / "feats.npz", shallow=views["image"][0], deep=views["image"][1])
    text = views["text"][0].reshape(N, -1)[:, :5]
    rows = zip(text, string_classes(), strict=True)
    lines = ["id,t_0,t_1,t_2,t_3,t_4,genre"] + [
        ",".join([str(i), *(repr(float(x)) for x in row), label]) for i, (row, label) in enumerate(rows)
    ]
    (folder / "text.csv").write_text("\n".join(lines) + "\n")
    np.savez(folder / "splits.npz", train=np.arange(30), dev=np.arange(30, 35), test=np.arange(35, 40))
    (folder / "names.txt").write_text("rock\njazz\n\nfolk\n")
    np.save(folder / "ids.npy", np.arange(N) % 3)
    return {"text": text}


def invoke(*args: str):
    return CliRunner().invoke(main, ["features", "from-arrays", *args])


def test_cli_npz_and_csv_with_string_labels(tmp_path: Path) -> None:
    arrays = write_inputs(tmp_path)
    out = tmp_path / "out.h5"
    result = invoke(str(out), "--view", f"image={tmp_path}/feats.npz:shallow",
                    "--view", f"image={tmp_path}/feats.npz:deep", "--view", f"text={tmp_path}/text.csv:t_*",
                    "--labels", f"{tmp_path}/text.csv:genre", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (f"{out}: 40 samples, nodes image[0], image[1], text[0]; 3 classes; "
                                     "train 24, dev 8, test 8")
    back = read_features(out)
    np.testing.assert_allclose(back.levels[1][0].numpy(), arrays["text"], rtol=1e-6)
    assert back.label_names == ("cat", "dog", "owl")
    with h5py.File(out) as f:
        assert "--view image=" in f.attrs["source"]


def test_cli_given_splits_label_names_and_a_multi_hot_header(tmp_path: Path) -> None:
    write_inputs(tmp_path)
    out = tmp_path / "out.h5"
    result = invoke(str(out), "--view", f"image={tmp_path}/feats.npz:deep",
                    "--view", f"text={tmp_path}/text.csv:t_0,t_3", "--labels", f"{tmp_path}/ids.npy",
                    "--label-names", f"{tmp_path}/names.txt", "--splits", f"{tmp_path}/splits.npz",
                    "--dtype", "float16")
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("; 3 classes; train 30, dev 5, test 5")
    back = read_features(out)
    assert back.label_names == ("rock", "jazz", "folk") and back.levels[1][0].shape == (N, 2)
    # A multi-hot table: its header names the classes.
    (tmp_path / "tags.csv").write_text("funny,sad\n" + "1,0\n0,1\n1,1\n0,1\n" * (N // 4))
    result = invoke(str(out), "--view", f"image={tmp_path}/feats.npz:deep", "--view", f"text={tmp_path}/text.csv:t_0",
                    "--labels", f"{tmp_path}/tags.csv", "--split", "0.5,0.5,0")
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("; 2 classes; train 20, dev 20, test 0")
    assert read_features(out).label_names == ("funny", "sad")


def test_cli_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    embedding = rng.normal(size=(N, 6))
    table = pa.table({"emb": list(embedding), "x": rng.normal(size=N), "y": rng.normal(size=N),
                      "genre": string_classes().tolist()})
    pq.write_table(table, tmp_path / "t.parquet")
    out = tmp_path / "out.h5"
    result = invoke(str(out), "--view", f"a={tmp_path}/t.parquet:emb", "--view", f"b={tmp_path}/t.parquet:x,y",
                    "--labels", f"{tmp_path}/t.parquet:genre")
    assert result.exit_code == 0, result.output
    back = read_features(out)
    np.testing.assert_allclose(back.levels[0][0].numpy(), embedding, rtol=1e-6)
    assert back.levels[1][0].shape == (N, 2) and back.label_names == ("cat", "dog", "owl")


def test_cli_parquet_without_pyarrow_says_how_to_get_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    result = invoke(str(tmp_path / "out.h5"), "--view", f"a={tmp_path}/t.parquet:x",
                    "--view", f"b={tmp_path}/t.parquet:y")
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {tmp_path}/t.parquet: reading Parquet needs pyarrow: pip install pyarrow"


def _nan_npz(folder: Path) -> None:
    np.savez(folder / "bad.npz", layer=np.where(np.arange(N)[:, None] == 5, np.nan, np.ones((N, 2))))


def _short_npz(folder: Path) -> None:
    np.savez(folder / "bad.npz", layer=np.ones((N - 1, 2)))


def _bad_csv(folder: Path) -> None:
    (folder / "bad.csv").write_text("a,b\n1,2\n3,oops\n")


def _overlapping_splits(folder: Path) -> None:
    np.savez(folder / "bad.npz", train=np.arange(30), dev=np.arange(29, 35), test=np.arange(35, 40))


def _split_without_test(folder: Path) -> None:
    np.savez(folder / "bad.npz", train=np.arange(30), dev=np.arange(30, 40))


def _sparse_labels(folder: Path) -> None:
    np.savez(folder / "bad.npz", y=np.array([0] * 38 + [1] * 2))


def _ok_view(folder: Path) -> list[str]:
    return ["--view", f"image={folder}/feats.npz:deep"]


# Each case: (write a broken input bad.*, the arguments after OUTPUT, the expected line after "Error: <folder>/").
CLI_ERRORS = {
    "nan in a view": (_nan_npz, lambda d: [*_ok_view(d), "--view", f"text={d}/bad.npz:layer"],
                      "bad.npz: layer: contains NaN or inf (first at row 5)"),
    "rows differ": (_short_npz, lambda d: [*_ok_view(d), "--view", f"text={d}/bad.npz:layer"],
                    "bad.npz: layer: has 39 rows, but {d}/feats.npz: deep has 40"),
    "missing key": (_short_npz, lambda d: [*_ok_view(d), "--view", f"text={d}/bad.npz:nope"],
                    "bad.npz: nope: no such array; the file holds layer"),
    "missing file": (None, lambda d: [*_ok_view(d), "--view", f"text={d}/nope.npz:x"], "nope.npz: file not found"),
    "not a number": (_bad_csv, lambda d: [*_ok_view(d), "--view", f"text={d}/bad.csv:a,b"],
                     "bad.csv: a,b: column 'b': row 1: 'oops' is not a number"),
    "overlapping splits": (_overlapping_splits, lambda d: [*_ok_view(d), "--view", f"text={d}/text.csv:t_0",
                                                            "--splits", f"{d}/bad.npz"],
                           "bad.npz: dev: overlaps train"),
    "split missing": (_split_without_test, lambda d: [*_ok_view(d), "--view", f"text={d}/text.csv:t_0",
                                                       "--splits", f"{d}/bad.npz"], "bad.npz: test: missing"),
    "too few rows to stratify": (_sparse_labels, lambda d: [*_ok_view(d), "--view", f"text={d}/text.csv:t_0",
                                                             "--labels", f"{d}/bad.npz:y"],
                                 "bad.npz: y: class '1' has 2 rows; a stratified split"),
    "one modality": (None, lambda d: _ok_view(d), "--view: need at least two modalities, got ['image']"),
    "output over an input": (None, lambda d: ["--view", f"a={d}/out.h5:x", "--view", f"b={d}/text.csv"],
                              "out.h5: is also an input"),
    "view without a name": (None, lambda d: [*_ok_view(d), "--view", f"{d}/text.csv"],
                            "--view '{d}/text.csv': expected NAME=FILE[:KEY]"),
}


@pytest.mark.parametrize("case", CLI_ERRORS)
def test_cli_errors_are_one_line_naming_the_file_and_key(tmp_path: Path, case: str) -> None:
    write_inputs(tmp_path)
    write_bad, arguments, expected = CLI_ERRORS[case]
    if write_bad:
        write_bad(tmp_path)
    result = invoke(str(tmp_path / "out.h5"), *arguments(tmp_path))
    assert result.exit_code == 2
    line = expected.format(d=tmp_path)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and (lines[0].startswith(f"Error: {tmp_path}/{line}") or
                                lines[0].startswith(f"Error: {line}")), lines
    assert not (tmp_path / "out.h5").exists()


def test_the_old_form_still_reaches_the_dataset_subcommand(tmp_path: Path) -> None:
    missing = tmp_path / "nope.h5"
    for argv in (["features", "features"], ["features", "dataset", "features"]):
        result = CliRunner().invoke(main, [*argv, str(tmp_path / "out.h5"), "--path", str(missing)])
        assert result.exit_code == 2 and result.output.strip() == f"Error: {missing}: file not found"


def test_conversion_runs_without_torch(tmp_path: Path) -> None:
    write_inputs(tmp_path)
    argv = ["features", "from-arrays", str(tmp_path / "out.h5"), "--view", f"a={tmp_path}/feats.npz:deep",
            "--view", f"b={tmp_path}/text.csv:t_0", "--labels", f"{tmp_path}/text.csv:genre"]
    code = (
        "import sys\nfrom ssnas.cli import main\n"
        f"try:\n    main({argv!r})\n"
        "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.startswith(f"{tmp_path / 'out.h5'}: 40 samples") and done.stderr.strip() == "False"


def test_from_arrays_and_its_options_are_documented() -> None:
    import click

    from ssnas.commands.features import from_arrays

    docs = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    assert from_arrays.help and "### `ssnas features from-arrays`" in docs
    for option in from_arrays.params:
        if isinstance(option, click.Option):
            assert option.opts[0] in docs, option.opts[0]
