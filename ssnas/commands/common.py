"""What every command shares: the run service of the runs folder, one-line errors, output formats, and the
RUN argument type, which completes run ids in the shell."""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

import click

from ssnas import exit_status
from ssnas.runs.format import printable
from ssnas.runs.service import RunService


class UserError(click.ClickException):
    """A library error shown as one line (exit status USAGE), never a traceback; control characters escaped."""

    exit_code = exit_status.USAGE

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's own errors, and a file the system will not read or write (a read-only or full
    disk, a path under a file), into one line naming what failed and exit status USAGE."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ssnas.errors import SsnasError

        try:
            return command(*args, **kwargs)
        except SsnasError as error:
            raise UserError(str(error)) from None
        except BrokenPipeError:
            raise  # a reader that went away (`| head`): click leaves quietly
        except OSError as error:
            raise UserError(os_error_text(error)) from None

    return wrapper


def os_error_text(error: OSError) -> str:
    """`runs/registry.db: Permission denied`: the file the system refused and why."""
    reason = error.strerror or str(error) or type(error).__name__
    return f"{error.filename}: {reason}" if error.filename is not None else reason


pass_service = click.make_pass_decorator(RunService)


class RunArgument(click.ParamType):
    """A run id or unique prefix, as typed (the registry resolves it). In the shell it completes to the ids of
    the runs folder `--runs` names: those starting with what was typed, else those of runs whose name does."""

    name = "run"

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        service = RunService(ctx.find_root().params.get("runs_dir"))
        try:
            return [CompletionItem(run.id, help=run.name) for run in service.completions(incomplete)]
        finally:
            service.close()


RUN = RunArgument()

OUTPUT_FORMATS = ("table", "csv", "json", "parquet")


def output_format(chosen: str | None, as_json: bool, as_csv: bool) -> str:
    """The one format asked for: `--format`, or its shortcuts `--json` and `--csv`; table by default."""
    asked = [name for name, flag in (("json", as_json), ("csv", as_csv)) if flag] + ([chosen] if chosen else [])
    asked = list(dict.fromkeys(asked))  # `--json --format json` asks for one
    if len(asked) > 1:
        raise click.UsageError(f"choose one output format (asked for {' and '.join(asked)})")
    return asked[0] if asked else "table"


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
    """Aligned columns for people: every cell one line, its control characters escaped."""
    formats = formats or {}

    def cell(row: dict[str, Any], column: str) -> str:
        value = row.get(column)
        if column in formats:
            return printable(formats[column](value))
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        return printable(str(value))

    cells = [[cell(row, c) for c in columns] for row in rows]
    columns = [printable(c) for c in columns]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)
