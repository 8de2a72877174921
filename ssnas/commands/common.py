"""What every command shares: the run service of the runs folder, one-line errors, output formats."""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

import click

from ssnas.runs.service import RunService


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


pass_service = click.make_pass_decorator(RunService)


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
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)
