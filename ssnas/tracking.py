"""The worker's Reporter: buffers what a stage reports and writes it, off the training thread, to
the run registry and to TensorBoard event files under `runs/RUN_ID/tb/NAME-SHORTID/`, where TensorBoard
shows the run by name and id, with its HParams session ended by the status the worker gives `close`
(ssnas.tensorboard_run).

A flusher thread owns both writers (SQLite connections and event writers stay on one thread) and
writes every `flush_every` seconds in batches, together with the run's heartbeat and progress.
Checkpoints are the exception: they are written synchronously, after a flush, so that every row a
checkpoint covers is in the registry before the checkpoint counts.

The rows go to a sink, the worker's `WorkerRecords` (ssnas.records): the registry file itself on the
machine that holds it, or, on a Ray node, a link to the registry on the head (ssnas.cluster), which
also ships the run's files there whenever `on_files` says they changed.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ssnas.nas.derive import ArchWeights
from ssnas.nas.genotype import Genotype
from ssnas.records import WorkerRecords
from ssnas.registry import Registry
from ssnas.tensorboard_run import end_session, start_session, tensorboard_dir
from ssnas.writes import say, write_atomically

CHECKPOINT = "checkpoint.pt"


def scalar_hparams(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The recipe flattened to TensorBoard's hyperparameter types (numbers, strings, bools)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(scalar_hparams(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(str(v) for v in value)
    return flat


def arch_tag(kind: str, cell: int, step: int | None, slot: int | None, choice: str) -> str:
    """TensorBoard tag of one architecture weight, e.g. arch/step_op/cell0/step0/concat_fc."""
    parts = ["arch", kind, f"cell{cell}"]
    if step is not None:
        parts.append(f"step{step}")
    if slot is not None:
        parts.append(f"slot{slot}")
    return "/".join([*parts, choice])


class RunReporter:
    """Reporter of one worker's run (see `ssnas.reporting.Reporter`).

    `sink` is a registry file, or a function that opens the sink (called on the flusher thread,
    which then owns it). `on_files`, when given, is called after the run's files changed (event
    files flushed, a checkpoint written), from the thread that changed them. `name` names the run's
    TensorBoard folder; `purge_step` is the step this attempt starts from: TensorBoard drops what an
    earlier attempt logged from there on (its checkpoint's step + 1; 0 when the run starts over).
    """

    def __init__(self, sink: Path | Callable[[], WorkerRecords], run_id: str, run_dir: Path, hparams: dict[str, Any],
                 flush_every: float = 1.0, on_files: Callable[[], None] | None = None, *, name: str = "",
                 purge_step: int | None = None) -> None:
        if isinstance(sink, (str, Path)):
            sink = functools.partial(Registry, Path(sink), create=False)
        self._open_sink = sink
        self._on_files = on_files
        self.run_id = run_id
        self.run_dir = Path(run_dir)
        self.flush_every = flush_every
        self.tb_dir = tensorboard_dir(self.run_dir, name, run_id)
        self._purge_step = purge_step
        self._hparams = scalar_hparams(hparams)
        self._end_status: str | None = None  # how the run ended, given to close()
        self._lock = threading.Lock()
        self._metrics: list[tuple] = []
        self._arch: list[tuple] = []
        self._genotypes: list[tuple[int, int, Genotype]] = []
        self._events: list[tuple] = []
        self._progress: float | None = None
        self._stop_requested = threading.Event()
        self._closing = threading.Event()
        self._flush_now = threading.Event()
        self._flushed = threading.Condition(self._lock)
        self._generation = 0
        self._requested = 0  # write cycles owed to flush() callers, run back to back
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"reporter-{run_id}", daemon=True)
        self._thread.start()

    # --- the Reporter interface (called on the training thread; cheap) ---
    def metric(self, key: str, value: float, *, step: int, epoch: int | None = None, split: str | None = None) -> None:
        with self._lock:
            self._metrics.append((self.run_id, step, epoch, split, key, float(value), time.time()))

    def arch_weights(self, weights: ArchWeights, *, step: int, epoch: int) -> None:
        rows = [(self.run_id, step, epoch, r.kind, r.cell, r.step, r.slot, r.choice, r.weight)
                for r in weights.records()]
        with self._lock:
            self._arch.extend(rows)

    def genotype(self, genotype: Genotype, *, step: int, epoch: int) -> None:
        with self._lock:
            self._genotypes.append((step, epoch, genotype))

    def event(self, message: str, level: str = "info") -> None:
        with self._lock:
            self._events.append((self.run_id, time.time(), level, message))
        say(f"[{level}] {message}")

    def progress(self, stage: str, done: int, total: int, loss: float | None = None) -> None:
        self._progress = done / max(total, 1)

    def should_stop(self) -> bool:
        return self._stop_requested.is_set()

    def checkpoint(self, state: dict[str, Any], *, epoch: int) -> None:
        """Write the checkpoint atomically after flushing every row reported before it (a failed write
        leaves the last checkpoint and raises a WriteError with the OS's reason)."""
        self.flush()
        write_atomically(self.run_dir / CHECKPOINT, functools.partial(torch.save, state))
        if self._on_files is not None:
            self._on_files()
        self.event(f"checkpoint after epoch {epoch} (step {state['position']['step']})")

    # --- control ---
    def request_stop(self) -> None:
        """Ask the stage to stop at its next step boundary (safe to call from a signal handler)."""
        self._stop_requested.set()

    def flush(self, timeout: float = 60.0) -> None:
        """Block until everything reported so far is written."""
        with self._lock:
            target = self._generation + 2  # a whole write cycle that began after this call
            self._requested = max(self._requested, target)
            self._flush_now.set()
            self._flushed.wait_for(lambda: self._generation >= target or self._error is not None, timeout)
        self._raise_error()

    def close(self, status: str | None = None) -> None:
        """Write what is left, end the HParams session with `status` (how the run ended: finished, failed or
        killed; None leaves it open) and stop the flusher (raising what it failed on, closing its writers too)."""
        self.flush()
        self._end_status = status
        self._closing.set()
        self._flush_now.set()
        self._thread.join(timeout=60)
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"tracking failed: {self._error}") from self._error

    # --- the flusher thread ---
    def _run(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        try:  # opening the writers fails too on a full disk: every failure is surfaced by flush() and close()
            with contextlib.ExitStack() as opened:
                sink = self._open_sink()
                opened.callback(sink.close)
                writer = SummaryWriter(log_dir=str(self.tb_dir), purge_step=self._purge_step)
                opened.callback(writer.close)
                start_session(self.tb_dir, self._hparams)
                while True:
                    if self._generation >= self._requested:
                        self._flush_now.wait(self.flush_every)
                    self._flush_now.clear()
                    self._write(sink, writer)
                    with self._lock:
                        self._generation += 1
                        self._flushed.notify_all()
                    if self._closing.is_set():
                        self._end_session()
                        break
        except BaseException as error:
            with self._lock:
                self._error = error
                self._flushed.notify_all()

    def _end_session(self) -> None:
        if self._end_status is not None:
            end_session(self.tb_dir, self._end_status)
            if self._on_files is not None:
                self._on_files()

    def _write(self, sink: WorkerRecords, writer: Any) -> None:
        with self._lock:
            metrics, self._metrics = self._metrics, []
            arch, self._arch = self._arch, []
            genotypes, self._genotypes = self._genotypes, []
            events, self._events = self._events, []
        if metrics:
            sink.add_metrics(metrics)
            for _, step, _, split, key, value, wall in metrics:
                writer.add_scalar(f"{key}/{split}" if split else key, value, step, walltime=wall)
        if arch:
            sink.add_arch_weights(arch)
            for _, step, _, kind, cell, step_index, slot, choice, weight in arch:
                writer.add_scalar(arch_tag(kind, cell, step_index, slot, choice), weight, step)
        for step, epoch, genotype in genotypes:
            sink.add_genotype(self.run_id, step, epoch, genotype.to_json())
            writer.add_text("genotype", "    " + genotype.describe().replace("\n", "\n    "), step)
        if events:
            sink.add_events(events)
        sink.heartbeat(self.run_id, self._progress)
        writer.flush()
        if self._on_files is not None:
            self._on_files()
