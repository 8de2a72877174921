"""`ssnas features`: ssnas-features/1 files, from a dataset ssnas knows or from your own arrays.

`ssnas features DATASET OUTPUT` (the first form, before `from-arrays` existed) still works: a first
word that is not a subcommand goes to `ssnas features dataset`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click
from click_default_group import DefaultGroup

from ssnas.commands.common import UserError, reports_errors

if TYPE_CHECKING:
    import numpy as np


DATASETS = ("synthetic", "mmimdb", "features")


class _FeaturesGroup(DefaultGroup):
    """A DefaultGroup whose first word, when not a subcommand, must be a dataset: a mistyped
    `from-arays` is reported as such, not as a bad DATASET of `ssnas features dataset`."""

    def resolve_command(self, ctx: click.Context, args: list[str]):  # -> (name, command, args)
        word = args[0] if args else ""
        if word and not word.startswith("-") and word not in self.commands and word not in DATASETS:
            ctx.fail(f"{word!r} is neither a command ({', '.join(self.commands)}) "
                     f"nor a dataset ({', '.join(DATASETS)})")
        return super().resolve_command(ctx, args)


@click.group(cls=_FeaturesGroup, default="dataset")
def features() -> None:
    """Write ssnas-features/1 files: a known dataset's pyramids, or your own arrays (from-arrays).

    `ssnas features synthetic OUT.h5` is short for `ssnas features dataset synthetic OUT.h5`.
    """


@features.command("dataset")
@click.argument("dataset", type=click.Choice(DATASETS))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--path", "source", type=click.Path(), help="The dataset's file (mmimdb, features).")
@click.option("--image-weights", type=click.Path(), help="mmimdb: local VGG19 state_dict.")
@click.option("--text-weights", type=click.Path(), help="mmimdb: local text-MLP state_dict.")
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True)
@reports_errors
def dataset_command(dataset: str, output: str, source: str | None, image_weights: str | None,
                    text_weights: str | None, dtype: Literal["float16", "float32"]) -> None:
    """Precompute a dataset's feature pyramids into one ssnas-features/1 file that search reads fast."""
    if source is not None:
        _check_input(dataset, source)
    from ssnas.data.datasets import load_dataset
    from ssnas.data.features import write_features

    options = {}
    if dataset == "mmimdb":
        options = {"image_weights": image_weights, "text_weights": text_weights}
    data = load_dataset(dataset, source, options)
    path = write_features(data, output, dtype=dtype)
    click.echo(f"{path}: {data.num_samples} samples, nodes {', '.join(data.node_names)}")


@features.command("from-arrays")
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--view", "views", multiple=True, required=True, metavar="NAME=FILE[:KEY]",
              help="A level of modality NAME (.npz, .npy, .csv, .parquet); repeat NAME for deeper levels, in order.")
@click.option("--labels", "labels_spec", metavar="FILE[:KEY]",
              help="A class column (ids or names) or a multi-hot 0/1 matrix. Without it: unlabeled.")
@click.option("--label-names", type=click.Path(dir_okay=False), help="Class names, one per line (or a .json list).")
@click.option("--splits", "splits_file", type=click.Path(dir_okay=False),
              help="An .npz of train, dev and test row indices (instead of a seeded split).")
@click.option("--split", "fractions", metavar="TRAIN,DEV,TEST",
              help="Fractions of the seeded split, stratified by class for single-label data. [default: 0.6,0.2,0.2]")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--source", default=None, help="Free text: where the features came from. Default: the inputs.")
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default="float32", show_default=True)
@reports_errors
def from_arrays(output: str, views: tuple[str, ...], labels_spec: str | None, label_names: str | None,
                splits_file: str | None, fractions: str | None, seed: int, source: str | None, dtype: str) -> None:
    """Your own per-view arrays, labels and splits -> one checked ssnas-features/1 file."""
    from ssnas.data.array_files import load_splits
    from ssnas.data.convert import arrays_to_features
    from ssnas.data.feature_check import check_feature_file
    from ssnas.data.feature_format import summarize_feature_file

    if splits_file and fractions:
        raise UserError("--splits and --split exclude each other: give the splits or the fractions")
    if label_names and not labels_spec:
        raise UserError("--label-names needs --labels")
    specs = [view.partition("=")[2] for view in views] + [labels_spec, label_names, splits_file]
    _refuse_output_among_inputs(output, [spec for spec in specs if spec])
    # Errors name the user's own files and keys: each input's origin, by the argument it becomes.
    origins: dict[str, tuple[str, str]] = {"views": ("", "--view"), "fractions": ("", "--split")}
    levels = _read_views(views, origins)
    labels, names = _read_labels(labels_spec, label_names, origins) if labels_spec else (None, None)
    splits = None
    if splits_file:
        splits, split_origins = load_splits(splits_file)
        origins.update(split_origins)
    path = arrays_to_features(
        levels,
        output,
        labels=labels,
        label_names=names,
        splits=splits,
        fractions=_fractions(fractions) if fractions else (0.6, 0.2, 0.2),
        seed=seed,
        source=source if source is not None else _default_source(views, labels_spec),
        dtype=dtype,
        origins=origins,
    )
    # What the inputs allowed but a run would find degenerate (a class with no positive in the
    # given train split), said now rather than at `ssnas run`.
    _warn(check_feature_file(path))
    click.echo(f"{path}: {summarize_feature_file(path).describe()}")


def _check_input(dataset: str, source: str) -> None:
    """Refuse a bad input file whole before any work (and before torch loads), and print what is
    legal but degenerate as `warning:` lines: the same check `ssnas run` makes."""
    from ssnas.data.feature_check import check_feature_file
    from ssnas.data.mmimdb_file import check_mmimdb_file

    checks = {"features": check_feature_file, "mmimdb": check_mmimdb_file}
    if dataset in checks:
        _warn(checks[dataset](source))


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def _refuse_output_among_inputs(output: str, specs: list[str]) -> None:
    """Writing over an input would replace the user's data with the feature file."""
    from ssnas.data.array_files import split_spec

    if Path(output).resolve() in {split_spec(spec)[0].resolve() for spec in specs}:
        raise UserError(f"{output}: is also an input; write the feature file elsewhere")


def _read_views(views: tuple[str, ...], origins: dict[str, tuple[str, str]]) -> dict[str, list[np.ndarray]]:
    """`--view NAME=FILE[:KEY]` options -> {modality: levels}; a NAME repeated adds its next level."""
    from ssnas.data.array_files import load_array

    levels: dict[str, list[np.ndarray]] = {}
    for view in views:
        name, _, spec = view.partition("=")
        if not name or not spec:
            raise UserError(f"--view {view!r}: expected NAME=FILE[:KEY], e.g. image=features.npz:layer3")
        loaded = load_array(spec)
        origins[f"views[{name!r}][{len(levels.setdefault(name, []))}]"] = loaded.origin
        levels[name].append(loaded.array)
    return levels


def _read_labels(labels_spec: str, label_names: str | None,
                 origins: dict[str, tuple[str, str]]) -> tuple[np.ndarray, list[str] | None]:
    """(labels, class names or None); a multi-hot table's header names its classes unless --label-names."""
    from ssnas.data.array_files import load_array, load_names

    loaded = load_array(labels_spec, labels=True)
    origins["labels"] = loaded.origin
    if label_names:
        origins["label_names"] = (label_names, "")
        return loaded.array, load_names(label_names)
    if loaded.array.ndim == 2 and loaded.columns:
        origins["label_names"] = loaded.origin
        return loaded.array, list(loaded.columns)
    return loaded.array, None


def _default_source(views: tuple[str, ...], labels_spec: str | None) -> str:
    """The command's inputs, so that the file says where its features came from."""
    parts = [f"--view {view}" for view in views] + ([f"--labels {labels_spec}"] if labels_spec else [])
    return "ssnas features from-arrays " + " ".join(parts)


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        train, dev, test = (float(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"--split {text!r}: expected three fractions TRAIN,DEV,TEST, e.g. 0.6,0.2,0.2") from None
    return train, dev, test
