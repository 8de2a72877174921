"""The Reporter interface every stage writes to, and the in-process reporters.

Stages never print or write files for tracking themselves; they call a Reporter. The worker's
reporter (registry + TensorBoard) implements the same methods.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from ssnas.nas.derive import ArchWeights
from ssnas.nas.genotype import Genotype


class Reporter(Protocol):
    def metric(self, key: str, value: float, *, step: int, epoch: int | None = None, split: str | None = None) -> None:
        """One scalar, e.g. key="loss", split="train"."""

    def arch_weights(self, weights: ArchWeights, *, step: int, epoch: int) -> None:
        """The softmaxed architecture weights at this point of a search."""

    def genotype(self, genotype: Genotype, *, step: int, epoch: int) -> None:
        """The genotype derived at this point of a search (or the one a stage trains)."""

    def checkpoint(self, state: dict[str, Any], *, epoch: int) -> None:
        """Everything needed to rebuild and resume the stage after `epoch`."""

    def progress(self, stage: str, done: int, total: int, loss: float | None = None) -> None:
        """How far the stage has got, for a progress line; cheap, called every step."""

    def event(self, message: str, level: str = "info") -> None:
        """Something a person should read in the run's log."""

    def should_stop(self) -> bool:
        """Whether the run was asked to stop; stages check it between steps."""


@dataclass
class MetricRow:
    key: str
    value: float
    step: int
    epoch: int | None
    split: str | None


@dataclass
class InMemoryReporter:
    """Keeps everything in lists: for tests, notebooks and the in-process pipeline."""

    metrics: list[MetricRow] = field(default_factory=list)
    arch_history: list[tuple[int, int, ArchWeights]] = field(default_factory=list)
    genotypes: list[tuple[int, int, Genotype]] = field(default_factory=list)
    checkpoints: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    keep_checkpoints: int = 1
    stop_after: int | None = None  # tests: ask the stage to stop once this many steps were reported
    steps_seen: int = 0

    def metric(self, key: str, value: float, *, step: int, epoch: int | None = None, split: str | None = None) -> None:
        self.metrics.append(MetricRow(key, float(value), step, epoch, split))

    def arch_weights(self, weights: ArchWeights, *, step: int, epoch: int) -> None:
        self.arch_history.append((step, epoch, weights))

    def genotype(self, genotype: Genotype, *, step: int, epoch: int) -> None:
        self.genotypes.append((step, epoch, genotype))

    def checkpoint(self, state: dict[str, Any], *, epoch: int) -> None:
        self.checkpoints.append((epoch, copy.deepcopy(state)))
        del self.checkpoints[: -self.keep_checkpoints]

    def progress(self, stage: str, done: int, total: int, loss: float | None = None) -> None:
        self.steps_seen = done

    def event(self, message: str, level: str = "info") -> None:
        self.events.append((level, message))

    def should_stop(self) -> bool:
        return self.stop_after is not None and self.stop_after <= self.steps_seen

    def values(self, key: str, split: str | None = None) -> list[float]:
        """The series of one metric, in the order reported."""
        return [row.value for row in self.metrics if row.key == key and (split is None or row.split == split)]


@dataclass
class ConsoleReporter(InMemoryReporter):
    """An in-memory reporter that also draws a live progress line on a terminal."""

    stream: TextIO = sys.stderr
    width: int = 24
    _last_draw: float = 0.0

    def progress(self, stage: str, done: int, total: int, loss: float | None = None) -> None:
        """Redraw one line on a terminal; into a file or pipe, write a line per tenth of the work."""
        interactive = self.stream.isatty()
        if interactive:
            now = time.monotonic()
            if done < total and now - self._last_draw < 0.1:
                return
            self._last_draw = now
        elif done < total and done % max(1, total // 10):
            return
        filled = int(self.width * done / max(total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        loss_text = f"  loss {loss:.4f}" if loss is not None else ""
        line = f"{stage:<9} [{bar}] {done}/{total}{loss_text}"
        if interactive:
            self.stream.write(f"\r{line}   " + ("\n" if done >= total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def event(self, message: str, level: str = "info") -> None:
        super().event(message, level)
        self.stream.write(f"{message}\n")
        self.stream.flush()
