"""Genotypes on datasets: input nodes are matched by name, never by position (DESIGN.md 10).

A genotype names its input nodes (`input_names`), and so does a dataset (ssnas.data.nodes). Applying
one to the other binds names: every input node the genotype's cells read must be a node of the
dataset, under its own name or the one a recipe's `run.genotype_nodes` maps it to. The bound
genotype has exactly the dataset's input names, in the dataset's order: the nodes the genotype
never reads are dropped, the dataset's other nodes are simply not read, and the cell indices move
with the input count. A genotype that does not fit is refused with the names at fault, so that an
architecture found on one dataset never runs silently on whatever nodes sit at the same positions
of another. Nothing here imports torch: recipes are checked with it before any run exists.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence

from ssnas.errors import GenotypeError
from ssnas.nas.genotype import Genotype, random_genotype
from ssnas.nas.space import SpaceConfig

GENOTYPE_KEY = "run.genotype"  # the recipe keys whose values bind_given checks
MAPPING_KEY = "run.genotype_nodes"  # genotype input node -> dataset input node


def load_given(reference: str) -> Genotype:
    """A recipe's `run.genotype` other than "random" (which is drawn on the dataset's own nodes):
    "baseline:NAME" or a genotype JSON path."""
    if reference.startswith("baseline:"):
        from ssnas.baselines import load_baseline

        return load_baseline(reference.removeprefix("baseline:"))
    return Genotype.load(reference)


def given_genotype(reference: str, node_names: Sequence[str], mapping: Mapping[str, str] | None, space: SpaceConfig,
                   seed: int, dataset: str = "the dataset") -> Genotype:
    """The genotype a recipe's `run.genotype` gives on a dataset's input nodes: "random" drawn on them (seeded
    by the run's seed), a baseline or a JSON file bound to them (`bind_given`). The worker trains it, and
    preflight compares a checkpoint's genotype with it."""
    if reference == "random":
        return random_genotype(tuple(node_names), space.cells, space.steps, space.primitives, space.cell_multiplier,
                               random.Random(seed))
    return bind_given(load_given(reference), node_names, mapping, dataset)


def check_node_mapping(genotype: Genotype, node_names: Sequence[str], mapping: Mapping[str, str] | None,
                       dataset: str = "the dataset") -> None:
    """Refuse a mapping that names a node the genotype or the dataset lacks, or sends two nodes onto one
    (an explicit target is taken even from a node of that name the genotype reads unmapped)."""
    onto: dict[str, str] = {}
    for source, target in (mapping or {}).items():
        if source not in genotype.input_names:
            raise GenotypeError(f"{source!r} is not an input node of {_label(genotype)} "
                                f"(its nodes: {', '.join(genotype.input_names)})")
        if target not in node_names:
            raise GenotypeError(f"{target!r} is not an input node of {dataset} (its nodes: {', '.join(node_names)})")
        if target in onto:
            raise GenotypeError(f"{onto[target]} and {source} both map onto {target}")
        onto[target] = source
    for name in genotype.used_input_names:
        if name in onto and name not in (mapping or {}):
            raise GenotypeError(f"{onto[name]} maps onto {name}, which {_label(genotype)} also reads as its own "
                                f"node {name} (map {name} too)")


def bind(genotype: Genotype, node_names: Sequence[str], mapping: Mapping[str, str] | None = None,
         dataset: str = "the dataset") -> Genotype:
    """`genotype` on a dataset's input nodes `node_names`: its nodes matched by name, or as `mapping`
    (genotype node -> dataset node) says for the nodes it names. The same genotype when it already
    has the dataset's names; a GenotypeError naming the nodes at fault when it cannot run there."""
    node_names = tuple(node_names)
    check_node_mapping(genotype, node_names, mapping, dataset)
    if not mapping and genotype.input_names == node_names:
        return genotype
    mapping = dict(mapping or {})
    taken = set(mapping.values())
    targets = {**{name: name for name in genotype.input_names if name in node_names and name not in taken}, **mapping}
    missing = [name for name in genotype.used_input_names if name not in targets]
    if missing:
        example = ", ".join(f'"{name}" = "..."' for name in missing)
        raise GenotypeError(f"{_label(genotype)} reads input nodes {', '.join(missing)}, which {dataset} does not "
                            f"have (its nodes: {', '.join(node_names)}); map them with {MAPPING_KEY} = {{{example}}}")
    n, m = genotype.num_inputs, len(node_names)

    def moved(index: int) -> int:
        return node_names.index(targets[genotype.input_names[index]]) if index < n else index - n + m

    cells = tuple(dataclasses.replace(cell, inputs=(moved(cell.inputs[0]), moved(cell.inputs[1])))
                  for cell in genotype.cells)
    return Genotype(node_names, cells, tuple(moved(i) for i in genotype.concat), genotype.name, genotype.source)


def bind_given(genotype: Genotype, node_names: Sequence[str], mapping: Mapping[str, str] | None = None,
               dataset: str = "the dataset") -> Genotype:
    """`bind` for a recipe's `run.genotype`: an error names the key at fault, `run.genotype_nodes: ...`
    for the mapping, `run.genotype: ...` for the genotype, as recipe checks and the worker report it."""
    try:
        check_node_mapping(genotype, node_names, mapping, dataset)
    except GenotypeError as err:
        raise GenotypeError(f"{MAPPING_KEY}: {err}") from None
    try:
        return bind(genotype, node_names, mapping, dataset)
    except GenotypeError as err:
        raise GenotypeError(f"{GENOTYPE_KEY}: {err}") from None


def bind_reference(reference: Genotype, node_names: Sequence[str],
                   mapping: Mapping[str, str] | None = None) -> Genotype | None:
    """A published genotype on a run's dataset, to compare the run's genotype with: through the run's
    `run.genotype_nodes` when they fit it, else by name; None when the dataset lacks nodes it reads
    (a similarity to it would then mean nothing)."""
    for attempt in ((mapping, None) if mapping else (None,)):
        try:
            return bind(reference, node_names, attempt)
        except GenotypeError:
            continue
    return None


def _label(genotype: Genotype) -> str:
    return f"genotype {genotype.name}" if genotype.name else "the genotype"
