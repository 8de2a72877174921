"""`python -m ssnas.worker RUN_ID --runs DIR`: one stage of one run, as its own process.

The worker reads its run from the registry, marks it running, trains, and ends it `finished`,
`killed` (SIGTERM: it checkpoints at the next step and stops; a stop that comes before the first step,
from the worker's first instant on, ends it at once), or `failed` (an exception or a non-finite loss,
with the message; a failed write with the OS's reason, "No space left on device"). A run that already
has a checkpoint resumes from it, and rows logged after that checkpoint are dropped first; one without
a checkpoint starts over, its earlier rows dropped: a resumed run's history reads as one. Its exit code
says which (`WorkerExit`), also when the registry refused to record the end; a run it may not start (no
longer queued, already running, its parent did not finish) it leaves as it is and exits `NOT_STARTED`.

Where the run's files live and how the registry is reached is the `Place` of the run: locally, the
run's folder and the registry file; on a Ray node (`--head-fd`), a scratch folder and a link to the
registry on the head, through the Ray task that started the worker (ssnas.cluster.link).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ssnas.errors import RegistryError
from ssnas.records import WorkerRecords
from ssnas.registry import Registry
from ssnas.run_record import TERMINAL, Run
from ssnas.scheduling.executor import WorkerExit
from ssnas.scheduling.local import run_folder
from ssnas.writes import os_error, remove_temporaries, say

if TYPE_CHECKING:
    from ssnas.tracking import RunReporter


@dataclass(frozen=True)
class Place:
    """Where a worker finds its run's files, and how its reporter reaches the registry."""

    run_dir: Path  # the run's folder: checkpoint, genotype, TensorBoard files
    parent_dir: Path | None  # the parent run's folder (its genotype.json, pretrained.pt)
    open_sink: Callable[[], WorkerRecords]  # opened on the reporter's flusher thread
    on_files: Callable[[], None] | None = None  # told when the run's files changed
    node: str | None = None  # the cluster node to record (default: the host)


def _device_name(requested: str) -> str:
    import torch

    if requested in ("auto", "cuda") and torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0")
        return f"cuda:{visible} ({torch.cuda.get_device_name(0)})"
    return "cpu" if requested == "auto" else requested


def wait_for_end(registry: Registry, run_id: str, poll: float = 0.05) -> bool:
    """Get ready while run `run_id` goes on (the one whose device slot this worker takes over), then
    wait for it to end; False when the scheduler that started this worker went away meanwhile (the
    next scheduler adopts the queue and starts this run itself).

    What a prestarted worker does: the seconds of importing torch and the training code overlap
    the other run's last steps instead of following them.
    """
    scheduler = os.getppid()  # a scheduler that dies leaves this worker to init (or a subreaper)
    import torch._dynamo  # noqa: F401 - torch.optim imports it on first use: 1.5 s on a small CPU

    import ssnas.execution  # noqa: F401
    import ssnas.tracking  # noqa: F401

    print(f"[info] prestarted: ready, waiting for run {run_id}", flush=True)
    while registry.get_run(run_id).status not in TERMINAL:
        if os.getppid() != scheduler:
            return False
        time.sleep(poll)
    return os.getppid() == scheduler


def why_not_startable(registry: WorkerRecords, run: Run) -> str | None:
    """Why a run must not start (killed or started by another worker meanwhile, or its parent did not finish)."""
    if run.status != "queued":
        return f"it is {run.status}"
    if run.parent_id and registry.get_run(run.parent_id).status != "finished":
        return f"parent {run.parent_id} did not finish"
    return None


def run_worker(run_id: str, runs_dir: Path, after: str | None = None) -> int:
    """Run the stage against this machine's registry file; returns the exit code (`work`'s, or
    NOT_STARTED when a prestarted run must not start after all)."""
    registry = Registry(runs_dir / "registry.db", create=False)
    try:
        if after is not None and not wait_for_end(registry, after):
            print("[info] not started: the scheduler that prestarted this worker is gone; the next one starts it",
                  flush=True)
            return WorkerExit.NOT_STARTED
        run = registry.get_run(run_id)
        parent_dir = run_folder(runs_dir, registry.get_run(run.parent_id)) if run.parent_id else None
        place = Place(run_folder(runs_dir, run), parent_dir, lambda: Registry(registry.path, create=False))
        return work(registry, run, place)
    finally:
        registry.close()


def run_linked_worker(run_id: str, scratch: Path, fd: int, node: str | None) -> int:
    """The worker of a Ray run: its files in `scratch/RUN_ID`, its parent's in `scratch/PARENT_ID`, its
    registry calls through the link to its task (ssnas.cluster.link)."""
    from ssnas.cluster.link import HeadLink

    link = HeadLink.from_fd(fd)
    run = link.get_run(run_id)
    parent = run.parent_id
    place = Place(scratch / run_id, scratch / parent if parent else None, lambda: link, link.ship_files, node)
    return work(link, run, place)


class StopRequest:
    """SIGTERM noted from the worker's first instant: before its reporter exists a stop is only
    remembered (the default action would kill the worker and leave its run `lost`), then it is passed on
    to the reporter, whose stage stops at its next step."""

    def __init__(self) -> None:
        self.requested = False
        self._pass_on: Callable[[], None] | None = None

    def on_signal(self, signum: int, frame: object) -> None:
        self.requested = True
        if self._pass_on is not None:
            self._pass_on()

    def pass_to(self, request_stop: Callable[[], None]) -> None:
        """From now on (and at once, if one came already) a stop goes to `request_stop`."""
        self._pass_on = request_stop
        if self.requested:
            request_stop()


@contextlib.contextmanager
def noting_stops() -> Iterator[StopRequest]:
    """SIGTERM handled by a `StopRequest` while the block runs (the previous handler after it)."""
    stop = StopRequest()
    previous = signal.signal(signal.SIGTERM, stop.on_signal)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def failure_text(error: BaseException) -> str:
    """A failed run's error: the exception in one line, with the OS's reason when an OSError lies behind it
    (torch says "unexpected pos 576 vs 534" where the disk is full)."""
    text = f"{type(error).__name__}: {error}".splitlines()[0]
    cause = os_error(error)
    if cause is not None and str(cause.strerror) not in text:
        text += f" ({cause.strerror})"
    return text


def resume_point(registry: WorkerRecords, run_id: str, run_dir: Path) -> dict[str, Any] | None:
    """The checkpoint to go on from, with the rows logged after it dropped; without one the run starts over,
    and every row and TensorBoard file an earlier attempt logged is dropped: either way its history reads
    as one. Events stay: they are the log of every attempt."""
    import torch

    from ssnas.tracking import CHECKPOINT

    if not (run_dir / CHECKPOINT).exists():
        registry.delete_rows_after(run_id, -1)  # every step (they count from 0)
        shutil.rmtree(run_dir / "tb", ignore_errors=True)
        return None
    resume = torch.load(run_dir / CHECKPOINT, weights_only=True)
    registry.delete_rows_after(run_id, resume["position"]["step"])
    say(f"[info] resuming from step {resume['position']['step']}")
    return resume


def work(registry: WorkerRecords, run: Run, place: Place) -> int:
    """Run the stage of `run`, recorded through `registry` (a `Registry`, or what stands for it on a
    Ray node); returns the process exit code (a `WorkerExit`)."""
    with noting_stops() as stop:  # before start_run: `ssnas kill` signals the pid that start_run records
        run_id = run.id
        reason = why_not_startable(registry, run)
        if reason is None:
            try:  # refused when another worker started it first (one of two schedulers' for the same run)
                registry.start_run(run_id, pid=os.getpid(), host=socket.gethostname(), device="starting",
                                   node=place.node)
            except RegistryError as error:
                reason = str(error)
        if reason is not None:
            say(f"[info] not started: {reason}")
            return WorkerExit.NOT_STARTED
        return _run_stage(registry, run, place, stop)


def _run_stage(registry: WorkerRecords, run: Run, place: Place, stop: StopRequest) -> int:
    """The started run's stage, to its end; the end recorded by `_record_end` whichever way it comes."""
    run_id, run_dir = run.id, place.run_dir
    reporter = None
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        from ssnas.execution import run_stage
        from ssnas.recipe import recipe_from_dict
        from ssnas.sinks import TrackingSinks
        from ssnas.stages.loop import stopped_before_start
        from ssnas.stages.runtime import configure_threads
        from ssnas.tracking import RunReporter

        configure_threads()
        recipe = recipe_from_dict(run.config or {}, path=run.recipe_path or "<registry>")
        registry.update_run(run_id, device=_device_name(recipe.run.device))
        if stop.requested:
            raise stopped_before_start(run.stage)
        remove_temporaries(run_dir)
        resume = resume_point(registry, run_id, run_dir)
        purge_step = 0 if resume is None else resume["position"]["step"] + 1  # TensorBoard drops what follows
        sinks = TrackingSinks.open(recipe.run.sinks, run_id, run_dir, run.config or {})  # plugins' (run.sinks)
        reporter = RunReporter(sinks.copying(place.open_sink), run_id, run_dir, hparams=run.config or {},
                               on_files=place.on_files, name=run.name, purge_step=purge_step)
        stop.pass_to(reporter.request_stop)
        summary = run_stage(run.stage, recipe, run_dir, place.parent_dir, reporter, resume=resume)
        reporter.close("finished")
        reporter = None
        say(json.dumps(summary))
        registry.finish_run(run_id, "finished")
        return WorkerExit.FINISHED
    except BaseException as error:  # noqa: BLE001 - every way out must leave the run in a final state
        return _record_end(registry, run_id, reporter, error)


def _record_end(registry: WorkerRecords, run_id: str, reporter: RunReporter | None, error: BaseException) -> int:
    """End the run `killed` (stopped) or `failed` (with the reason) and return the exit code that says so.

    The status is recorded before anything is printed, since the log may be on a disk that is full. When
    the registry refuses the record too, the reason goes to stderr and the exit code still tells the
    scheduler how the run ended (it records that in the worker's place)."""
    from ssnas.stages.training import StageStopped

    if isinstance(error, (StageStopped, KeyboardInterrupt)):
        status, text, code = "killed", str(error) or "interrupted", WorkerExit.KILLED
    else:
        status, text, code = "failed", failure_text(error), WorkerExit.FAILED
    if reporter is not None:
        try:
            reporter.close(status)
        except Exception as close_error:  # noqa: BLE001
            say(f"[error] tracking: {close_error}", sys.stderr)
    try:
        registry.finish_run(run_id, status, error=text)
    except Exception as record_error:  # noqa: BLE001 - the exit code still says how it ended
        say(f"[error] run {run_id} ended {status} ({text}), but that could not be recorded: {record_error}",
            sys.stderr)
    if status == "killed":
        say(f"[info] {text}")
    else:
        say("".join(traceback.format_exception(error)).rstrip(), sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssnas.worker", description="Run one stage of one registered run.")
    parser.add_argument("run_id")
    parser.add_argument("--runs", default="runs", help="the runs folder holding registry.db")
    parser.add_argument("--after", metavar="RUN", help="get ready now, start when run RUN has ended "
                        "(and this run's parent has finished)")
    parser.add_argument("--head-fd", type=int, metavar="FD",
                        help="on a Ray node: reach the head's registry through the socket FD of the Ray task that "
                             "started this worker, with --runs a scratch folder (ssnas.cluster)")
    parser.add_argument("--node", help="with --head-fd: the Ray node's name, recorded on the run")
    args = parser.parse_args(argv)
    if args.head_fd is not None:
        return run_linked_worker(args.run_id, Path(args.runs), args.head_fd, args.node)
    return run_worker(args.run_id, Path(args.runs), args.after)


def exit_process(exit_code: int) -> NoReturn:
    """End the worker process with `exit_code` once its output is flushed (what the log's disk still takes).

    Registry, reporter, event files and checkpoint are all closed by now; skipping the interpreter's
    teardown of torch saves 0.8 s per worker, which a chain of stages waits for. A worker forked by the
    fork server (ssnas.forkserver) ends the same way: it must never return into the server's loop."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(exit_code)


if __name__ == "__main__":
    exit_process(main())
