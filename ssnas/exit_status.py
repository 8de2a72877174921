"""The exit status of every `ssnas` command, defined here and documented once (docs/cli.md#exit-status), so a
script can tell a run that failed from a mistyped command and both from a bug in ssnas.

Imported only where an exit is decided: `ssnas --help` never loads it (tests/test_imports.py)."""

from __future__ import annotations

import traceback
from typing import IO, Any

import click

OK = 0
NOT_DONE = 1  # the command worked, but a run it started or followed did not finish (failed, killed or lost)
USAGE = 2  # the user's to fix: a bad option, recipe, dataset or registry file; a run, baseline or file not found
INTERNAL = 3  # a bug in ssnas: an exception no command expected

BUG = "internal error (a bug in ssnas; please report it with the traceback above)"


def interrupted(signum: int) -> int:
    """What a shell reports for a process a signal ended: 128 + its number (130 Ctrl-C, 143 SIGTERM)."""
    return 128 + signum


class InternalError(click.ClickException):
    """A bug, shown as one: the traceback a report needs (unless already shown), then one `Error:` line."""

    exit_code = INTERNAL

    def __init__(self, what: str, trace: str = "") -> None:
        super().__init__(f"{BUG}: {what}")
        self.trace = trace

    @classmethod
    def of(cls, error: BaseException) -> InternalError:
        """The error for an exception that escaped a command: its type and message on the last line, kept to
        one line so that it stays the last."""
        what = " ".join(f"{type(error).__name__}: {error}".split())
        return cls(what, "".join(traceback.format_exception(error)))

    def show(self, file: IO[Any] | None = None) -> None:
        if self.trace:
            click.echo(self.trace, file=file, err=True, nl=False)
        super().show(file)
