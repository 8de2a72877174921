"""Kill, tag and delete: the rules for each, in one place (the CLI and the dashboard only call these)."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ssnas.errors import SsnasError
from ssnas.registry import Registry, this_host
from ssnas.run_record import ACTIVE, Run
from ssnas.runs.lookup import run_folder

CANCELLED = "cancelled before it started"
RESUMABLE = ("killed", "failed", "lost")  # what `resume` continues from its last checkpoint


def refusal(action: str, run: Run) -> str | None:
    """Why `action` (kill, delete, resume) cannot be done to `run` now, or None.

    The rules of every front end: the actions enforce them, the dashboard asks before it offers one.
    """
    if action == "kill" and run.status not in ACTIVE:
        return f"{run.short_id} is already {run.status}"
    if action == "delete" and run.status == "running":
        return f"{run.short_id} is still running (kill it first)"
    if action == "resume" and run.status not in RESUMABLE:
        return f"{run.short_id} is {run.status}; only {', '.join(RESUMABLE)} runs resume"
    return None


@dataclass(frozen=True)
class Outcome:
    """What an action did to one run, as one line for people."""

    run_id: str
    ok: bool
    message: str


def kill(registry: Registry, runs_dir: Path, runs: Sequence[Run], address: str | None = None) -> list[Outcome]:
    """Stop runs: a running worker is sent SIGTERM (it checkpoints and ends killed); a queued run never starts.

    A Ray run's stop goes through its cluster's head, which its task turns into the same SIGTERM.
    """
    outcomes = []
    queued = {run.id for run in runs if run.status == "queued"}
    runs = [_cancelled_or_current(registry, run) for run in runs]
    cancelled = {run.id for run in runs if run.id in queued and run.status == "killed"}
    on_ray = [run.id for run in runs if run.status in ACTIVE and run.executor == "ray"]
    if on_ray:  # a Ray task may be starting its worker: it sees the stop after the status
        from ssnas.cluster.executor import request_stops

        request_stops(runs_dir, address, on_ray)
    for run in runs:
        refused = refusal("kill", run)
        if run.id in cancelled:
            outcomes.append(Outcome(run.id, True, f"{run.short_id} cancelled before it started"))
        elif refused:
            outcomes.append(Outcome(run.id, False, refused))
        elif run.status == "running" and run.executor != "ray" and not _signal(run):
            outcomes.append(Outcome(run.id, False, f"{run.short_id} runs on {run.host}: kill it from there"))
        else:
            outcomes.append(Outcome(run.id, True, f"{run.short_id} asked to stop"))
    return outcomes


def _cancelled_or_current(registry: Registry, run: Run) -> Run:
    """A queued run ended killed; one that a worker started meanwhile, as it is now (it is signalled)."""
    if run.status == "queued" and registry.cancel_queued(run.id, CANCELLED):
        return run.with_changes(status="killed", error=CANCELLED)
    return registry.get_run(run.id) if run.status == "queued" else run


def _signal(run: Run) -> bool:
    """SIGTERM to a local worker; False when the worker is on another host (its pid means nothing here)."""
    if run.host and run.host != this_host():
        return False
    if run.pid:
        try:
            os.kill(run.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # it ended meanwhile; the scheduler settles its status
    return True


def tag(registry: Registry, run: Run, add: Sequence[str] = (), remove: Sequence[str] = ()) -> Run:
    """Add and remove tags; an empty or blank tag is refused (it could never be selected again)."""
    blank = [t for t in (*add, *remove) if not str(t).strip()]
    if blank or not (add or remove):
        raise SsnasError("tag: give non-empty tags")
    if add:
        registry.add_tags(run.id, [t.strip() for t in add])
    if remove:
        registry.remove_tags(run.id, [t.strip() for t in remove])
    return registry.get_run(run.id)


def delete(registry: Registry, runs_dir: Path, runs: Sequence[Run],
           confirm: Callable[[Sequence[Run]], bool] | None = None) -> list[Outcome]:
    """Forget runs and remove their folders, once `confirm` (the front end's question) says yes.

    A running run is refused (kill it first), and with it the lot, before anyone is asked.
    """
    refused = [reason for reason in (refusal("delete", run) for run in runs) if reason]
    if refused:
        raise SsnasError("; ".join(refused))
    if confirm is not None and not confirm(runs):
        raise SsnasError("nothing deleted")
    outcomes = []
    for run in runs:
        folder = run_folder(runs_dir, run)
        registry.delete_run(run.id)
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        outcomes.append(Outcome(run.id, True, f"deleted {run.short_id}"))
    return outcomes
