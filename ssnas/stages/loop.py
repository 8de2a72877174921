"""The one training loop every stage runs, so that a stage supplies only what is its own.

A stage (search, pretrain, fine-tune, or a fourth) builds its networks and optimizers, then hands
`Loop.run` three functions: one optimizer step on a batch, the end of an epoch (its dev check and
metrics), and its part of a checkpoint. The loop owns what must work the same in every stage for a
stopped run to resume bit for bit: the position at step granularity, the batches (a function of
seed and epoch alone), step counting and the progress line, checkpoints at epoch ends and on stop
requests, and the choice of the best epoch on dev.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ssnas.reporting import Reporter
from ssnas.stages.training import Budget, NonFiniteLoss, StageStopped, epoch_batches

Batch = tuple[torch.Tensor, ...]  # one step's row indices: a batch of each row set the loop was given
StageState = Callable[[], dict[str, Any]]  # the stage's part of a checkpoint (its weights, optimizers, ...)


def stopped_before_start(stage: str) -> StageStopped:
    """A stop asked for before a stage's first step: there is nothing to save, and a resume starts afresh."""
    return StageStopped(f"{stage}: stopped before its first step")


@dataclass
class Position:
    """Where a stage is, at step granularity: what a checkpoint needs to resume exactly."""

    epoch: int = 0
    index: int = 0  # batches of `epoch` already done
    step: int = 0  # steps done in the whole stage
    losses: list[float] = field(default_factory=list)  # this epoch's losses so far
    side_losses: list[float] = field(default_factory=list)  # a second series (the search's arch loss)

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "index": self.index, "step": self.step, "losses": list(self.losses),
                "side_losses": list(self.side_losses), "torch_rng": torch.get_rng_state()}

    @classmethod
    def resume(cls, state: dict[str, Any]) -> Position:
        """The position saved in a checkpoint, restoring the global RNG that dropout draws from."""
        saved = state["position"]
        torch.set_rng_state(saved["torch_rng"])
        return cls(saved["epoch"], saved["index"], saved["step"], list(saved["losses"]), list(saved["side_losses"]))

    def next_epoch(self) -> None:
        self.epoch, self.index, self.losses, self.side_losses = self.epoch + 1, 0, [], []


@dataclass(frozen=True)
class DevCheck:
    """One epoch's dev check, as best-on-dev selection sees it."""

    score: float
    kept: dict[str, Any] = field(default_factory=dict)  # kept with the epoch if it wins (e.g. its threshold)


@dataclass
class Best:
    """Best-on-dev selection: the epoch whose dev score beats every earlier one, with what the stage
    keeps of it. `record` is what checkpoints carry and stages read back:
    `{key: score, "epoch": epoch, **check.kept, **keep()}`."""

    key: str  # the score's name in `record`: "dev_loss", "dev_f1"
    lower: bool  # whether a lower score is better
    keep: Callable[[], dict[str, Any]]  # a copy of what a winning epoch keeps (its weights), taken when it wins
    record: dict[str, Any]
    patience: int = 0  # stop after this many epochs without a better score (0: never)
    name: str = "dev score"  # how the log names the score

    @classmethod
    def start(cls, key: str, worst: float, keep: Callable[[], dict[str, Any]], *, lower: bool, patience: int = 0,
              name: str = "dev score", **kept: Any) -> Best:
        """The selection before any dev check: epoch -1 with a `worst` score that any check beats."""
        return cls(key, lower, keep, {key: worst, "epoch": -1, **kept, **keep()}, patience, name)

    def offer(self, check: DevCheck, epoch: int) -> None:
        best = self.record[self.key]
        if (check.score < best) if self.lower else (check.score > best):  # ties keep the earlier epoch
            self.record = {self.key: check.score, "epoch": epoch, **check.kept, **self.keep()}

    def stalled(self, epochs_done: int) -> bool:
        """Whether the last `patience` epochs brought no better score."""
        return self.patience > 0 and epochs_done - 1 - self.record["epoch"] >= self.patience


class Loop:
    """A stage's epochs from its position (the start, or a checkpoint) to `end`.

    A stage that runs several loops one after another (fine-tune's modes) numbers them on: each
    starts at `first_epoch` and `first_step`, and `total` is every loop's steps together (the
    progress line's denominator). `end` is an input, not derived, when it was saved: patience moves
    it, so a stage with patience keeps `loop.end` in its checkpoint state and passes it back.
    """

    def __init__(self, name: str, reporter: Reporter, budget: Budget, rows: Sequence[torch.Tensor], seed: int,
                 modules: Sequence[nn.Module], resume: dict[str, Any] | None = None, *, best: Best | None = None,
                 first_epoch: int = 0, first_step: int = 0, end: int | None = None, total: int | None = None,
                 label: str | None = None) -> None:
        self.name = name  # the stage, as progress lines, errors and checkpoints name it
        self.label = label or name  # how the log names this loop (e.g. "finetune (full)")
        self.reporter = reporter
        self.budget = budget
        self.rows = tuple(rows)
        self.seed = seed
        self.modules = modules  # put in training mode at each epoch's start (the dev check leaves them in eval)
        self.best = best
        self.first_step = first_step
        self.end = first_epoch + budget.epochs if end is None else end
        self.total = budget.total if total is None else total
        self.at = Position(epoch=first_epoch, step=first_step)
        if resume is not None:
            self.at = Position.resume(resume)
            if best is not None:
                best.record = resume["best"]

    @property
    def progress(self) -> float:
        """The share of this loop's budget done: what its schedules (cosine learning rate) follow."""
        return (self.at.step - self.first_step) / self.budget.total

    def run(self, step: Callable[[Batch], torch.Tensor], end_epoch: Callable[[int, int], DevCheck | None],
            state: StageState) -> None:
        """Train to `end`. `step(batch)` takes one optimizer step and returns its loss; `end_epoch(epoch,
        step)` reports the epoch's own metrics and returns its dev check (None when the loop selects
        nothing on dev); `state()` is the stage's part of each checkpoint."""
        if self.at.step == 0 and self.reporter.should_stop():
            raise stopped_before_start(self.name)
        while self.at.epoch < self.end:
            for module in self.modules:
                module.train()
            for batch in epoch_batches(self.rows, self.budget, self.seed, self.at.epoch)[self.at.index :]:
                self._count(step(batch), state)
            self._close_epoch(end_epoch, state)

    def _count(self, loss: torch.Tensor, state: StageState) -> None:
        """Count the step, log its loss and, between two steps of an epoch, stop if asked to."""
        at = self.at
        at.step += 1
        at.index += 1
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLoss(f"{self.name}: loss became {value} in epoch {at.epoch}; lower the learning rate")
        at.losses.append(value)
        self.reporter.metric("loss", value, step=at.step, epoch=at.epoch, split="train")
        self.reporter.progress(self.name, at.step, self.total, value)
        if at.index < self.budget.per_epoch:
            self._stop_if_asked(state)

    def _close_epoch(self, end_epoch: Callable[[int, int], DevCheck | None], state: StageState) -> None:
        """Report the epoch, select on dev, checkpoint, then stop if asked to (or out of patience)."""
        at = self.at
        epoch, step = at.epoch, at.step
        self.reporter.metric("epoch_loss", sum(at.losses) / len(at.losses), step=step, epoch=epoch, split="train")
        check = end_epoch(epoch, step)
        if self.best is not None:
            assert check is not None, f"{self.name}: a loop that selects on dev needs a dev check every epoch"
            self.best.offer(check, epoch)
        at.next_epoch()
        if self.best is not None and self.best.stalled(at.epoch):
            self.reporter.event(f"{self.label}: no better {self.best.name} for {self.best.patience} epochs; "
                                f"stopped after epoch {epoch}")
            self.end = at.epoch
        self.reporter.checkpoint(self._checkpoint(state), epoch=epoch)
        if at.epoch < self.end:
            self._stop_if_asked(state)

    def _checkpoint(self, state: StageState) -> dict[str, Any]:
        best = {"best": self.best.record} if self.best is not None else {}
        return {"stage": self.name, "position": self.at.to_dict(), **state(), **best}

    def _stop_if_asked(self, state: StageState) -> None:
        """Between steps: when the run was asked to stop, save where it is and unwind."""
        if self.reporter.should_stop():
            self.reporter.checkpoint(self._checkpoint(state), epoch=self.at.epoch)
            raise StageStopped(f"{self.name}: stopped on request after step {self.at.step}")
