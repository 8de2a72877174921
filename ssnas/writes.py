"""Writes that fail cleanly: a run's files replaced atomically, and log lines that a full disk cannot break.

When a run folder's disk fills, the worker must still end its run `failed` with the reason in words and
leave the folder as it was. torch reports such a write as "unexpected pos 576 vs 534" and keeps the
OSError only as the context of its own error, and a half-written temporary would hold the space a
resume needs; so files go through a temporary beside them that any failure removes, and the error
names the file and the OS's reason. The log (stdout, redirected to the run's log.txt) may sit on that
same disk: a line that cannot be written is dropped rather than ending the run in its place.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TextIO

from ssnas.errors import SsnasError

TEMPORARY = ".tmp"  # the suffix of a file being written (ssnas.cluster.files ships none of them)


class WriteError(SsnasError):
    """A file that could not be written (names it and the OS's reason, e.g. "No space left on device")."""


def os_error(error: BaseException) -> OSError | None:
    """The OSError behind `error`: itself, or one it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.strerror:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def temporary(path: Path) -> Path:
    return path.with_name(path.name + TEMPORARY)


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write `path` with `write(file)`, through a temporary renamed into place: a reader, and a worker
    killed mid-write, see the old file or the new one, never half of one. Any failure removes the
    temporary; an Exception becomes a WriteError naming `path` and the reason."""
    tmp = temporary(path)
    try:
        with open(tmp, "wb") as file:
            write(file)
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if not isinstance(error, Exception):
            raise
        cause = os_error(error)
        reason = cause.strerror if cause is not None else f"{type(error).__name__}: {error}"
        raise WriteError(f"could not write {path}: {reason}") from error


def write_text(path: Path, text: str) -> None:
    """`write_atomically` for a text file (UTF-8): a stage's genotype.json, results.json."""
    write_atomically(path, lambda file: file.write(text.encode("utf-8")))


def remove_temporaries(folder: Path) -> None:
    """Drop what writers killed mid-write left in `folder` (a checkpoint's temporary can be most of a disk)."""
    for tmp in folder.glob(f"*{TEMPORARY}"):
        with contextlib.suppress(OSError):
            tmp.unlink()


def say(line: str, stream: TextIO | None = None) -> None:
    """Print one log line now (to stdout unless `stream`); a log that cannot be written loses the line."""
    with contextlib.suppress(OSError):
        print(line, file=stream or sys.stdout, flush=True)
