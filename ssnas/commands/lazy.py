"""A click group that imports a command's module only when that command runs, as pip's command table does:
`ssnas --help` and shell completion of command names read one-line summaries from the table instead of
importing every command (and the registry, scheduler and launch code behind them)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class CommandEntry:
    """Where a command lives ("package.module:attribute") and the first sentence of its help."""

    target: str
    summary: str


class LazyGroup(click.Group):
    """Commands named in `table`, imported on first use; commands added with `add_command` work as usual."""

    def __init__(self, *args: Any, table: Mapping[str, CommandEntry], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.table = dict(table)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.table})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.table:
            self.commands[cmd_name] = load_command(cmd_name, self.table[cmd_name])
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        with formatter.section("Commands"):
            formatter.write_dl([(name, self._listed(ctx, name).get_short_help_str(limit)) for name in names])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        """Command names from the table (with their summaries), then the group's own options."""
        from click.shell_completion import CompletionItem

        names = [name for name in self.list_commands(ctx) if name.startswith(incomplete)]
        completions = [CompletionItem(name, help=self._listed(ctx, name).get_short_help_str()) for name in names]
        return completions + click.Command.shell_complete(self, ctx, incomplete)

    def _listed(self, ctx: click.Context, name: str) -> click.Command:
        """The command as listed: a stand-in holding its summary until its module has been imported."""
        if name in self.table and name not in self.commands:
            return click.Command(name, help=self.table[name].summary)
        return self.commands[name]


def load_command(name: str, entry: CommandEntry) -> click.Command:
    """Import the command `entry` names; a table that points at something else is a bug, said plainly."""
    module_name, _, attribute = entry.target.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command) or command.name != name:
        raise RuntimeError(f"command table: {entry.target} is not the click command {name!r}")
    return command
