"""The rules of a recipe that span keys: which stages a run chains, what it needs to start (a genotype,
a checkpoint), which runs a no-search baseline allows, and that the files it names exist and fit the data."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ssnas.config.data import is_plugin_dataset
from ssnas.errors import DatasetError, GenotypeError
from ssnas.recipe.kinds import names_a_file
from ssnas.recipe.messages import Invalid, display, show
from ssnas.recipe.model import STAGES, DataSection, RunSection
from ssnas.recipe.schema import LEAVES

_GENOTYPE_NEEDED = "needed when the run starts with {first} (a genotype JSON file, 'baseline:NAME' or 'random')"


def stage_chain(run: Mapping[str, Any], explicit: bool) -> list[str]:
    """The stages a run executes: [stage] for one stage, `run.stages` (checked) for a pipeline;
    `explicit` when the recipe wrote `run.stages` itself."""
    stage, stages = run["stage"], run["stages"]
    if stage != "pipeline":
        if explicit and stages != [stage]:
            raise Invalid("run.stages", f"only a pipeline run lists stages (stage is {stage!r})")
        return [stage]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise Invalid("run.stages", f"{unknown[0]!r} is not one of {', '.join(STAGES)}")
    if not stages or [s for s in STAGES if s in stages] != stages:
        raise Invalid("run.stages", f"{show(stages)} is not a chain of search, pretrain, finetune "
                                    "(each at most once, in that order)")
    return stages


def check_start(run: Mapping[str, Any]) -> None:
    """A run that starts with search finds its genotype; any other needs one; only finetune takes a checkpoint."""
    first, genotype = run["stages"][0], run["genotype"]
    if first == "search" and genotype is not None:
        raise Invalid("run.genotype", "a run that starts with search finds its own genotype (remove it, "
                                      "or set run.stage to pretrain or finetune)")
    if first == "pretrain" and genotype is None:  # a finetune run's needs depend on finetune.model
        raise Invalid("run.genotype", _GENOTYPE_NEEDED.format(first=first))
    if genotype is not None and genotype.startswith("baseline:"):
        from ssnas.baselines import baseline_names

        name, known = genotype.removeprefix("baseline:"), baseline_names()
        if name not in known:
            raise Invalid("run.genotype", f"unknown baseline {name!r} (known: {', '.join(known)})")
    if run["genotype_nodes"] and genotype in (None, "random"):
        why = "a random genotype is drawn on the dataset's own nodes" if genotype else "this run has no run.genotype"
        raise Invalid("run.genotype_nodes", f"maps the nodes of a genotype file or baseline to the dataset's; {why}")
    if run["checkpoint"] is not None and first != "finetune":
        stages = ", ".join(run["stages"])
        raise Invalid("run.checkpoint", f"only a finetune run starts from a checkpoint (stages: {stages})")


def check_model(run: RunSection, finetune: Mapping[str, Any]) -> None:
    """A no-search baseline (`finetune.model` other than "nas") is a finetune run alone, with no genotype."""
    if finetune["model"] == "nas":
        if run.stages[0] == "finetune" and run.genotype is None:
            raise Invalid("run.genotype", _GENOTYPE_NEEDED.format(first="finetune"))
        return
    if list(run.stages) != ["finetune"]:
        raise Invalid("finetune.model", f"{finetune['model']!r} is a no-search baseline: it needs no search or "
                                        "pretraining (set run.stage = \"finetune\")")
    if run.genotype is not None or run.checkpoint is not None:
        key = "run.genotype" if run.genotype is not None else "run.checkpoint"
        raise Invalid(key, f"finetune.model {finetune['model']!r} is a no-search baseline and reads no genotype "
                           "or checkpoint (remove it)")


def check_files(run: RunSection, data: DataSection) -> None:
    """Every file the recipe names (each key whose type is a file reference) exists; a genotype file parses.
    A plugin's dataset may read a folder or anything else: its `data.path` is the plugin's to check."""
    tree = {"run": vars(run), "data": vars(data)}
    for key, kind in LEAVES.items():
        if key == "data.path" and is_plugin_dataset(data.dataset):
            continue
        path = _value_at(tree, key)
        if names_a_file(kind, path) and not os.path.isfile(path):
            problem = "not a file" if os.path.exists(path) else "file not found"
            raise Invalid(key, f"{display(path)}: {problem}")
    if run.genotype is not None and names_a_file(LEAVES["run.genotype"], run.genotype):
        from ssnas.nas.genotype import Genotype

        try:
            Genotype.load(display(run.genotype))
        except GenotypeError as err:
            raise Invalid("run.genotype", str(err)) from None


def _value_at(tree: Mapping[str, Any], key: str) -> Any:
    """The value of a dotted key in nested tables; None where a table or the key is absent."""
    value: Any = tree
    for part in key.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def check_binding(run: RunSection, data: DataSection) -> None:
    """A given genotype reads only input nodes the dataset has, by name or through run.genotype_nodes
    (ssnas.nas.binding), so that it is refused before any run exists rather than applied by position."""
    if run.genotype is None or run.genotype == "random":
        return
    from ssnas.data.dataset_nodes import dataset_node_names
    from ssnas.nas.binding import bind_given, load_given

    genotype = load_given(run.genotype)
    path = display(data.path) if data.path else None
    try:
        names = dataset_node_names(data.dataset, path, data.options)
    except DatasetError as err:
        raise Invalid("data.path", str(err)) from None
    try:
        bind_given(genotype, names, run.genotype_nodes, path or f"the {data.dataset} data")
    except GenotypeError as err:
        key, _, problem = str(err).partition(": ")
        raise Invalid(key, problem) from None
