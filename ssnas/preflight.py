"""Everything a worker will need, checked before any run of a submission exists.

`ssnas run`, `resume`, `rerun` and the dashboard's launch call `check_stages` after the recipe itself
has been validated and before the registry is touched, so that a bad dataset, device or checkpoint is
one line at submission instead of a run that is created and then fails in its worker:

- the dataset in full: a features or MM-IMDB file is scanned (in chunks) for structure, finite
  values, large-enough splits and labels where a stage reads them; the synthetic set's split sizes;
- the device: `cuda` or `cuda:N` only where this machine has that GPU (local runs; a Ray cluster
  brings its own);
- a fine-tune's `run.checkpoint`: loadable, a pretrained network (not another stage's resume
  checkpoint), pretrained for the genotype the run will train.

Torch is imported only to open a checkpoint. The worker checks the data again when it loads it, in
case the file changed in between.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssnas.config.data import SyntheticConfig, is_plugin_dataset
from ssnas.data.dataset_nodes import dataset_node_names
from ssnas.data.feature_check import SplitNeeds, check_feature_file
from ssnas.data.mmimdb_file import check_mmimdb_file
from ssnas.errors import DatasetError, GenotypeError, RecipeError
from ssnas.nas.binding import given_genotype
from ssnas.recipe import Recipe
from ssnas.scheduling.environment import detect_gpus

# Rows a stage needs at least. A search trains on two disjoint halves of its rows (weights, architecture),
# each a batch of two or more (batch norm and the contrastive loss need two); pretraining and fine-tuning
# need a batch of two to train and one row to score.
SEARCH_ROWS = 4
TRAIN_ROWS = 2


@dataclass(frozen=True)
class StageRun:
    """One stage run about to be queued: its recipe, its stage, and whether a parent run feeds it."""

    recipe: Recipe
    stage: str
    has_parent: bool = False


def rows_for(labeled: int, label_ratio: float) -> int:
    """The fewest rows of a split whose labeled subset (`ceil(r * n)` rows, ssnas.data.splits) has `labeled` rows."""
    rows = max(1, math.floor((labeled - 1) / label_ratio))
    while max(1, math.ceil(label_ratio * rows)) < labeled:
        rows += 1
    return rows


def split_needs(recipe: Recipe, stages: Iterable[str]) -> SplitNeeds:
    """What these stages of `recipe` read: rows per split and the splits whose labels they use."""
    ratio = recipe.data.label_ratio
    rows: dict[str, int] = {}
    labeled: set[str] = set()

    def need(split: str, count: int) -> None:
        rows[split] = max(rows.get(split, 0), count)

    for stage in stages:
        if stage == "search":
            objective = recipe.search_config().objective
            need("train", rows_for(SEARCH_ROWS, ratio) if objective == "supervised" else SEARCH_ROWS)
            if objective != "ssl":
                labeled.add("train")
        elif stage == "pretrain":
            need("train", TRAIN_ROWS)
            need("dev", 1)
        else:  # finetune: r of the training labels, model selection on dev, the score on test
            need("train", rows_for(TRAIN_ROWS, ratio))
            need("dev", 1)
            need("test", 1)
            labeled.update(("train", "dev", "test"))
    return SplitNeeds(rows, frozenset(labeled))


def check_stages(runs: Sequence[StageRun], *, local: bool = True) -> list[str]:
    """Refuse (an `SsnasError` naming the file and key) what would stop a worker; return warnings, once each.

    Each dataset is checked once, for what all its runs need together; `local` runs also have their
    device checked against this machine's GPUs.
    """
    warnings: list[str] = []
    for (dataset, path, options), (where, needs) in _needs_by_dataset(runs).items():
        for warning in _check_data(where, dataset, path, json.loads(options), needs):
            if warning not in warnings:
                warnings.append(warning)
    gpus: list[str] | None = None
    for run in runs:
        recipe = run.recipe
        if local and recipe.run.device.startswith("cuda"):
            gpus = detect_gpus() if gpus is None else gpus
            _check_device(recipe, gpus)
        if run.stage == "finetune" and not run.has_parent and recipe.run.checkpoint is not None:
            _check_checkpoint(recipe)
    return warnings


def _needs_by_dataset(runs: Sequence[StageRun]) -> dict[tuple[str, str | None, str], tuple[str, SplitNeeds]]:
    """Per dataset (kind, path, options): the recipe an error names, and what all its runs need together."""
    merged: dict[tuple[str, str | None, str], tuple[str, SplitNeeds]] = {}
    for run in runs:
        data = run.recipe.data
        key = (data.dataset, data.path, json.dumps(data.options, sort_keys=True))
        needs = split_needs(run.recipe, [run.stage])
        if key in merged:
            before = merged[key][1]
            rows = {split: max(before.min_rows.get(split, 0), needs.min_rows.get(split, 0))
                    for split in {*before.min_rows, *needs.min_rows}}
            needs = SplitNeeds(rows, before.labeled | needs.labeled)
        merged[key] = (run.recipe.path, needs)
    return merged


def _check_data(where: str, dataset: str, path: str | None, options: Mapping[str, Any], needs: SplitNeeds) -> list[str]:
    if is_plugin_dataset(dataset):
        from ssnas.data.plugin_dataset import DatasetPlugin

        try:
            return DatasetPlugin.named(dataset).check(path, options, needs)
        except DatasetError as err:
            raise RecipeError(f"{where}: {err}") from None
    if dataset == "features" and path is not None:
        return check_feature_file(path, needs)
    if dataset == "mmimdb" and path is not None:
        limit = options.get("limit")
        short = [(split, rows) for split, rows in needs.min_rows.items() if limit is not None and limit < rows]
        if short:
            split, rows = short[0]
            raise RecipeError(f"{where}: data.mmimdb.limit: {limit} rows per split, but this run's stages need at "
                              f"least {rows} in the {split} split")
        return check_mmimdb_file(path, needs)
    if dataset == "synthetic":
        sizes = SyntheticConfig(**options)
        for split, rows in needs.min_rows.items():
            if getattr(sizes, split) < rows:
                raise RecipeError(f"{where}: data.synthetic.{split}: {getattr(sizes, split)} rows, but this run's "
                                  f"stages need at least {rows}")
    return []


def _check_device(recipe: Recipe, gpus: Sequence[str]) -> None:
    device = recipe.run.device
    if not gpus:
        raise RecipeError(f"{recipe.path}: run.device: {device!r}, but this machine has no GPU (nvidia-smi finds "
                          "none); use \"auto\" or \"cpu\"")
    index = device.partition(":")[2]
    if index and index not in gpus:
        raise RecipeError(f"{recipe.path}: run.device: {device!r}, but this machine's GPUs are {', '.join(gpus)}")


def _check_checkpoint(recipe: Recipe) -> None:
    """A fine-tune's checkpoint is a `pretrained.pt`: a network and the genotype it was pretrained for, which
    must be the genotype this run trains (else its weights do not fit)."""
    path = str(recipe.run.checkpoint)
    where = f"{recipe.path}: run.checkpoint: {path}"
    state = _load_checkpoint(Path(path), where)
    if "network" not in state:
        stage = state.get("stage")
        kind = f"a {stage} run's resume checkpoint" if isinstance(stage, str) else "not a pretrained network"
        raise RecipeError(f"{where}: {kind}; give a pretrain run's pretrained.pt")
    if not isinstance(state["network"], Mapping) or not isinstance(state.get("genotype"), Mapping):
        raise RecipeError(f"{where}: not a pretrained network (no network weights and genotype in it)")
    if recipe.run.genotype is None:
        return
    data = recipe.data
    try:
        names = dataset_node_names(data.dataset, data.path, data.options)
        expected = given_genotype(recipe.run.genotype, names, recipe.run.genotype_nodes, recipe.space_config(),
                                  recipe.run.seed, data.path or f"the {data.dataset} data")
    except (DatasetError, GenotypeError) as err:
        raise RecipeError(f"{recipe.path}: {err}") from None
    if dict(state["genotype"]) != expected.to_dict():
        raise RecipeError(f"{where}: pretrained for another genotype than run.genotype "
                          f"({recipe.run.genotype}); its weights would not fit")


def _load_checkpoint(path: Path, where: str) -> dict[str, Any]:
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise RecipeError(f"{where}: not a checkpoint (not a file torch.save wrote, or one holding more than "
                          "weights)") from None
    except Exception as err:  # noqa: BLE001 - whatever the file holds, the user gets one line naming it
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RecipeError(f"{where}: not a checkpoint torch can load ({reason})") from None
    if not isinstance(state, dict):
        raise RecipeError(f"{where}: not a checkpoint saved by ssnas (a {type(state).__name__}, not a dict)")
    return state
