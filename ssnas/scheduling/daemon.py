"""The scheduler of one runs folder, as a process of its own: `python -m ssnas.scheduling.daemon --runs DIR`.

Every submission (`ssnas run`, `resume`, `rerun`, `queue`, the dashboard) only writes queued rows and
then calls `ensure_scheduler`, which starts this process when the folder has none. It holds the
folder's lock for its life (ssnas.scheduling.state), runs every queued run of the folder within the
folder's settings (re-read on every pass, so `ssnas queue --max-parallel` takes effect at once),
marks dead workers' runs lost (`Registry.reconcile`), and exits when nothing has been queued or
running for `LINGER_S` seconds. It runs in a session of its own, its output appended to
runs/scheduler.log, so closing the terminal that started it stops nothing.

Leaving is race-free: it gives the lock up first, then looks at the queue once more and takes the
lock again if runs came meanwhile; a submitter that finds the lock held counts on the holder. A
scheduler that dies (SIGKILL) orphans nothing: its workers run on in their own sessions, and the next
scheduler adopts them and the queue. SIGTERM, SIGINT and SIGHUP make it leave the same way, at once.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from ssnas.errors import SsnasError
from ssnas.registry import Registry
from ssnas.run_record import Run
from ssnas.scheduling.environment import cpu_count, detect_gpus, host_name
from ssnas.scheduling.executor import Executor
from ssnas.scheduling.local import LocalExecutor
from ssnas.scheduling.scheduler import LOCAL, Engines, Scheduler
from ssnas.scheduling.state import (
    LOG_FILE,
    FolderLock,
    SchedulerState,
    Settings,
    read_settings,
    read_state,
    record_applied,
    record_scheduler,
    scheduler_alive,
    update_settings,
)
from ssnas.scheduling.warm import WarmStarts, warm_setting

LINGER_S = 2.0  # how long an idle scheduler waits for new runs before it exits
POLL_S = 0.5  # a pass at least this often (a worker's exit wakes it at once)
RAY_OPTIONS_GRACE_S = 10.0  # a Ray run's options are written just after its row: wait that long for them
ADOPTING = ("slurm",)  # executors whose running runs a new scheduler can watch (a Ray task dies with its driver)
MAX_FAILED_PASSES = 20  # consecutive passes that could not read the registry before the scheduler gives up


def ensure_scheduler(runs_dir: Path, max_parallel: int | None = None, gpus: tuple[str, ...] | None = None
                     ) -> SchedulerState:
    """Save the settings given (None keeps one) and make sure the folder's scheduler runs: start one when
    no process holds the folder's lock. Returns the folder's scheduler state."""
    runs_dir = Path(runs_dir)
    settings = update_settings(runs_dir, max_parallel, gpus)
    if scheduler_alive(runs_dir):
        return read_state(runs_dir)
    pid = start_scheduler(runs_dir)
    return SchedulerState(settings, alive=True, pid=pid, host=host_name(), started_at=time.time())


def start_scheduler(runs_dir: Path) -> int:
    """Start `python -m ssnas.scheduling.daemon` for the folder, detached; returns its pid (it exits at
    once if another scheduler took the folder meanwhile)."""
    runs_dir = Path(runs_dir).resolve()
    with open(runs_dir / LOG_FILE, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "ssnas.scheduling.daemon", "--runs", str(runs_dir)],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    return process.pid


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {message}", flush=True)


def describe(settings: Settings, found: list[str]) -> str:
    slots = settings.slots(found)
    where = f"GPUs {','.join(s for s in slots if s is not None)}" if slots[0] is not None else "CPU"
    return f"max-parallel {settings.parallel(found)} on {where}"


def open_engine(registry: Registry, runs_dir: Path, name: str, run: Run) -> Executor:
    """The executor of a run that is not local (Ray, SLURM), connected on first use."""
    if name == "ray":
        from ssnas.cluster import RayOptions
        from ssnas.cluster.executor import RayExecutor

        return RayExecutor(registry, runs_dir, RayOptions.from_json(run.ray_options))
    if name == "slurm":
        from ssnas.cluster.slurm_executor import SlurmExecutor

        return SlurmExecutor(registry, runs_dir)
    raise SsnasError(f"unknown executor {name!r} (this ssnas runs local, ray and slurm)")


def open_adopters(engines: Engines, registry: Registry) -> None:
    """Open the executors that can adopt the running runs another scheduler left (SLURM's: its jobs outlive
    their scheduler), so that this one's first pass adopts them; one that cannot open leaves them to the
    heartbeat (`Registry.reconcile`)."""
    for run in registry.runs(status="running"):
        if run.executor in ADOPTING and run.executor not in engines.opened:
            try:
                engines.for_run(run)
            except SsnasError as error:
                log(f"cannot watch the {run.executor} runs: {error}")


def options_pending(run: Run) -> bool:
    """A cluster run whose submission has not written its options yet (they follow its row at once)."""
    return run.executor not in (None, LOCAL) and run.ray_options is None and time.time() - run.created_at < \
        RAY_OPTIONS_GRACE_S


class Daemon:
    """One scheduler process's life: the lock, the settings, the passes, and leaving."""

    def __init__(self, runs_dir: Path, lock: FolderLock) -> None:
        self.runs_dir = runs_dir
        self.lock = lock
        self.stopping = False
        self.registry = Registry(runs_dir / "registry.db", create=False)
        self.found = detect_gpus()
        self.cores = cpu_count()
        self.settings = read_settings(runs_dir)
        warm = warm_setting()
        self.local = LocalExecutor(self.registry, runs_dir,
                                   warm=None if warm == "off" else WarmStarts(runs_dir, gpus=warm == "all", log=log))
        engines = Engines({LOCAL: self.local}, functools.partial(open_engine, self.registry, runs_dir),
                          pending=options_pending)
        self.scheduler = Scheduler(self.registry, engines, [None], 1, log=log)
        open_adopters(engines, self.registry)
        self._apply(self.settings)

    def _apply(self, settings: Settings) -> None:
        self.settings = settings
        slots = settings.slots(self.found)
        self.scheduler.configure(slots, settings.parallel(self.found))
        self.local.cpu_threads = settings.cpu_threads(self.found, self.cores)
        if self.local.warm is not None:
            self.local.warm.slots = slots
        record_applied(self.runs_dir, self.scheduler.max_parallel, [s for s in slots if s is not None])
        log(f"settings: {describe(settings, self.found)}")

    def run(self) -> None:
        record_scheduler(self.runs_dir, os.getpid(), host_name())
        log(f"scheduler of {self.runs_dir} started")
        idle_since: float | None = None
        failed_passes = 0
        while not self.stopping:
            try:
                settings = read_settings(self.runs_dir)
                if settings != self.settings:
                    self._apply(settings)
                busy = self.scheduler.step()
                failed_passes = 0
            except (SsnasError, sqlite3.Error, OSError) as error:
                failed_passes += 1
                log(f"pass failed ({failed_passes}): {error}")
                if failed_passes >= MAX_FAILED_PASSES or not (self.runs_dir / "registry.db").exists():
                    break
                busy = True
            if busy:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= LINGER_S:
                if not self._stay():
                    break
                idle_since = None
            self.scheduler.wait(POLL_S)
        self.local.close()
        log("scheduler stopped" if self.stopping else "scheduler idle: exiting")

    def _stay(self) -> bool:
        """Give the lock up, then look once more: runs queued meanwhile keep this scheduler (unless another
        one took the lock in between)."""
        record_scheduler(self.runs_dir, None)
        self.lock.release()
        try:
            if not self.registry.runs(status="queued", limit=1):
                return False
        except (SsnasError, sqlite3.Error):
            return False
        if not self.lock.acquire():
            return False
        record_scheduler(self.runs_dir, os.getpid(), host_name())
        return True

    def stop(self, signum: int, frame: object) -> None:
        self.stopping = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssnas.scheduling.daemon",
                                     description="Run every queued run of a runs folder (one scheduler per folder).")
    parser.add_argument("--runs", default="runs", help="the runs folder holding registry.db")
    args = parser.parse_args(argv)
    runs_dir = Path(args.runs).resolve()
    lock = FolderLock(runs_dir)
    if not lock.acquire():
        log(f"another scheduler runs {runs_dir}: exiting")
        return 0
    try:
        daemon = Daemon(runs_dir, lock)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, daemon.stop)
        daemon.run()
    except SsnasError as error:
        log(f"cannot schedule: {error}")
        return 1
    finally:
        if lock.held:
            record_scheduler(runs_dir, None)
            lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
