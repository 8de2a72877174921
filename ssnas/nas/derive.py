"""From relaxed architecture weights to a discrete genotype (no torch).

The supernet softmaxes its `cell_input`, `step_input` and `step_op` parameters and hands them over
as plain nested floats, so that deriving, logging and testing the decision rule need no network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ssnas.errors import GenotypeError
from ssnas.nas.genotype import CellGene, Genotype, StepGene
from ssnas.nas.vocabulary import known_primitives

Pair = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True)
class ArchWeightRecord:
    """One architecture weight as a flat row, for metric logs and the TUI."""

    kind: str  # "cell_input" | "step_input" | "step_op"
    cell: int
    step: int | None  # None for cell_input
    slot: int | None  # 0 or 1 for inputs, None for step_op
    choice: str  # node name ("image[2]", "cell0"), "in0"/"in1"/"step0", or a primitive name
    weight: float


@dataclass(frozen=True)
class ArchWeights:
    """Softmaxed architecture weights of a supernet, validated against the space's shape.

    Nested lists (e.g. from `tensor.tolist()`) are accepted and stored as tuples of floats.
    """

    input_names: tuple[str, ...]
    primitives: tuple[str, ...]
    cell_input: tuple[Pair, ...]  # per cell k: two slots over num_inputs + k candidates
    step_input: tuple[tuple[Pair, ...], ...]  # per cell, per step j: two slots over 2 + j candidates
    step_op: tuple[tuple[tuple[float, ...], ...], ...]  # per cell, per step: over primitives
    cell_multiplier: int

    def __post_init__(self) -> None:
        names = _strings(self.input_names, "input_names")
        primitives = _strings(self.primitives, "primitives")
        if len(names) < 2:
            raise GenotypeError(f"input_names: need at least two input nodes, got {list(names)!r}")
        known = known_primitives()
        for p in primitives:
            if p not in known:
                raise GenotypeError(f"primitives: {p!r} is not a primitive (known: {', '.join(known)})")
        if all(p == "zero" for p in primitives):
            raise GenotypeError(f"primitives: need a non-zero primitive, got {list(primitives)!r}")
        cells = len(_seq(self.cell_input, "cell_input"))
        if cells < 1:
            raise GenotypeError("cell_input: need at least one cell")
        cell_input = tuple(
            _slots(slots, f"cell_input[{k}]", len(names) + k) for k, slots in enumerate(self.cell_input)
        )
        step_input = _per_cell(self.step_input, "step_input", cells)
        step_op = _per_cell(self.step_op, "step_op", cells)
        step_input = tuple(
            tuple(_slots(s, f"step_input[{k}][{j}]", 2 + j) for j, s in enumerate(steps))
            for k, steps in enumerate(step_input)
        )
        step_op = tuple(
            tuple(_floats(w, f"step_op[{k}][{j}]", len(primitives)) for j, w in enumerate(ops))
            for k, ops in enumerate(step_op)
        )
        for k in range(cells):
            if not step_input[k] or len(step_input[k]) != len(step_op[k]):
                raise GenotypeError(
                    f"step_input[{k}]: {len(step_input[k])} steps but step_op[{k}] has {len(step_op[k])}"
                    " (need the same number, at least one)"
                )
        if isinstance(self.cell_multiplier, bool) or not isinstance(self.cell_multiplier, int) \
                or not 1 <= self.cell_multiplier <= cells:
            raise GenotypeError(f"cell_multiplier: {self.cell_multiplier!r} is not in 1..{cells}")
        for attr, value in (("input_names", names), ("primitives", primitives), ("cell_input", cell_input),
                            ("step_input", step_input), ("step_op", step_op)):
            object.__setattr__(self, attr, value)

    @property
    def num_cells(self) -> int:
        return len(self.cell_input)

    def records(self) -> list[ArchWeightRecord]:
        """Every weight as a readable row: cell by cell, its input slots, then per step its input
        slots and primitives."""
        rows = []
        for k, slots in enumerate(self.cell_input):
            names = self.input_names + tuple(f"cell{i}" for i in range(k))
            rows += _slot_records("cell_input", k, None, slots, names)
            for j, (step_slots, ops) in enumerate(zip(self.step_input[k], self.step_op[k], strict=True)):
                local = ("in0", "in1") + tuple(f"step{i}" for i in range(j))
                rows += _slot_records("step_input", k, j, step_slots, local)
                rows += [ArchWeightRecord("step_op", k, j, None, p, w)
                         for p, w in zip(self.primitives, ops, strict=True)]
        return rows


def derive(weights: ArchWeights) -> Genotype:
    """The genotype the weights favour: per cell and step, the ordered pair of distinct inputs
    with the largest product of slot weights, and the strongest primitive other than `zero`
    (which would make the step a no-op); each cell outputs all its steps, the head reads the last
    `cell_multiplier` cells. Ties go to the lower index, so derivation is deterministic."""
    op_candidates = [i for i, p in enumerate(weights.primitives) if p != "zero"]
    cells = []
    for k, slots in enumerate(weights.cell_input):
        steps = tuple(
            StepGene(_best_pair(step_slots), weights.primitives[_argmax(ops, op_candidates)])
            for step_slots, ops in zip(weights.step_input[k], weights.step_op[k], strict=True)
        )
        cells.append(CellGene(_best_pair(slots), steps, tuple(range(2, 2 + len(steps)))))
    n, c = len(weights.input_names), len(cells)
    return Genotype(weights.input_names, tuple(cells), tuple(range(n + c - weights.cell_multiplier, n + c)))


def _best_pair(slots: Pair) -> tuple[int, int]:
    """argmax over a != b of slots[0][a] * slots[1][b], first in (a, b) order on ties."""
    best, best_score = (0, 1), -math.inf
    for a, wa in enumerate(slots[0]):
        for b, wb in enumerate(slots[1]):
            if a != b and wa * wb > best_score:
                best, best_score = (a, b), wa * wb
    return best


def _argmax(values: Sequence[float], candidates: Sequence[int]) -> int:
    best = candidates[0]
    for i in candidates[1:]:
        if values[i] > values[best]:
            best = i
    return best


def _slot_records(kind: str, cell: int, step: int | None, slots: Pair, names: Sequence[str]) -> list[ArchWeightRecord]:
    return [
        ArchWeightRecord(kind, cell, step, slot, name, w)
        for slot, dist in enumerate(slots)
        for name, w in zip(names, dist, strict=True)
    ]


# ---- shape checks: the supernet and this module must agree on the space, or derivation lies.


def _seq(value: Any, path: str) -> Sequence:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or not hasattr(value, "__iter__"):
        raise GenotypeError(f"{path}: expected a sequence, got {value!r}")
    return value


def _strings(value: Any, path: str) -> tuple[str, ...]:
    items = tuple(_seq(value, path))
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise GenotypeError(f"{path}[{i}]: expected a name, got {item!r}")
    return items


def _floats(value: Any, path: str, length: int) -> tuple[float, ...]:
    items = tuple(_seq(value, path))
    if len(items) != length:
        raise GenotypeError(f"{path}: {len(items)} weights, expected {length} (one per candidate)")
    out = []
    for i, item in enumerate(items):
        try:
            w = float(item)
        except (TypeError, ValueError):
            raise GenotypeError(f"{path}[{i}]: expected a number, got {item!r}") from None
        if not math.isfinite(w):
            raise GenotypeError(f"{path}[{i}]: {w} is not a finite weight (did the search diverge?)")
        out.append(w)
    return tuple(out)


def _slots(value: Any, path: str, length: int) -> Pair:
    items = tuple(_seq(value, path))
    if len(items) != 2:
        raise GenotypeError(f"{path}: expected two input slots, got {len(items)}")
    return (_floats(items[0], f"{path}[0]", length), _floats(items[1], f"{path}[1]", length))


def _per_cell(value: Any, path: str, cells: int) -> tuple:
    items = tuple(_seq(value, path))
    if len(items) != cells:
        raise GenotypeError(f"{path}: {len(items)} cells, but cell_input has {cells}")
    return tuple(tuple(_seq(item, f"{path}[{k}]")) for k, item in enumerate(items))
