"""How runs read as text: durations, times, numbers, statuses, config lines. One place for both front ends.

The CLI prints these and the dashboard draws them; neither formats a run field its own way.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ssnas.run_record import Run

SHORT_ID = 8
# What a terminal obeys rather than shows: C0 and C1 controls, DEL, line separators and bidi overrides.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character escaped (ESC as `\\x1b`): a run name, tag or error shown to people
    must never move their cursor or clear their screen. JSON and CSV keep the raw text: they are for programs."""
    return _CONTROL.sub(_escaped, text)


def control_character(text: str) -> str | None:
    """The first control character of `text`, escaped, or None: what names and tags are refused for."""
    found = _CONTROL.search(text)
    return None if found is None else _escaped(found)


def duration(seconds: float | None) -> str:
    """42s, 1m23s, 2h05m, 3d04h; '-' when unknown."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def elapsed_seconds(run: Run, now: float | None = None) -> float | None:
    """How long a run has worked, over all its attempts (a resumed run's earlier ones too): what its ended
    attempts worked, and while it runs the current attempt so far; None before it first started."""
    if run.started_at is None:
        return None
    now = time.time() if now is None else now
    if run.worked_seconds is None:  # a registry from before worked_seconds: the last attempt only
        return (run.ended_at or now) - run.started_at
    return run.worked_seconds + (now - run.started_at if run.status == "running" else 0.0)


def local_time(timestamp: float | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return "-" if timestamp is None else time.strftime(fmt, time.localtime(timestamp))


def status_text(status: str, gone: bool = False) -> str:
    """A lost run stands out in listings; so does a `running` run whose worker is gone (`lost?`), which
    stays `running` in the registry until the runs folder's scheduler marks it (readers never write)."""
    if gone:
        return "lost?"
    return "lost!" if status == "lost" else status


def stage_text(run: Run) -> str:
    """The stage, with how many chains share it when several do (`search x5`)."""
    return f"{run.stage} x{run.children}" if run.children > 1 else run.stage


def tags_text(run: Run) -> str:
    """What `ssnas tag` and the dashboard's tag dialog say afterwards."""
    return printable(f"{run.short_id}: {', '.join(run.tags) or 'no tags'}")


def number(value: Any, fmt: str = ".4g") -> str:
    return "-" if value is None else format(value, fmt)


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def plain(value: Any) -> str:
    """A config value as one short token: strings bare, lists as JSON."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return format(value, "g")
    return json.dumps(value)


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    """Nested recipe sections as dotted keys: {"search": {"epochs": 5}} -> {"search.epochs": 5}."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def size_text(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"  # unreachable


def short_ids(ids: Sequence[str]) -> list[str]:
    """The shortest prefixes (at least 8 characters) that still tell the runs apart."""
    for length in range(SHORT_ID, max(map(len, ids), default=SHORT_ID) + 1):
        cut = [i[:length] for i in ids]
        if len(set(cut)) == len(set(ids)):
            return cut
    return list(ids)



def field_lines(fields: Sequence[tuple[str, str]]) -> list[str]:
    width = max(len(name) for name, _ in fields)
    return [f"{name:<{width}}  {value}".rstrip() for name, value in fields]


def run_fields(run: Run, folder: Path, children: Sequence[Run] = (), gone: bool = False) -> list[tuple[str, str]]:
    """Every field of a run as (name, text), as `ssnas show` prints them and the dashboard's info tab."""
    versions = run.versions or {}
    progress = f" ({percent(run.progress)})" if run.progress is not None else ""
    return [
        ("id", run.id), ("name", run.name), ("status", status_text(run.status, gone) + progress),
        ("error", run.error or "-"), ("stage", run.stage), ("objective", run.objective or "-"),
        ("dataset", run.dataset or "-"), ("label ratio", number(run.label_ratio, "g")),
        ("seed", number(run.seed, "d")), ("parent", run.parent_id or "-"), ("group", run.group_id or "-"),
        ("children", (f"{len(children)}, shared by their chains: " if len(children) > 1 else "")
         + ", ".join(f"{c.short_id} ({c.stage}, {status_text(c.status)})" for c in children) or "-"),
        ("device", run.device or "-"), ("host", run.host or "-"), ("pid", number(run.pid, "d")),
        ("executor", run.executor or "local"), ("node", run.node or "-"),
        ("git commit", run.git_commit or "-"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or "-"),
        ("created", local_time(run.created_at)), ("started", local_time(run.started_at)),
        ("ended", local_time(run.ended_at)), ("elapsed", duration(elapsed_seconds(run))),
        ("heartbeat", local_time(run.heartbeat_at)), ("recipe", run.recipe_path or "-"),
        ("run dir", str(folder)), ("tags", ", ".join(run.tags) or "-"),
    ]


def config_lines(config: dict, width: int = 100) -> list[str]:
    """The resolved recipe compactly: one wrapped line of key=value per section, unset keys left out."""
    lines = []
    for section, values in config.items():
        if not isinstance(values, dict):
            lines.append(f"  {section} = {plain(values)}")
            continue
        pairs = [f"{key}={plain(value)}" for key, value in flatten(values).items() if value is not None]
        if pairs:
            lines += textwrap.wrap(" ".join(pairs), width, initial_indent=f"  {section:<9} ",
                                   subsequent_indent=" " * 12, break_long_words=False, break_on_hyphens=False)
    return lines


def last_values(rows: Iterable[dict]) -> dict[str, float]:
    """The last value logged per key, in key order of first appearance."""
    values: dict[str, float] = {}
    for row in rows:
        values[row["key"]] = row["value"]
    return values
