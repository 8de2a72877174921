"""What the screens need of the app that hosts them: a Protocol, so screens never import the app module
(the app imports the screens; the other way round would be an import cycle)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ssnas.run_record import Run
    from tui.data import RegistryReader


class Dashboard(Protocol):
    runs: dict[str, Run]  # run id -> its latest row (no config)
    runs_dir: Path
    reader: RegistryReader
    marked: list[str]  # runs marked for compare, in marking order
    poll_interval: float
    poll_error: str | None  # the last runs poll's error, shown until a poll succeeds

    def clock(self) -> float: ...
    def registry_note(self) -> str: ...
    def open_run(self, run_id: str) -> None: ...
    def toggle_mark(self, run_id: str) -> None: ...
    def clear_marks(self) -> None: ...
