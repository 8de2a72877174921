"""Tracking sinks that plugins add (entry-point group `ssnas.tracking_sinks`), chosen by `run.sinks`:
places besides the registry and TensorBoard that a run's metrics and events also go to (W&B, MLflow).

The contract (docs/plugins.md): the entry point names a callable `open(run_id, run_dir, config) -> sink`,
called once by the worker before the stage starts; `run_dir` is the run's folder (a `pathlib.Path`, on the
node that runs it) and `config` the run's resolved recipe as plain JSON data. The sink has
- `add_metrics(rows: list[SinkMetric])`: scalars, in the order they were reported;
- `add_events(rows: list[SinkEvent])`: the lines of the run's log;
- `close()`: once, after the last write, however the run ends.
They are called from the reporter's writing thread (never two at once), in batches, right after the
registry took the same rows. The registry is the record and a sink a copy: a sink whose call raises is
dropped for the rest of the run, with a warning in the run's events, and the run goes on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, cast

from ssnas import plugins
from ssnas.records import WorkerRecords
from ssnas.writes import say


class SinkMetric(NamedTuple):
    step: int
    epoch: int | None
    split: str | None  # "train", "dev", "test", "arch" or None
    key: str  # "loss", "f1_weighted", ...
    value: float
    wall_time: float  # seconds since the epoch, when it was reported


class SinkEvent(NamedTuple):
    time: float  # seconds since the epoch
    level: str  # "info", "warning" or "error"
    message: str


class TrackingSinks:
    """The sinks a run's recipe names, opened; `copying` routes the worker's records through them."""

    def __init__(self, run_id: str, opened: Sequence[tuple[plugins.Plugin, Any]] = ()) -> None:
        self.run_id = run_id
        self._opened = list(opened)

    @classmethod
    def open(cls, names: Sequence[str], run_id: str, run_dir: Path, config: dict[str, Any]) -> TrackingSinks:
        """Load and open the sinks `names` (a plugin that fails to is a `PluginError`: the run fails before it
        trains rather than run without the copy it was asked for)."""
        opened = []
        for name in names:
            plugin = plugins.find(plugins.TRACKING_SINKS_GROUP, name)
            factory = plugins.load_callable(plugin.group, name, "a sink factory (run_id, run_dir, config) -> sink")
            try:
                sink = factory(run_id, Path(run_dir), config)
            except Exception as error:  # noqa: BLE001 - a plugin's failure is one line naming it
                raise plugin.error(f"failed to open: {plugins.one_line(error)}") from error
            opened.append((plugin, sink))
        return cls(run_id, opened)

    def copying(self, open_records: Callable[[], WorkerRecords]) -> Callable[[], WorkerRecords]:
        """`open_records`, whose records also hand metrics and events to these sinks (unchanged when none)."""
        if not self._opened:
            return open_records
        return lambda: cast(WorkerRecords, CopiedRecords(open_records(), self))

    def add_metrics(self, rows: Sequence[tuple], records: WorkerRecords) -> None:
        """Registry metric rows (run_id, step, epoch, split, key, value, wall_time) to every sink."""
        metrics = [SinkMetric(*row[1:]) for row in rows]
        self._each("add_metrics", metrics, records)

    def add_events(self, rows: Sequence[tuple], records: WorkerRecords) -> None:
        """Registry event rows (run_id, time, level, message) to every sink."""
        events = [SinkEvent(*row[1:]) for row in rows]
        self._each("add_events", events, records)

    def close(self, records: WorkerRecords) -> None:
        self._each("close", None, records)

    def _each(self, method: str, rows: list | None, records: WorkerRecords) -> None:
        """Call `method` of every sink; one that raises is dropped, with a warning in the run's events."""
        for plugin, sink in list(self._opened):
            try:
                getattr(sink, method)(*(() if rows is None else (rows,)))
            except Exception as error:  # noqa: BLE001 - a copy that fails must not fail the run
                self._opened.remove((plugin, sink))
                message = f"tracking sink {plugin.name!r} ({plugin.origin}) dropped: {method} failed: " \
                          f"{plugins.one_line(error)}"
                say(f"[warning] {message}", sys.stderr)
                records.add_events([(self.run_id, time.time(), "warning", message)])


class CopiedRecords:
    """A worker's records (registry or head link) whose metrics and events are also copied to plugin sinks;
    every other call goes to the records alone."""

    def __init__(self, records: WorkerRecords, sinks: TrackingSinks) -> None:
        self._records = records
        self._sinks = sinks

    def add_metrics(self, rows: Iterable[tuple]) -> None:
        rows = list(rows)
        self._records.add_metrics(rows)
        self._sinks.add_metrics(rows, self._records)

    def add_events(self, rows: Iterable[tuple]) -> None:
        rows = list(rows)
        self._records.add_events(rows)
        self._sinks.add_events(rows, self._records)

    def close(self) -> None:
        try:
            self._sinks.close(self._records)
        finally:
            self._records.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)
