"""A hostile user's inputs to `ssnas run`, table-driven: every one is refused before any run exists.

Each case builds its bad input (a feature file, a genotype, a checkpoint, a recipe, a registry or a
command-line argument) next to an otherwise valid recipe, runs `ssnas --runs R run RECIPE --detach`, and
checks what a user gets: exit code 2, one line naming the file and the key at fault, no traceback, and a
registry with no new row, no run queued or running, and no new run folder.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from ssnas.cli import main
from ssnas.data.feature_format import write_feature_file
from ssnas.nas.genotype import random_genotype
from ssnas.registry import Registry

NODES = ("a[0]", "a[1]", "b[0]")
ROWS = 40


def valid_features(path: Path, rows: int = ROWS) -> Path:
    """Two modalities (two levels and one), three labels, splits 24 / 8 / 8."""
    rng = np.random.default_rng(0)
    levels = [[rng.normal(size=(rows, 4)), rng.normal(size=(rows, 3, 4))], [rng.normal(size=(rows, 5))]]
    labels = (rng.random((rows, 3)) < 0.4).astype(np.uint8)
    labels[:, 0] = 1 - labels[:, 1]  # every row has a positive; every class has one in every split
    splits = {"train": np.arange(0, 24), "dev": np.arange(24, 32), "test": np.arange(32, 40)}
    return write_feature_file(path, ("a", "b"), levels, splits, labels=labels, label_names=["x", "y", "z"],
                              dtype="float32")


@dataclass
class Setup:
    """What a case's builder made: the recipe's body (after [run]'s defaults), extra CLI arguments, the
    substrings the one error line must hold."""

    recipe: str
    expect: tuple[str, ...]
    args: tuple[str, ...] = ()


PIPELINE = '[run]\nname = "bad"\nstage = "pipeline"\nstages = ["search", "pretrain", "finetune"]\n'


def features_recipe(path: Path | str, run: str = PIPELINE, extra: str = "") -> str:
    return f'{run}[data]\ndataset = "features"\npath = "{path}"\n{extra}'


def corrupt(edit: Callable[[h5py.File], None], *expect: str) -> Callable[[Path], Setup]:
    """A case: the valid features file, edited in place by `edit`; the error names the file and `expect`."""

    def build(tmp: Path) -> Setup:
        path = valid_features(tmp / "data.h5")
        with h5py.File(path, "a") as f:
            edit(f)
        return Setup(features_recipe(path), ("data.h5", *expect))

    return build


def replace(key: str, data: np.ndarray | Callable[[np.ndarray], np.ndarray]) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        old = f[key][()]
        del f[key]
        f.create_dataset(key, data=data(old) if callable(data) else data)

    return edit


def set_value(key: str, index: tuple, value: float) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        array = f[key][()]
        array[index] = value
        f[key][...] = array

    return edit


def set_attr(name: str, value: object) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f.attrs[name] = value

    return edit


def delete(*keys: str) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        for key in keys:
            if key in f.attrs:
                del f.attrs[key]
            else:
                del f[key]

    return edit


def with_split(split: str, rows: np.ndarray) -> Callable[[h5py.File], None]:
    return replace(f"splits/{split}", np.asarray(rows, dtype=np.int64))


def labels_where(edit_labels: Callable[[np.ndarray], None]) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        labels = f["labels"][()]
        edit_labels(labels)
        f["labels"][...] = labels

    return edit


def zero_rows(rows: slice) -> Callable[[np.ndarray], None]:
    def edit(labels: np.ndarray) -> None:
        labels[rows] = 0

    return edit


def float16_inf(f: h5py.File) -> None:
    array = f["modalities/b/level_0"][()].astype(np.float16)
    array[5, 2] = np.inf
    del f["modalities/b/level_0"]
    f.create_dataset("modalities/b/level_0", data=array)


def no_rows(f: h5py.File) -> None:
    for key in ("modalities/a/level_0", "modalities/a/level_1", "modalities/b/level_0", "labels"):
        old = f[key][()]
        del f[key]
        f.create_dataset(key, data=old[:0])
    for split in ("train", "dev", "test"):
        del f[f"splits/{split}"]
        f.create_dataset(f"splits/{split}", data=np.zeros(0, dtype=np.int64))


def rename(old: str, new: str) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f.move(old, new)

    return edit


def text_file(content: str, name: str = "data.h5") -> Callable[[Path], Setup]:
    def build(tmp: Path) -> Setup:
        (tmp / name).write_text(content)
        return Setup(features_recipe(tmp / name), (name,))

    return build


def features_with(run: str, *expect: str, extra: str = "", rows: int = ROWS) -> Callable[[Path], Setup]:
    """A case on a valid features file with another [run] table (or extra recipe text)."""

    def build(tmp: Path) -> Setup:
        path = valid_features(tmp / "data.h5", rows)
        return Setup(features_recipe(path, run.format(tmp=tmp), extra), expect)

    return build


def genotype_case(content: str | Callable[[Path], None], *expect: str, run_extra: str = "") -> Callable[[Path], Setup]:
    """A fine-tune of the genotype file `content` (text, or a writer) on the valid features file."""

    def build(tmp: Path) -> Setup:
        path = valid_features(tmp / "data.h5")
        genotype = tmp / "genotype.json"
        if callable(content):
            content(genotype)
        else:
            genotype.write_text(content)
        run = f'[run]\nname = "bad"\nstage = "finetune"\ngenotype = "{genotype}"\n{run_extra}'
        return Setup(features_recipe(path, run), expect)

    return build


def drawn(seed: int) -> dict:
    import random

    return random_genotype(NODES, 2, 1, ("sum", "product"), 2, random.Random(seed)).to_dict()


def all_zero_genotype(path: Path) -> None:
    data = drawn(0)
    for cell in data["cells"]:
        for step in cell["steps"]:
            step["primitive"] = "zero"
    path.write_text(json.dumps(data))


def unknown_op_genotype(path: Path) -> None:
    data = drawn(0)
    data["cells"][0]["steps"][0]["primitive"] = "warp"
    path.write_text(json.dumps(data))


def checkpoint_case(content: Callable[[Path], None], *expect: str) -> Callable[[Path], Setup]:
    """A fine-tune from `run.checkpoint` (written by `content`) of a genotype that fits the data."""

    def build(tmp: Path) -> Setup:
        path = valid_features(tmp / "data.h5")
        genotype = tmp / "genotype.json"
        genotype.write_text(json.dumps(drawn(0)))
        checkpoint = tmp / "pretrained.pt"
        content(checkpoint)
        run = (f'[run]\nname = "bad"\nstage = "finetune"\ngenotype = "{genotype}"\n'
               f'checkpoint = "{checkpoint}"\n')
        return Setup(features_recipe(path, run), ("pretrained.pt", "run.checkpoint", *expect))

    return build


def torch_saved(value: Callable[[], object]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import torch

        torch.save(value(), path)

    return write


def recipe_text(text: str, *expect: str, args: tuple[str, ...] = ()) -> Callable[[Path], Setup]:
    def build(tmp: Path) -> Setup:
        return Setup(text.format(tmp=tmp), expect, args)

    return build


SYNTHETIC = '[run]\nname = "bad"\nstage = "search"\n[data]\ndataset = "synthetic"\n'
TINY_SYNTHETIC = SYNTHETIC + '[data.synthetic]\ntrain = 64\ndev = 16\ntest = 16\n[search]\nepochs = 1\n'


def extends_chain(depth: int) -> Callable[[Path], Setup]:
    def build(tmp: Path) -> Setup:
        (tmp / "r0.toml").write_text(TINY_SYNTHETIC)
        for k in range(1, depth):
            (tmp / f"r{k}.toml").write_text(f'extends = "r{k - 1}.toml"\n')
        return Setup(f'extends = "{tmp}/r{depth - 1}.toml"\n', ("extends",))

    return build


def extends_cycle(tmp: Path) -> Setup:
    (tmp / "a.toml").write_text('extends = "b.toml"\n')
    (tmp / "b.toml").write_text('extends = "a.toml"\n')
    return Setup(f'extends = "{tmp}/a.toml"\n', ("extends",))


CASES: dict[str, Callable[[Path], Setup]] = {
    # feature files: values
    "nan-in-a-level": corrupt(set_value("modalities/a/level_0", (3, 1), np.nan), "/modalities/a/level_0"),
    "inf-in-a-level": corrupt(set_value("modalities/a/level_1", (7, 0, 2), np.inf), "/modalities/a/level_1"),
    "minus-inf": corrupt(set_value("modalities/b/level_0", (0, 0), -np.inf), "/modalities/b/level_0"),
    "float16-inf": corrupt(float16_inf, "/modalities/b/level_0"),
    "empty-level": corrupt(replace("modalities/b/level_0", np.zeros((ROWS, 0))), "/modalities/b/level_0"),
    "no-rows": corrupt(no_rows),
    "level-rows-differ": corrupt(replace("modalities/b/level_0", lambda a: a[:-1]), "/modalities/b/level_0"),
    "integer-level": corrupt(replace("modalities/a/level_0", lambda a: a.astype(np.int32)), "/modalities/a/level_0"),
    "five-d-level": corrupt(replace("modalities/a/level_1", np.zeros((ROWS, 1, 1, 1, 1))), "/modalities/a/level_1"),
    "level-gap": corrupt(rename("modalities/a/level_1", "modalities/a/level_2"), "/modalities/a/level_1"),
    "stray-member": corrupt(rename("modalities/a/level_1", "modalities/a/deep"), "/modalities/a/deep"),
    # feature files: labels
    "label-value-2": corrupt(labels_where(lambda y: y.__setitem__((2, 1), 2)), "/labels"),
    "labels-rows": corrupt(replace("labels", lambda y: y[:-3]), "/labels"),
    "labels-1d": corrupt(replace("labels", lambda y: y[:, 0]), "/labels"),
    "no-labels-for-finetune": corrupt(delete("labels", "label_names"), "labels"),
    "no-positive-in-train": corrupt(labels_where(zero_rows(slice(0, 24))), "train"),
    "no-positive-in-test": corrupt(labels_where(zero_rows(slice(32, 40))), "test"),
    "label-names-count": corrupt(set_attr("label_names", json.dumps(["x", "y"])), "label_names"),
    # feature files: splits
    "splits-overlap": corrupt(with_split("dev", np.arange(20, 28)), "/splits/dev"),
    "split-repeats-a-row": corrupt(with_split("test", [32, 33, 33]), "/splits/test"),
    "split-index-out-of-range": corrupt(with_split("test", [32, 99]), "/splits/test"),
    "split-missing": corrupt(delete("splits/dev"), "/splits/dev"),
    "split-of-floats": corrupt(replace("splits/train", lambda s: s.astype(np.float64)), "/splits/train"),
    "empty-train-split": corrupt(with_split("train", []), "/splits/train"),
    "one-row-train-split": corrupt(with_split("train", [0]), "/splits/train"),
    "empty-dev-split": corrupt(with_split("dev", []), "/splits/dev"),
    "empty-test-split": corrupt(with_split("test", []), "/splits/test"),
    "too-few-labels-at-r": features_with(PIPELINE, "/splits/train", extra="label_ratio = 0.01\n"),
    # feature files: structure
    "format-attribute": corrupt(set_attr("format", "ssnas-features/0"), "format"),
    "no-modalities-attribute": corrupt(delete("modalities"), "modalities"),
    "one-modality": corrupt(set_attr("modalities", json.dumps(["a"])), "modalities"),
    "modalities-not-json": corrupt(set_attr("modalities", "[a, b"), "modalities"),
    "not-hdf5": text_file("hello\n"),
    "empty-file": text_file(""),
    "missing-file": recipe_text(features_recipe("{tmp}/nowhere.h5"), "nowhere.h5", "data.path"),
    "path-is-a-folder": recipe_text(features_recipe("{tmp}"), "data.path"),
    # genotypes
    "genotype-missing": recipe_text('[run]\nname = "bad"\nstage = "finetune"\ngenotype = "{tmp}/g.json"\n'
                                    '[data]\ndataset = "synthetic"\n', "g.json", "run.genotype"),
    "genotype-not-json": genotype_case("{not json", "genotype.json"),
    "genotype-unknown-op": genotype_case(unknown_op_genotype, "genotype.json", "warp"),
    "genotype-all-zero-ops": genotype_case(all_zero_genotype, "genotype.json", "zero"),
    "genotype-foreign-nodes": genotype_case(lambda p: p.write_text(json.dumps(
        random_genotype(("q[0]", "q[1]", "r[0]"), 2, 1, ("sum",), 2, __import__("random").Random(1)).to_dict())),
        "run.genotype", "q["),
    "genotype-nodes-unknown": genotype_case(lambda p: p.write_text(json.dumps(drawn(0))), "run.genotype_nodes",
                                            run_extra='genotype_nodes = { "a[0]" = "c[9]" }\n'),
    "genotype-deeply-nested": genotype_case("[" * 5000 + "]" * 5000, "genotype.json"),
    "unknown-baseline": recipe_text('[run]\nname = "bad"\nstage = "finetune"\ngenotype = "baseline:nope"\n'
                                    '[data]\ndataset = "synthetic"\n', "run.genotype", "nope"),
    # devices
    "device-cuda-7": recipe_text(TINY_SYNTHETIC.replace('stage = "search"\n', 'stage = "search"\ndevice = "cuda:7"\n'),
                                 "run.device", "cuda:7"),
    "device-cuda": recipe_text(TINY_SYNTHETIC.replace('stage = "search"\n', 'stage = "search"\ndevice = "cuda"\n'),
                               "run.device"),
    "device-name": recipe_text(TINY_SYNTHETIC.replace('stage = "search"\n', 'stage = "search"\ndevice = "gpu"\n'),
                               "run.device"),
    # checkpoints
    "checkpoint-text": checkpoint_case(lambda p: p.write_text("not a checkpoint\n")),
    "checkpoint-empty": checkpoint_case(lambda p: p.write_bytes(b"")),
    "checkpoint-of-a-search": checkpoint_case(torch_saved(lambda: {"stage": "search", "position": {"step": 3}}),
                                              "search"),
    "checkpoint-without-network": checkpoint_case(torch_saved(lambda: {"weights": [1, 2]})),
    "checkpoint-of-another-genotype": checkpoint_case(torch_saved(lambda: {
        "network": {}, "genotype": drawn(5), "best_epoch": 0}), "genotype"),
    "checkpoint-a-list": checkpoint_case(torch_saved(lambda: [1, 2, 3])),
    # recipes
    "unknown-section": recipe_text(TINY_SYNTHETIC + "[serch]\nepochs = 2\n", "serch"),
    "unknown-key": recipe_text(TINY_SYNTHETIC + "batchsize = 3\n", "search.batchsize"),
    "wrong-type": recipe_text(TINY_SYNTHETIC.replace("epochs = 1", 'epochs = "two"'), "search.epochs"),
    "label-ratio-zero": recipe_text(TINY_SYNTHETIC.replace('dataset = "synthetic"\n',
                                                           'dataset = "synthetic"\nlabel_ratio = 0\n'),
                                    "data.label_ratio"),
    "stages-out-of-order": recipe_text('[run]\nname = "bad"\nstage = "pipeline"\nstages = ["finetune", "search"]\n',
                                       "run.stages"),
    "toml-syntax": recipe_text("[run\nname = 1\n", "bad.toml"),
    "synthetic-train-too-small": recipe_text(TINY_SYNTHETIC.replace("train = 64", "train = 3"), "bad.toml",
                                             "data.synthetic.train"),
    "name-with-escape": recipe_text(TINY_SYNTHETIC.replace('name = "bad"', 'name = "x\\u001b[2J"'), "run.name"),
    "empty-sweep": recipe_text(TINY_SYNTHETIC + "[sweep]\nseed = []\n", "bad.toml", "seed"),
    "extends-missing": recipe_text('extends = "{tmp}/nothing.toml"\n', "nothing.toml"),
    "extends-cycle": extends_cycle,
    "extends-chain-1200": extends_chain(1200),
    # command-line arguments
    "set-without-equals": recipe_text(TINY_SYNTHETIC, "--set", args=("--set", "search.epochs")),
    "set-unknown-key": recipe_text(TINY_SYNTHETIC, "search.epoch", args=("--set", "search.epoch=2")),
    "gpus-not-numbers": recipe_text(TINY_SYNTHETIC, "--gpus", args=("--gpus", "abc")),
    "gpus-absent": recipe_text(TINY_SYNTHETIC, "--gpus", args=("--gpus", "7")),
    "max-parallel-zero": recipe_text(TINY_SYNTHETIC, "--max-parallel", args=("--max-parallel", "0")),
    "max-parallel-negative": recipe_text(TINY_SYNTHETIC, "--max-parallel", args=("--max-parallel", "-1")),
}


def run_rows(runs: Path) -> list[tuple[str, str]]:
    if not (runs / "registry.db").exists():
        return []
    registry = Registry(runs / "registry.db", create=False, readonly=True)
    try:
        return [(run.id, run.status) for run in registry.runs()]
    finally:
        registry.close()


def folders(runs: Path) -> set[str]:
    return {p.name for p in runs.iterdir() if p.is_dir()} if runs.is_dir() else set()


def one_error_line(lines: list[str]) -> str:
    """The one `Error: ...` line; anything else may only be click's usage header for a bad argument."""
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, lines
    assert all(line.startswith(("Usage: ", "Try ")) or not line.strip() for line in lines if line not in errors), lines
    return errors[0]


def refused(runs: Path, recipe: Path, args: tuple[str, ...]) -> list[str]:
    """Run `ssnas run` on a bad input; return the lines of its output, after checking the registry kept still."""
    before_rows, before_folders = run_rows(runs), folders(runs)
    result = CliRunner().invoke(main, ["--runs", str(runs), "run", str(recipe), "--detach", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert run_rows(runs) == before_rows  # no new row, nothing queued
    assert folders(runs) == before_folders
    return result.output.strip().splitlines()


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_in_one_line_before_any_run_exists(tmp_path, case):
    setup = CASES[case](tmp_path)
    recipe = tmp_path / "bad.toml"
    recipe.write_text(setup.recipe)
    error = one_error_line(refused(tmp_path / "runs", recipe, setup.args))
    for part in setup.expect:
        assert part in error, (part, error)


def test_there_are_at_least_sixty_bad_inputs():
    assert len(CASES) >= 60


def registry_garbage(runs: Path) -> None:
    runs.mkdir()
    (runs / "registry.db").write_bytes(b"this is not a database at all" * 40)


def registry_from_the_future(runs: Path) -> None:
    Registry(runs / "registry.db").close()
    with sqlite3.connect(runs / "registry.db") as conn:
        conn.execute("PRAGMA user_version = 99")


def runs_folder_is_a_file(runs: Path) -> None:
    runs.write_text("a file, not a folder\n")


@pytest.mark.parametrize("damage", [registry_garbage, registry_from_the_future, runs_folder_is_a_file],
                         ids=["not-sqlite", "newer-schema", "runs-is-a-file"])
def test_a_bad_runs_folder_is_refused_in_one_line(tmp_path, damage):
    runs = tmp_path / "runs"
    damage(runs)
    recipe = tmp_path / "ok.toml"
    recipe.write_text(TINY_SYNTHETIC)
    result = CliRunner().invoke(main, ["--runs", str(runs), "run", str(recipe), "--detach"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "runs" in one_error_line(result.output.strip().splitlines())
