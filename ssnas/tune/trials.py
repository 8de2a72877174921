"""A trial as the registry records it: its runs (tagged `study:NAME` and `trial:N`), its outcome, its
objective and the dev curve that pruning watches. The tuner tells Optuna what this reads, and the report
shows the same, so the two never disagree.

A trial is one submission of the recipe (one group); its chains end in the runs that have no children.
Its objective is the mean over those runs of the dev metric at the epoch each kept (fine-tuning keeps the
epoch, mode and threshold with the best dev F1 weighted; pretraining the epoch with the lowest dev loss).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ssnas.registry import Registry
from ssnas.run_record import ACTIVE, Run

STUDY_TAG = "study:"
TRIAL_TAG = "trial:"
PRUNED_TAG = "pruned"
STATES = ("running", "complete", "pruned", "failed")


def trial_tags(study: str, number: int) -> list[str]:
    return [f"{STUDY_TAG}{study}", f"{TRIAL_TAG}{number}"]


def trial_number(run: Run) -> int | None:
    """The trial a run belongs to, from its `trial:N` tag."""
    for tag in run.tags:
        if tag.startswith(TRIAL_TAG) and tag.removeprefix(TRIAL_TAG).isdigit():
            return int(tag.removeprefix(TRIAL_TAG))
    return None


def runs_by_trial(registry: Registry, study: str, config: bool = False) -> dict[int, list[Run]]:
    """Every run of the study by trial number, oldest first."""
    found: dict[int, list[Run]] = {}
    for run in registry.runs(tag=f"{STUDY_TAG}{study}", sort="created_at", config=config):
        number = trial_number(run)
        if number is not None:
            found.setdefault(number, []).append(run)
    return found


@dataclass(frozen=True)
class Outcome:
    """Where a trial stands: running, or ended complete (with its objective), pruned or failed (with why)."""

    state: str
    value: float | None = None
    reason: str | None = None


def outcome(registry: Registry, runs: Sequence[Run], metric: str) -> Outcome:
    """The trial's outcome from its runs as they are now. Pruned wins (its runs may still be stopping)."""
    if any(PRUNED_TAG in run.tags for run in runs):
        return Outcome("pruned")
    if not runs or any(run.status in ACTIVE for run in runs):
        return Outcome("running")
    unfinished = next((run for run in runs if run.status != "finished"), None)
    if unfinished is not None:
        why = f": {unfinished.error}" if unfinished.error else ""
        return Outcome("failed", reason=f"{unfinished.short_id} {unfinished.stage} {unfinished.status}{why}")
    values = [kept_value(registry, run, metric) for run in chain_ends(runs)]
    if any(value is None for value in values):
        return Outcome("failed", reason=f"a chain logged no dev {metric} at the epoch it kept")
    return Outcome("complete", statistics.fmean(v for v in values if v is not None))


def chain_ends(runs: Sequence[Run]) -> list[Run]:
    """The runs no other run of the trial starts from: the last stage of each chain."""
    parents = {run.parent_id for run in runs}
    return [run for run in runs if run.id not in parents]


def kept_epoch(registry: Registry, run: Run) -> int | None:
    """The epoch a finished stage kept: fine-tuning scores the test split once, at it; pretraining keeps the
    first epoch of lowest dev loss (ssnas.stages)."""
    if run.stage == "finetune":
        rows = registry.metrics(run.id, "f1_weighted", "test")
        return rows[-1]["epoch"] if rows else None
    rows = registry.metrics(run.id, "epoch_loss", "dev")
    return min(rows, key=lambda row: row["value"])["epoch"] if rows else None


def kept_value(registry: Registry, run: Run, metric: str) -> float | None:
    """The dev `metric` at the epoch the run kept."""
    epoch = kept_epoch(registry, run)
    rows = [row for row in registry.metrics(run.id, metric, "dev") if row["epoch"] == epoch]
    return rows[-1]["value"] if rows else None


def dev_curve(registry: Registry, runs: Sequence[Run], metric: str) -> dict[int, float]:
    """Epoch -> the dev `metric` so far, mean over the trial's chains, at the epochs every chain has reached."""
    curves = []
    for run in chain_ends(runs):
        curves.append({row["epoch"]: row["value"] for row in registry.metrics(run.id, metric, "dev")})
    common = set.intersection(*(set(curve) for curve in curves)) if curves else set()
    return {epoch: statistics.fmean(curve[epoch] for curve in curves) for epoch in sorted(common)}


def mean_test_f1(runs: Sequence[Run]) -> float | None:
    """Test F1 weighted, mean over the trial's fine-tuned chains: shown beside the objective, never chosen on."""
    values = [run.test_f1 for run in chain_ends(runs) if run.test_f1 is not None]
    return statistics.fmean(values) if values else None
