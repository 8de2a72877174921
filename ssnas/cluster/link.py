"""Registry calls over a connection: between a worker on a cluster node and the process that started it
there, and between that process and the head when it reaches the head over TCP (SLURM jobs).

The worker (`python -m ssnas.worker RUN_ID --head-fd FD`) stays free of any cluster library: each
registry call it makes (ssnas.records.WorkerRecords) is a message to the process that started it (a
Ray task, a SLURM job), which makes the call on the head and sends back the result or the error.
`ship_files` asks that process to ship the run's changed files to the head; it does that before a
`finish_run` too, so that a run reads finished only once its outputs are on the head. Both ends are
here: `Peer` (a caller) with `HeadLink` (the worker's), and `serve` (the answering end); nothing here
knows the worker or the head.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from ssnas.errors import SsnasError
from ssnas.records import RECORD_CALLS
from ssnas.scheduling.executor import WorkerExit

LINK_CALLS = RECORD_CALLS | {"ship_files"}


class Gone(Exception):
    """Raised by an answer when what it relays to cannot be reached any more: `serve` closes the link, so that
    the worker at its other end exits (`WorkerExit.LINK_LOST`) instead of training unrecorded."""


class Peer:
    """Calls answered by `serve` at the other end of a connection: `peer.call("get_run", RUN_ID)`. Calls from
    several threads take turns; a broken connection raises EOFError or OSError."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._connection.send((method, args, kwargs))
            ok, value = self._connection.recv()
        if not ok:
            raise value
        return value

    def close(self) -> None:
        self._connection.close()


class HeadLink:
    """The registry as a worker on a cluster node sees it (a `WorkerRecords`): `link.start_run(...)`,
    `link.add_metrics(rows)`, ... are made on the head. Safe to share between the worker's threads."""

    @classmethod
    def from_fd(cls, fd: int) -> HeadLink:
        """The link on socket `fd`, inherited from the process that started this worker."""
        return cls(Connection(fd))

    def __init__(self, connection: Connection) -> None:
        self._peer = Peer(connection)

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method not in LINK_CALLS:
            raise AttributeError(method)
        return functools.partial(self._call, method)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._peer.call(method, *args, **kwargs)
        except (EOFError, OSError):
            # Nothing can record this run any more (the Ray task or SLURM job that relays for it is gone): end
            # now rather than train unseen; the scheduler sees the task or job end and marks the run lost.
            print("[error] the process that links this worker to the head is gone; stopping", file=sys.stderr,
                  flush=True)
            os._exit(WorkerExit.LINK_LOST)

    def close(self) -> None:
        """Nothing to release: the link lives as long as the worker process."""


def sendable(error: BaseException) -> Exception:
    """An error to send back to the caller: ssnas's own as they are, others as their text (a Ray error
    wraps the head's exception in `cause`)."""
    cause = getattr(error, "cause", None) or error
    return cause if isinstance(cause, SsnasError) else RuntimeError(f"{type(cause).__name__}: {cause}")


def serve(connection: Connection, answer: Callable[[str, tuple, dict], Any]) -> None:
    """The answering end: answer the calls until the caller closes the connection, or `answer` says what it
    relays to is `Gone` (then the connection is closed)."""
    while True:
        try:
            method, args, kwargs = connection.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (True, answer(method, args, kwargs))
        except Gone:
            connection.close()
            return
        except Exception as error:  # noqa: BLE001 - every error goes back to the caller
            reply = (False, sendable(error))
        try:
            connection.send(reply)
        except OSError:  # the caller went away meanwhile
            return
