"""A run's log: registry events and log.txt lines, warnings and errors coloured, bounded in size.

Built on Textual's `Log`, which renders only the visible lines and keeps following the tail only while
the view is scrolled to the bottom, so scrolling up to read a traceback is not undone by new lines.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence

from rich.highlighter import Highlighter
from rich.style import Style
from rich.text import Text
from textual.widgets import Log

MAX_LINES = 2000

# A level word at the start of a line, after at most a date and a time: "12:00:01 warning ...",
# "[error] ...", "2025-01-02 12:00:01,5 WARNING ...", and Python's "Traceback (most recent call last):".
_LEVEL = re.compile(r"^\s*(?:[\d:\-.,/T]+\s+){0,2}\[?(critical|fatal|error|traceback|warning|warn|debug)\b",
                    re.IGNORECASE)
_LEVEL_STYLES = {
    "critical": Style(color="red", bold=True),
    "fatal": Style(color="red", bold=True),
    "error": Style(color="red"),
    "traceback": Style(color="red"),
    "warning": Style(color="yellow"),
    "warn": Style(color="yellow"),
    "debug": Style(dim=True),
}


def level_style(line: str) -> Style | None:
    """The style of a line by the level word it starts with; None for info and plain output."""
    m = _LEVEL.match(line)
    return _LEVEL_STYLES[m[1].lower()] if m else None


class LevelHighlighter(Highlighter):
    """Colours whole lines by level: warnings yellow, errors red, debug dim."""

    def highlight(self, text: Text) -> None:
        style = level_style(text.plain)
        if style is not None:
            text.stylize(style)


def clock(seconds: float | None) -> str:
    """Local wall-clock time of an event, HH:MM:SS."""
    return "--:--:--" if seconds is None else time.strftime("%H:%M:%S", time.localtime(seconds))


def event_lines(row: Mapping) -> list[str]:
    """`12:00:01 warning  message`; a multi-line message repeats the level so each line keeps its colour."""
    level = str(row.get("level") or "info")
    head = f"{clock(row.get('time'))} {level:<8}"
    lines = str(row.get("message", "")).splitlines() or [""]
    return [f"{head} {lines[0]}"] + [f"{' ' * 8} {level:<8} {line}" for line in lines[1:]]


def _event_key(row: Mapping) -> tuple:
    return (row.get("rowid"), row.get("time"), row.get("level"), row.get("message"))


class LogView(Log):
    """A bounded, colour-by-level log that follows the tail unless scrolled up."""

    DEFAULT_CSS = """
    LogView {
        height: 1fr;
        padding: 0 1;
        overflow-x: auto;
        overflow-y: scroll;
    }
    """

    def __init__(self, max_lines: int = MAX_LINES, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(highlight=True, max_lines=max_lines, auto_scroll=True, name=name, id=id,
                         classes=classes)
        self.highlighter = LevelHighlighter()
        self._event_marks: tuple[int, tuple, tuple] | None = None  # count, first key, last key of set_events

    def append_lines(self, lines: Iterable[str]) -> None:
        """Add lines (e.g. new log.txt lines) at the bottom."""
        lines = list(lines)
        if lines:
            self.write_lines(lines)

    def append_events(self, rows: Iterable[Mapping]) -> None:
        """Add registry event rows (time, level, message) at the bottom."""
        self.append_lines(line for row in rows for line in event_lines(row))

    def set_events(self, rows: Sequence[Mapping]) -> None:
        """Show exactly these event rows; when they extend the rows set last time, only the new ones
        are written, so polling with the full, growing list stays cheap and keeps the scroll position."""
        seen = self._event_marks
        if seen and len(rows) >= seen[0] and (_event_key(rows[0]), _event_key(rows[seen[0] - 1])) == seen[1:]:
            new = rows[seen[0]:]
        else:
            self.clear()
            new = rows
        self._event_marks = (len(rows), _event_key(rows[0]), _event_key(rows[-1])) if rows else None
        self.append_events(new)
