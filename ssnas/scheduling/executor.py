"""The seam between the scheduler and the engines that run workers (local subprocesses, Ray tasks, SLURM jobs).

An `Executor` starts one worker for one run, says whether it is still alive, and asks it to stop.
The scheduler knows nothing of processes or clusters beyond this. `WorkerExit` is the worker's side of
the contract: what each exit code of `python -m ssnas.worker` means.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ssnas.run_record import Run


class WorkerExit(IntEnum):
    """Exit codes of `python -m ssnas.worker` (a Ray task or SLURM job returns them too)."""

    FINISHED = 0  # the run ended finished
    FAILED = 1  # the run ended failed (an exception, a non-finite loss), or the worker crashed
    KILLED = 3  # the run was asked to stop (SIGTERM): it checkpointed and ended killed
    NOT_STARTED = 4  # the run was not startable (killed or already running, its parent did not finish,
    #                  or a prestarted worker's scheduler went away): left as it was
    LINK_LOST = 5  # on a cluster node: the Ray task or SLURM job that linked the worker to the head is gone


@dataclass(frozen=True)
class WorkerStatus:
    alive: bool
    exit_code: int | None = None
    pid: int | None = None  # the worker's process id, where the executor knows it
    slot: str | None = None  # the device slot it runs on, where known (an adopted worker's GPU)


class Executor(Protocol):
    name: str
    prestarts: bool  # whether submit(after=RUN) can start a worker that waits for another run
    takes_slots: bool  # whether its workers use this machine's device slots (count against max_parallel)

    def submit(self, run_id: str, slot: str | None, after: str | None = None) -> None:
        """Start the worker of `run_id` on device slot `slot` (a GPU index, or None for the CPU).

        With `after`, the worker gets ready (imports, device) while run `after` still holds the
        slot and starts the moment that run ends, unless its own run was killed meanwhile or its
        parent did not finish (then it exits without starting).
        """

    def adopt(self, run: Run) -> WorkerStatus:
        """Watch the worker of a `running` run that another scheduler started; alive=False when it cannot
        (not this machine's, or gone)."""

    def wait(self, timeout: float) -> None:
        """Return when a worker submitted here exits, or after `timeout` seconds."""

    def status(self, run_id: str) -> WorkerStatus:
        """Whether the worker of a run submitted (or adopted) here is still alive."""

    def cancel(self, run_id: str) -> None:
        """Ask the run's worker to stop (it checkpoints and ends `killed`)."""
