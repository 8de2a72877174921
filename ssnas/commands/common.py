"""What every command shares: the runs folder and its registry, one-line errors, output formats."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click


class UserError(click.ClickException):
    """A library error shown as one line (exit code 2), never a traceback."""

    exit_code = 2


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's own errors into one line and a non-zero exit."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ssnas.errors import SsnasError

        try:
            return command(*args, **kwargs)
        except SsnasError as error:
            raise UserError(str(error)) from None

    return wrapper


class Workspace:
    """The runs folder (`--runs`, or $SSNAS_RUNS, default ./runs) and its registry, opened on first use."""

    def __init__(self, runs_dir: str | None) -> None:
        self.runs_dir = Path(runs_dir or os.environ.get("SSNAS_RUNS") or "runs")
        self._registry = None

    @property
    def registry_path(self) -> Path:
        return self.runs_dir / "registry.db"

    def registry(self, create: bool = False):  # -> ssnas.registry.Registry
        """The registry; readers do not create one (a missing registry is reported, or empty)."""
        from ssnas.registry import Registry

        if self._registry is None:
            if create:
                self.runs_dir.mkdir(parents=True, exist_ok=True)
            self._registry = Registry(self.registry_path, create=create)
        return self._registry

    def has_registry(self) -> bool:
        return self.registry_path.exists()


pass_workspace = click.make_pass_decorator(Workspace)


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--json / --csv for listing commands (a table for people otherwise)."""
    command = click.option("--csv", "as_csv", is_flag=True, help="CSV for pipes.")(command)
    return click.option("--json", "as_json", is_flag=True, help="JSON for pipes.")(command)


def emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool = False, as_csv: bool = False,
         formats: dict[str, Callable[[Any], str]] | None = None) -> None:
    """Print rows as a table, JSON (every field) or CSV (the given columns)."""
    if as_json:
        click.echo(json.dumps(list(rows), indent=2, default=str))
        return
    if as_csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
        click.echo(buffer.getvalue(), nl=False)
        return
    click.echo(table(rows, columns, formats))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str],
          formats: dict[str, Callable[[Any], str]] | None = None) -> str:
    formats = formats or {}

    def cell(row: dict[str, Any], column: str) -> str:
        value = row.get(column)
        if column in formats:
            return formats[column](value)
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    cells = [[cell(row, c) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)
