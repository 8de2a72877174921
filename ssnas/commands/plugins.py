"""`ssnas plugins`: what installed packages add to ssnas (docs/plugins.md), read from their metadata."""

from __future__ import annotations

import click

from ssnas.commands.common import UserError, emit, output_options, reports_errors

COLUMNS = ("group", "name", "distribution", "version", "object")


@click.command("plugins")
@click.option("--check", is_flag=True,
              help="Also load every plugin (importing its module) and name those that fail; exit 2 if any does.")
@output_options
@reports_errors
def plugins_command(check: bool, as_json: bool, as_csv: bool) -> None:
    """The installed plugins of every group: name, distribution, version and object.

    Listing imports no plugin; `--check` imports each, as a worker would.
    """
    from ssnas import plugins

    found = [plugin for group in plugins.GROUPS for plugin in plugins.installed(group)]
    rows = [{"group": p.group, "name": p.name, "distribution": p.distribution, "version": p.version, "object": p.value}
            for p in found]
    failures = []
    if check:
        for plugin, row in zip(found, rows, strict=True):
            try:
                plugin.load()
                row["check"] = "ok"
            except plugins.PluginError as error:
                row["check"] = "failed"
                failures.append(str(error))
    if not rows and not (as_json or as_csv):
        click.echo(f"no plugins installed (groups: {', '.join(plugins.GROUPS)}; see docs/plugins.md)")
    else:
        emit(rows, [*COLUMNS, *(("check",) if check else ())], as_json, as_csv)
    for failure in failures:
        click.echo(failure, err=True)
    if failures:
        raise UserError(f"{len(failures)} of {len(found)} plugins failed to load")
