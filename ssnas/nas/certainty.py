"""How sure a search is of each choice it makes (no torch).

A relaxed search ends with a distribution per choice; the derived genotype takes each argmax.
When the distributions are still near uniform, that argmax is the sign of a summed gradient, not
a decision, and a user must be told so. Per choice: the entropy normalized to [0, 1] (1 is
uniform), the top-1 minus top-2 margin, and the top-1 weight as a multiple of uniform. A choice
counts as decided when its top-1 weight is at least `DECIDED_RATIO` x uniform. A primitive is
judged among the primitives derivation may pick (all but `zero`).

Which choices are judged: every cell-input slot and every step's primitive. A step's input slots
choose among the cell's two inputs (and earlier steps): with one step per cell that is only which
input is the residual, so they are reported but do not make a search undecided.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ssnas.nas.derive import ArchWeightRecord, ArchWeights

DECIDED_RATIO = 1.5
JUDGED_KINDS = ("cell_input", "step_op")


@dataclass(frozen=True)
class ChoiceCertainty:
    kind: str  # "cell_input" | "step_input" | "step_op"
    cell: int
    step: int | None
    slot: int | None
    top: str  # the leading candidate's name
    entropy: float  # normalized to [0, 1]; 1 = uniform
    margin: float  # top-1 minus top-2 weight
    top_ratio: float  # top-1 weight / uniform weight

    @property
    def label(self) -> str:
        """e.g. `cells[0].inputs[1]`, `cells[1].steps[0].primitive`: the names `ssnas diff` uses."""
        if self.kind == "cell_input":
            return f"cells[{self.cell}].inputs[{self.slot}]"
        if self.kind == "step_input":
            return f"cells[{self.cell}].steps[{self.step}].inputs[{self.slot}]"
        return f"cells[{self.cell}].steps[{self.step}].primitive"

    @property
    def judged(self) -> bool:
        return self.kind in JUDGED_KINDS

    @property
    def decided(self) -> bool:
        return self.top_ratio >= DECIDED_RATIO


def certainty_of(names: Sequence[str], weights: Sequence[float], kind: str, cell: int, step: int | None,
                 slot: int | None) -> ChoiceCertainty:
    """The certainty of one distribution over `names`."""
    n = len(weights)
    total = sum(weights) or 1.0
    probs = sorted(((w / total, name) for w, name in zip(weights, names, strict=True)), reverse=True)
    entropy = -sum(p * math.log(p) for p, _ in probs if p > 0)
    if n == 1:  # nothing to choose: as decided as a choice can be
        return ChoiceCertainty(kind, cell, step, slot, probs[0][1], 0.0, 1.0, math.inf)
    second = probs[1][0]
    return ChoiceCertainty(kind, cell, step, slot, probs[0][1], entropy / math.log(n), probs[0][0] - second,
                           probs[0][0] * n)


def choice_certainties(records: Iterable[ArchWeightRecord | Mapping[str, Any]]) -> list[ChoiceCertainty]:
    """The certainty of every choice in a list of weight rows: `ArchWeights.records()` of a live
    supernet, or one epoch's rows of the registry's `arch_weights` table (dicts with the same
    fields, `step_index` for `step`), in the order given."""
    groups: dict[tuple, tuple[list[str], list[float]]] = {}
    for record in records:
        if isinstance(record, Mapping):
            key = (record["kind"], record["cell"], record.get("step_index", record.get("step")), record.get("slot"))
            choice, weight = record["choice"], record["weight"]
        else:
            key = (record.kind, record.cell, record.step, record.slot)
            choice, weight = record.choice, record.weight
        names, weights = groups.setdefault(key, ([], []))
        names.append(choice)
        weights.append(float(weight))
    return [certainty_of(*_derivable(key[0], names, weights), *key) for key, (names, weights) in groups.items()]


def _derivable(kind: str, names: list[str], weights: list[float]) -> tuple[list[str], list[float]]:
    """The candidates derivation may pick: a step's primitive is never `zero`, so its weight is left
    out (and the rest renormalized); otherwise a strong `zero` would pass for a decided primitive."""
    if kind != "step_op" or "zero" not in names or len(names) < 2:
        return names, weights
    kept = [(n, w) for n, w in zip(names, weights, strict=True) if n != "zero"]
    return [n for n, _ in kept], [w for _, w in kept]


@dataclass(frozen=True)
class SearchCertainty:
    """A summary over the judged choices: what the registry records per epoch and reports show."""

    mean_entropy: float
    min_margin: float
    min_top_ratio: float
    undecided: tuple[str, ...]  # labels of judged choices below DECIDED_RATIO

    @property
    def decided(self) -> bool:
        return not self.undecided

    def as_metrics(self) -> dict[str, float]:
        return {"arch_entropy": self.mean_entropy, "arch_margin": self.min_margin,
                "arch_top_ratio": self.min_top_ratio}

    def verdict(self, stage: str = "search") -> str:
        """One line for the run's events and log."""
        if self.decided:
            return (f"{stage}: decided: every cell input and primitive has its top weight at least "
                    f"{DECIDED_RATIO}x uniform (lowest {self.min_top_ratio:.2f}x, "
                    f"mean entropy {self.mean_entropy:.3f})")
        shown = ", ".join(self.undecided[:4]) + (", ..." if len(self.undecided) > 4 else "")
        return (f"{stage}: undecided: {len(self.undecided)} choice(s) have their top weight below {DECIDED_RATIO}x "
                f"uniform ({shown}; lowest {self.min_top_ratio:.2f}x, mean entropy {self.mean_entropy:.3f}); "
                "the genotype there is close to a coin toss: raise search.arch_lr or search.min_steps")


def summarize(choices: Iterable[ChoiceCertainty]) -> SearchCertainty:
    judged = [c for c in choices if c.judged]
    if not judged:
        return SearchCertainty(0.0, 0.0, 0.0, ())
    return SearchCertainty(
        mean_entropy=sum(c.entropy for c in judged) / len(judged),
        min_margin=min(c.margin for c in judged),
        min_top_ratio=min(c.top_ratio for c in judged),
        undecided=tuple(c.label for c in judged if not c.decided),
    )


def search_certainty(weights: ArchWeights) -> SearchCertainty:
    return summarize(choice_certainties(weights.records()))
