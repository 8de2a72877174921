"""The socket between a worker on a Ray node and the Ray task that started it.

The worker (`python -m ssnas.worker RUN_ID --head-fd FD`) stays free of Ray: each registry call it
makes (ssnas.records.WorkerRecords) is a message to its task, which makes the call on the head and
sends back the result or the error. `ship_files` asks the task to ship the run's changed files to
the head; the task does that before a `finish_run` too, so that a run reads finished only once its
outputs are on the head. Both ends are here: `HeadLink` (the worker's) and `serve` (the task's); the
worker builds its link and hands it to its stage (ssnas.worker), nothing here knows the worker.
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


class HeadLink:
    """The registry as a worker on a Ray node sees it (a `WorkerRecords`): `link.start_run(...)`,
    `link.add_metrics(rows)`, ... are made on the head. Safe to share between the worker's threads
    (calls take turns)."""

    @classmethod
    def from_fd(cls, fd: int) -> HeadLink:
        """The link on socket `fd`, inherited from the Ray task that started this worker."""
        return cls(Connection(fd))

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method not in LINK_CALLS:
            raise AttributeError(method)
        return functools.partial(self._call, method)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                self._connection.send((method, args, kwargs))
                ok, value = self._connection.recv()
            except (EOFError, OSError):
                # Nothing can record this run any more (its node's Ray worker died): end now rather than
                # train on unseen; the scheduler sees the task fail and marks the run lost.
                print("[error] the Ray task of this worker is gone; stopping", file=sys.stderr, flush=True)
                os._exit(WorkerExit.LINK_LOST)
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Nothing to release: the link lives as long as the worker process."""


def sendable(error: BaseException) -> Exception:
    """An error to send back to the worker: ssnas's own as they are, others as their text (a Ray error
    wraps the head's exception in `cause`)."""
    cause = getattr(error, "cause", None) or error
    return cause if isinstance(cause, SsnasError) else RuntimeError(f"{type(cause).__name__}: {cause}")


def serve(connection: Connection, answer: Callable[[str, tuple, dict], Any]) -> None:
    """The task's end: answer the worker's calls until it closes the link."""
    while True:
        try:
            method, args, kwargs = connection.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (True, answer(method, args, kwargs))
        except Exception as error:  # noqa: BLE001 - every error goes back to the caller
            reply = (False, sendable(error))
        connection.send(reply)

