"""`[tune]`: what `ssnas tune` samples and what it optimizes (docs/tune.md), as the resolved recipe holds it.

The table only describes a study; `ssnas run` ignores it and runs the recipe's own values, which is
the default a study is compared with. The registry never stores it: every trial is the recipe with
the sampled values set, as `--set` would set them. Reading the table is `tune_table.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

SAMPLERS = ("tpe", "random")
PRUNERS = ("none", "median")
DIRECTIONS = ("maximize", "minimize")
OBJECTIVE_PREFIX = "metric.dev."
# The dev metrics the stage that ends a chain logs after every epoch, and which way each is better.
DEV_METRICS: dict[str, dict[str, str]] = {
    "finetune": {f"f1_{average}": "maximize" for average in ("weighted", "macro", "micro", "samples")},
    "pretrain": {"epoch_loss": "minimize"},
}
Scalar = bool | int | float | str


@dataclass(frozen=True)
class Space:
    """One tuned key: numbers between `low` and `high` (on a log scale, or on a grid of `step`), or one of
    `choices`."""

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    choices: tuple[Scalar, ...] = ()

    def values(self) -> Iterator[tuple[str, Scalar]]:
        """(how a message names it, value) for each value that bounds the space: checking these checks it."""
        if self.choices:
            yield from ((f"choices[{i}]", value) for i, value in enumerate(self.choices))
        else:
            assert self.low is not None and self.high is not None
            yield from (("low", self.low), ("high", self.high))

    def to_dict(self) -> dict[str, Any]:
        """The table as a recipe writes it (defaults left out)."""
        if self.choices:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, **({"log": True} if self.log else {}),
                **({"step": self.step} if self.step is not None else {})}


@dataclass(frozen=True)
class TuneSection:
    """`[tune]`: the study's budget, objective, sampler, pruner and the space of each tuned key."""

    space: dict[str, Space]
    trials: int = 20
    parallel: int = 1
    objective: str = "metric.dev.f1_weighted"
    direction: str = "maximize"
    sampler: str = "tpe"
    pruner: str = "median"

    @property
    def metric(self) -> str:
        """The objective's metric key in the registry's dev split (`f1_weighted`)."""
        return self.objective.removeprefix(OBJECTIVE_PREFIX)

    def to_dict(self) -> dict[str, Any]:
        return {"trials": self.trials, "parallel": self.parallel, "objective": self.objective,
                "direction": self.direction, "sampler": self.sampler, "pruner": self.pruner,
                "space": {key: space.to_dict() for key, space in self.space.items()}}


def objective_problem(tune: TuneSection, last_stage: str) -> str | None:
    """Why a chain that ends with `last_stage` cannot be scored by the study's objective, or None."""
    if tune.metric in DEV_METRICS.get(last_stage, {}):
        return None
    logs = ", ".join(DEV_METRICS.get(last_stage, {})) or "no dev metric"
    needs = " or ".join(stage for stage, metrics in DEV_METRICS.items() if tune.metric in metrics)
    return f"the chain ends with {last_stage}, which logs {logs}; {tune.objective} needs a chain ending with {needs}"
