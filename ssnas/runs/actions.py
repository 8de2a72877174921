"""Kill, tag and delete: the rules for each, in one place (the CLI and the dashboard only call these)."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ssnas.errors import SsnasError
from ssnas.registry import Registry, this_host
from ssnas.run_record import ACTIVE, Run
from ssnas.runs.format import control_character
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

    A Ray or SLURM run's stop goes through the head its worker is linked to, which turns it into the same
    SIGTERM on the worker's node.
    """
    outcomes = []
    queued = {run.id for run in runs if run.status == "queued"}
    runs = [_cancelled_or_current(registry, run) for run in runs]
    cancelled = {run.id for run in runs if run.id in queued and run.status == "killed"}
    on_ray = [run.id for run in runs if run.status in ACTIVE and run.executor == "ray"]
    if on_ray:  # a Ray task may be starting its worker: it sees the stop after the status
        from ssnas.cluster.executor import request_stops

        request_stops(runs_dir, address, on_ray)
    on_slurm = [run for run in runs if run.status in ACTIVE and run.executor == "slurm"]
    if on_slurm:
        from ssnas.cluster.slurm_executor import request_stops as request_slurm_stops

        request_slurm_stops(runs_dir, on_slurm)
    for run in runs:
        refused = refusal("kill", run)
        if run.id in cancelled:
            outcomes.append(Outcome(run.id, True, f"{run.short_id} cancelled before it started"))
        elif refused:
            outcomes.append(Outcome(run.id, False, refused))
        elif run.status == "running" and run.executor not in ("ray", "slurm") and not _signal(run):
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


def tag_problem(tag: str) -> str | None:
    """Why `tag` cannot be a tag, or None: a blank one could never be selected again, and a control
    character would act on the terminal of whoever lists it."""
    if not tag.strip():
        return f"tag {tag!r}: tags must be non-empty"
    control = control_character(tag)
    if control is not None:
        return f"tag {tag!r}: has a control character ({control})"
    return None


def tag(registry: Registry, run: Run, add: Sequence[str] = (), remove: Sequence[str] = ()) -> Run:
    """Add and remove tags (surrounding blanks dropped). A new tag that `tag_problem` refuses refuses them all;
    any tag a run has can be removed, one stored before the rule too."""
    if not (add or remove):
        raise SsnasError("tag: give non-empty tags")
    problems = [problem for problem in map(tag_problem, add) if problem]
    if problems:
        raise SsnasError(problems[0])
    if add:
        registry.add_tags(run.id, [t.strip() for t in add])
    if remove:
        registry.remove_tags(run.id, [t.strip() for t in remove])
    return registry.get_run(run.id)


def subtree(runs: Sequence[Run], every: Iterable[Run]) -> list[Run]:
    """`runs` and every run below them (children, grandchildren, ...), each once, parents before children."""
    children: dict[str, list[Run]] = {}
    for run in every:
        if run.parent_id:
            children.setdefault(run.parent_id, []).append(run)
    found = {run.id: run for run in runs}
    level = list(found.values())
    while level:
        level = [child for run in level for child in children.get(run.id, []) if child.id not in found]
        found.update((child.id, child) for child in level)
    return list(found.values())


def delete_refusals(targets: Sequence[Run], every: Iterable[Run]) -> list[str]:
    """Why deleting `targets` together is refused: a running run, or a run whose children would be left
    pointing at nothing (they go too only when asked for: `subtree`)."""
    doomed = {run.id for run in targets}
    kept: dict[str, list[str]] = {}
    for run in every:
        if run.parent_id in doomed and run.id not in doomed:
            kept.setdefault(run.parent_id, []).append(run.id[:8])
    reasons = [reason for reason in (refusal("delete", run) for run in targets) if reason]
    return reasons + [f"{run.short_id} has {len(kept[run.id])} child run(s) ({', '.join(kept[run.id])}): "
                      "delete them with it (--with-children) or first" for run in targets if run.id in kept]


def delete(registry: Registry, runs_dir: Path, runs: Sequence[Run],
           confirm: Callable[[Sequence[Run]], bool] | None = None, with_children: bool = False) -> list[Outcome]:
    """Forget runs and remove their folders, once `confirm` (the front end's question, given every run that
    goes) says yes; `with_children` takes every run below them too.

    A refusal (`delete_refusals`) refuses the lot, before anyone is asked. Children go before their
    parents, so that an interrupted delete leaves no run pointing at nothing.
    """
    every = registry.runs(sort="created_at")
    targets = subtree(runs, every) if with_children else list(runs)
    refused = delete_refusals(targets, every)
    if refused:
        raise SsnasError("; ".join(refused))
    if confirm is not None and not confirm(targets):
        raise SsnasError("nothing deleted")
    outcomes = []
    for run in reversed(targets):
        folder = run_folder(runs_dir, run)
        registry.delete_run(run.id)
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        outcomes.append(Outcome(run.id, True, f"deleted {run.short_id}"))
    return outcomes[::-1]
