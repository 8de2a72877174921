"""A study's trials as the registry records them, for `ssnas report study:NAME`, the dashboard and the end of
`ssnas tune`: each trial's sampled values (from its runs' configs), state, objective and test F1, and the
best complete trial, chosen on the objective (dev) alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssnas.recipe.tuning import TuneSection
from ssnas.registry import Registry
from ssnas.tune.files import StudySpec
from ssnas.tune.trials import STUDY_TAG, mean_test_f1, outcome, runs_by_trial


@dataclass(frozen=True)
class TrialRow:
    """One trial: its number, state, sampled values, objective (complete trials) and test F1 (shown only)."""

    number: int
    state: str
    params: dict[str, Any]
    value: float | None
    test_f1: float | None
    group: str | None
    runs: tuple[str, ...]  # short ids, in start order
    reason: str | None  # why it failed


@dataclass(frozen=True)
class StudySummary:
    name: str
    objective: str
    direction: str
    keys: tuple[str, ...]
    spec_found: bool  # False: tune/NAME.json is missing, the objective is the default one
    trials: tuple[TrialRow, ...]
    best: int | None  # the best complete trial's number

    def columns(self) -> list[str]:
        return ["trial", "state", *self.keys, self.objective.removeprefix("metric."), "test F1", "runs"]

    def cells(self) -> list[list[str]]:
        """One row of text per trial, the best marked `*`."""
        return [[f"{row.number}{'*' if row.number == self.best else ''}", row.state,
                 *(_value(row.params.get(key)) for key in self.keys),
                 _value(row.value), _value(row.test_f1), " ".join(row.runs)] for row in self.trials]

    def notes(self) -> list[str]:
        counts = {state: sum(row.state == state for row in self.trials) for state in
                  ("complete", "pruned", "failed", "running")}
        lines = [f"study {self.name}: {len(self.trials)} trial(s) in the registry ("
                 + ", ".join(f"{n} {state}" for state, n in counts.items() if n) + ")"]
        best = next((row for row in self.trials if row.number == self.best), None)
        if best is not None:
            values = ", ".join(f"{key}={_value(best.params.get(key))}" for key in self.keys)
            lines.append(f"best (*): trial {best.number}, {self.objective} {_value(best.value)} ({self.direction}); "
                         f"{values}")
        lines.append(f"{self.objective}: the last stage's dev value at the epoch it kept, mean over a trial's chains; "
                     "test F1 is shown, never chosen on")
        if not self.spec_found:
            lines.append(f"tune/{self.name}.json is missing: the default objective is assumed and no values shown")
        for row in self.trials:
            if row.reason:
                lines.append(f"trial {row.number} {row.state}: {row.reason}")
        return lines


def study_summary(registry: Registry, name: str) -> StudySummary:
    """The study's trials from the registry (and the study's spec file in the runs folder beside it)."""
    spec = StudySpec.load(Path(registry.path).parent, name)
    objective = spec.objective if spec else TuneSection.objective
    direction = spec.direction if spec else TuneSection.direction
    keys = spec.keys if spec else ()
    metric = objective.removeprefix("metric.dev.")
    rows = []
    for number, runs in sorted(runs_by_trial(registry, name, config=True).items()):
        result = outcome(registry, runs, metric)
        first = runs[0]
        rows.append(TrialRow(number, result.state, {key: first.setting(key) for key in keys}, result.value,
                             mean_test_f1(runs), first.group_id, tuple(run.short_id for run in runs), result.reason))
    complete = [row for row in rows if row.value is not None]
    pick = max if direction == "maximize" else min
    best = pick(complete, key=lambda row: row.value or 0.0).number if complete else None
    return StudySummary(name, objective, direction, tuple(keys), spec is not None, tuple(rows), best)


def study_of_tag(tag: str) -> str | None:
    """The study a `study:NAME` tag names, or None for any other selection."""
    return tag.removeprefix(STUDY_TAG) if tag.startswith(STUDY_TAG) and len(tag) > len(STUDY_TAG) else None


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
