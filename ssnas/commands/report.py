"""`ssnas report`: the paper's comparison of a group of runs (ssnas.report); reads only, imports no torch."""

from __future__ import annotations

import json
import re
import shutil
import sys
from importlib.util import find_spec

import click

from ssnas.commands.common import UserError, pass_service, reports_errors
from ssnas.runs.service import RunService


def _installed(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ValueError:  # a module set to None in sys.modules
        return False


@click.command("report")
@click.argument("group")
@click.option("--md", "as_markdown", is_flag=True, help="Markdown tables instead of aligned text.")
@click.option("--json", "as_json", is_flag=True, help="JSON for pipes: rows, arms and every chain.")
@click.option("--png", "png", is_flag=False, flag_value="", default=None, metavar="[PATH]",
              help="Also write the plot of F1 against r as a PNG (matplotlib); PATH defaults to "
                   "RUNS/report-GROUP.png.")
@click.option("--plot", is_flag=True, help="Also draw the plot of F1 against r in the terminal (plotext).")
@click.option("--baseline", default="bmnas-mmimdb", show_default=True,
              help="The bundled genotype whose similarity is reported (ssnas baselines).")
@pass_service
@reports_errors
def report(service: RunService, group: str, as_markdown: bool, as_json: bool, png: str | None, plot: bool,
           baseline: str) -> None:
    """Per arm and label ratio: test F1 over seeds, gap to no-search baselines, architectures, search; ssl - random.

    GROUP is a group id (or a unique prefix of one) or, when no group matches, a tag: e.g. the group
    `ssnas run recipes/paper_synthetic.toml` printed, or `paper`. Runs that did not finish are
    counted in the tables, not dropped.
    """
    from ssnas.report import build_report

    if as_markdown and as_json:
        raise click.UsageError("choose one of --md and --json")
    if plot and as_json:
        raise click.UsageError("--plot draws for people; leave out --json")
    if png is not None and not _installed("matplotlib"):
        raise UserError("--png needs matplotlib (pip install matplotlib)")
    registry = service.reader()
    click.get_current_context().call_on_close(registry.close)
    result = build_report(registry, group, baseline=baseline)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(result.format_markdown() if as_markdown else result.format_table(), nl=not as_markdown)
    if plot:
        _plot_terminal(result)
    if png is not None:
        name = result.groups[0] if result.kind == "group" else group
        path = png or service.runs_dir / f"report-{re.sub(r'[^A-Za-z0-9_.+-]', '_', name)}.png"
        try:
            written = result.plot_png(path)
        except OSError as error:
            raise UserError(f"{path}: cannot write ({error.strerror or error})") from None
        click.echo(f"plot: {written}", err=as_json)


def _plot_terminal(result) -> None:  # result: ssnas.report.Report
    if not _installed("plotext"):
        click.echo("(plotext is not installed: pip install plotext)")
        return
    tty = sys.stdout.isatty()
    columns, lines = shutil.get_terminal_size((100, 30)) if tty else (100, 30)
    click.echo("")
    click.echo(result.plot_terminal(width=min(columns, 160), height=max(15, min(lines - 2, 30)), color=tty))
