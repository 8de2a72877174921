"""The foreground view of `ssnas run`: status changes as lines, and how far each running run is.

It reads the registry (what the workers wrote), like every other reader. On a terminal each running
run has a live bar (stage, name, percent, elapsed time, ETA; drawn by rich, imported only then); into a
file or pipe a run's progress is a line at each tenth of its stage.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from ssnas.registry import Registry
from ssnas.run_record import Run
from ssnas.runs.format import duration, elapsed_seconds, printable

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


def eta_seconds(done_then: float, done_now: float, seconds: float) -> float | None:
    """Seconds left until done (1.0) at the pace from `done_then` to `done_now` over `seconds`; None while
    nothing moved."""
    if done_now <= done_then or seconds <= 0:
        return None
    return (1.0 - done_now) * seconds / (done_now - done_then)


class ProgressBars:
    """A rich progress bar per running run, redrawn in place under the lines printed through `say`.

    A run's pace is measured from the moment its progress first moved while this view watched: a worker's
    start-up (importing torch, loading data) is not taken for training speed.
    """

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        def text(template: str) -> TextColumn:  # run names are shown as they are, never read as markup
            return TextColumn(template, markup=False)

        columns = (text("{task.fields[run]}"), text("{task.fields[stage]:<8}"), BarColumn(),
                   text("{task.percentage:>3.0f}%"), text("{task.fields[elapsed]}"), text("ETA {task.fields[eta]}"),
                   text("{task.fields[loss]}"))
        self.progress: Progress = Progress(*columns, console=Console(file=stream, force_terminal=True, emoji=False),
                                           auto_refresh=False, transient=True, redirect_stdout=False,
                                           redirect_stderr=False)
        self.tasks: dict[str, TaskID] = {}
        self.since: dict[str, tuple[float, float, bool]] = {}  # run -> (when, progress, moved since then)

    def say(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def show(self, run: Run, loss: float | None, now: float | None = None) -> None:
        """Draw `run`'s bar while it runs; take it away once it does not."""
        if run.status != "running":
            if run.id in self.tasks:
                self.progress.remove_task(self.tasks.pop(run.id))
            return
        now = time.monotonic() if now is None else now
        done = run.progress or 0.0
        when, then, moved = self.since.get(run.id, (now, done, False))
        if not moved:  # the pace starts at the last look before the progress first moved
            moved = done != then
            when = when if moved else now
            self.since[run.id] = (when, then, moved)
        fields: dict[str, Any] = {"run": f"{run.short_id} {printable(run.name)}", "stage": run.stage,
                                  "elapsed": duration(elapsed_seconds(run)),
                                  "eta": duration(eta_seconds(then, done, now - when)),
                                  "loss": "" if loss is None else f"loss {loss:.4f}"}
        if run.id not in self.tasks:  # (adding a task draws it: it needs its fields)
            self.tasks[run.id] = self.progress.add_task("", total=1.0, **fields)
        self.progress.update(self.tasks[run.id], completed=done, **fields)

    def refresh(self) -> None:
        self.progress.start()  # again after a `stop` (an interrupted launch follows its runs to their end)
        self.progress.refresh()

    def stop(self) -> None:
        self.progress.stop()


class LaunchView:
    """What `ssnas run` shows while it follows `run_ids` (on stderr unless `stream`); bars where `interactive`
    (default: on a terminal)."""

    def __init__(self, registry: Registry, run_ids: list[str], stream: TextIO | None = None,
                 interactive: bool | None = None) -> None:
        self.registry = registry
        self.run_ids = run_ids
        self.stream = stream = stream or sys.stderr  # at the call: where stderr is now (a test's capture too)
        self.interactive = stream.isatty() if interactive is None else interactive
        self.statuses: dict[str, str] = {}
        self.tenths: dict[str, int] = {}
        self.bars = ProgressBars(stream) if self.interactive else None

    def _loss(self, run_id: str) -> float | None:
        rows = self.registry.metrics(run_id, key="loss", split="train", after=0)[-1:]
        return rows[0]["value"] if rows else None

    def _say(self, line: str) -> None:
        if self.bars is not None:
            self.bars.say(line)
        else:
            self.stream.write(line + "\n")

    def tick(self) -> None:
        for index, run_id in enumerate(self.run_ids, start=1):
            run = self.registry.get_run(run_id)
            status = run.status
            if self.statuses.get(run_id) != status:
                self.statuses[run_id] = status
                if status != "queued":
                    detail = f": {run.error}" if run.error and status != "finished" else ""
                    self._say(f"[{index}/{len(self.run_ids)}] {run_id[:8]} {run.name} {status}{detail}")
            loss = self._loss(run_id) if status == "running" else None
            if self.bars is not None:
                self.bars.show(run, loss)
            elif status == "running":
                self._tenth_line(run, loss)
        if self.bars is not None:
            self.bars.refresh()
        self.stream.flush()

    def _tenth_line(self, run: Run, loss: float | None) -> None:
        """A plain progress line, once per tenth of the stage."""
        progress = run.progress or 0.0
        tenth = int(10 * progress)
        if tenth > self.tenths.get(run.id, 0):
            self.tenths[run.id] = tenth
            bar = "#" * int(20 * progress) + "." * (20 - int(20 * progress))
            self.stream.write(f"{run.id[:8]} {run.stage:<8} [{bar}] {100 * progress:3.0f}%" + (
                f" loss {loss:.4f}" if loss is not None else "") + "\n")

    def close(self) -> None:
        if self.bars is not None:
            self.bars.stop()
        self.stream.flush()
