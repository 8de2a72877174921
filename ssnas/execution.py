"""From a registry run to a stage call: configs from the recipe, inputs from parent runs, outputs
into the run's folder. The worker process wraps this with status, signals and logging.

Outputs per stage, in `runs/RUN_ID/`: search -> `genotype.json`; pretrain -> `pretrained.pt`
(the network's weights and genotype); finetune -> `results.json` (test and dev F1, threshold).
A child run reads its parent's output: pretrain the searched genotype, finetune the pretrained
network (or, after a search, the genotype trained from scratch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ssnas.config.runtime import Runtime
from ssnas.data.datasets import load_dataset
from ssnas.data.pyramids import FeatureSet
from ssnas.data.standardize import standardized
from ssnas.errors import ConfigError, GenotypeError
from ssnas.nas.binding import bind, given_genotype
from ssnas.nas.genotype import Genotype
from ssnas.recipe import Recipe
from ssnas.reporting import Reporter
from ssnas.stages.finetune import finetune
from ssnas.stages.pretrain import pretrain
from ssnas.stages.search import search
from ssnas.writes import write_atomically, write_text

GENOTYPE_FILE = "genotype.json"
PRETRAINED_FILE = "pretrained.pt"
RESULTS_FILE = "results.json"


def features_of(recipe: Recipe) -> FeatureSet:
    """The recipe's dataset as every stage of it sees it (standardized on the training rows unless
    `data.standardize = false`)."""
    features = load_dataset(recipe.data.dataset, recipe.data.path, recipe.data.options)
    return standardized(features) if recipe.data.standardize else features


def genotype_from(reference: str, recipe: Recipe, features: FeatureSet) -> Genotype:
    """A recipe's `run.genotype` on the dataset's input nodes (`given_genotype`). The recipe was checked at
    `ssnas run`; this refuses again, in case the data changed since."""
    try:
        return given_genotype(reference, features.node_names, recipe.run.genotype_nodes, recipe.space_config(),
                              recipe.run.seed, _dataset(features))
    except GenotypeError as err:
        raise GenotypeError(f"{recipe.path}: {err}") from None


def _parent_genotype(parent_dir: Path, features: FeatureSet) -> Genotype:
    """Every stage leaves the genotype it searched or trained in its folder, bound to the same data."""
    path = parent_dir / GENOTYPE_FILE
    if not path.exists():
        raise ConfigError(f"{path}: the parent run left no genotype")
    genotype = Genotype.load(path)
    try:
        return bind(genotype, features.node_names, dataset=_dataset(features))
    except GenotypeError as err:
        raise GenotypeError(f"{path}: {err}") from None


def _dataset(features: FeatureSet) -> str:
    return features.source or "the dataset"


def run_stage(
    stage: str,
    recipe: Recipe,
    run_dir: Path,
    parent_dir: Path | None,
    reporter: Reporter,
    resume: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one stage of `recipe`; returns a small JSON-able summary of its result."""
    features = features_of(recipe)
    space, runtime, views = recipe.space_config(), recipe.runtime_config(), recipe.views_config()
    if stage == "search":
        result = search(features, space, recipe.search_config(), views, runtime, reporter, resume=resume)
        write_text(run_dir / GENOTYPE_FILE, result.genotype.to_json())
        return {"genotype": result.genotype.to_dict(), "decided": result.certainty.decided,
                "undecided": list(result.certainty.undecided), "seconds": result.seconds}

    finetune_config = recipe.finetune_config()
    if stage == "finetune" and finetune_config.model != "nas":  # a no-search baseline: no genotype
        return _finetune(features, None, None, recipe, runtime, reporter, run_dir, resume)
    if parent_dir is not None:
        genotype = _parent_genotype(parent_dir, features)
    elif recipe.run.genotype:
        genotype = genotype_from(recipe.run.genotype, recipe, features)
    else:
        raise ConfigError(f"{recipe.path}: run.genotype: a {stage} run without a parent needs one")
    write_text(run_dir / GENOTYPE_FILE, genotype.to_json())

    if stage == "pretrain":
        pretrained = pretrain(features, genotype, space, recipe.pretrain_config(), views, runtime, reporter,
                              resume=resume)
        saved = {"network": pretrained.network_state, "genotype": genotype.to_dict(),
                 "best_epoch": pretrained.best_epoch}
        write_atomically(run_dir / PRETRAINED_FILE, lambda file: torch.save(saved, file))
        return {"best_epoch": pretrained.best_epoch, "dev_loss": pretrained.dev_loss, "seconds": pretrained.seconds}

    network_state = None
    source = parent_dir / PRETRAINED_FILE if parent_dir is not None else None
    if source is None and recipe.run.checkpoint:
        source = Path(recipe.run.checkpoint)
    if source is not None and source.exists():
        network_state = torch.load(source, weights_only=True)["network"]
    return _finetune(features, genotype, network_state, recipe, runtime, reporter, run_dir, resume)


def _finetune(features: FeatureSet, genotype: Genotype | None, network_state: dict[str, torch.Tensor] | None,
              recipe: Recipe, runtime: Runtime, reporter: Reporter, run_dir: Path,
              resume: dict[str, Any] | None) -> dict[str, Any]:
    config = recipe.finetune_config()
    result = finetune(features, genotype, recipe.space_config(), config, runtime, reporter,
                      network_state=network_state, resume=resume)
    summary = {"test": result.test, "dev": result.dev, "threshold": result.threshold, "best_epoch": result.best_epoch,
               "labeled": result.labeled, "pretrained": network_state is not None, "model": config.model,
               "mode": result.mode, "steps": result.steps, "seconds": result.seconds}
    write_text(run_dir / RESULTS_FILE, json.dumps(summary, indent=2) + "\n")
    return summary
