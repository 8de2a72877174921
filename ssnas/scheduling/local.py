"""`LocalExecutor`: workers as subprocesses of this machine, `python -m ssnas.worker RUN_ID`, output to
the run's log.txt.

Each worker gets a session of its own, so it outlives the scheduler that started it (a scheduler that
dies orphans nothing: the next one adopts the worker by its pid). The scheduler sleeps on pidfds, so
it notices an exit at once. With warm starts (ssnas.scheduling.warm) a worker is forked by a fork server
that has torch imported already; it is the same worker otherwise, and any failure of the server means a
plain subprocess instead.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from ssnas.registry import Registry, pid_alive, this_host
from ssnas.run_record import Run
from ssnas.scheduling.executor import WorkerStatus
from ssnas.scheduling.warm import FORK_SERVER, WarmStarts


def run_folder(runs_dir: Path, run: Run) -> Path:
    """Where a worker writes its run's files: the recorded folder when absolute, else RUNS/RUN_ID (a folder
    recorded relative to another working directory than this process's)."""
    recorded = Path(run.run_dir) if run.run_dir else None
    return recorded if recorded is not None and recorded.is_absolute() else Path(runs_dir) / run.id


def worker_of(pid: int, run_id: str) -> bool:
    """Whether process `pid` is the worker of `run_id` (and not another process that reuses a dead one's pid).

    A plain worker has the run on its command line; a forked one has its fork server's command line and the
    run in its process name (`worker_name`, which it sets itself before it starts the run)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid_alive(pid)  # no /proc: trust the pid
    if b"ssnas.worker" in argv:
        return run_id.encode() in argv
    return FORK_SERVER.encode() in argv and process_name(pid) == worker_name(run_id)


def worker_name(run_id: str) -> str:
    """The process name a forked worker of `run_id` takes (ssnas.forkserver; 15 bytes, the kernel's limit)."""
    return ("w-" + run_id)[:15]


def process_name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def visible_devices(pid: int) -> str | None:
    """The CUDA_VISIBLE_DEVICES a process was started with (its GPU slot), or None (the CPU, or unknown)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for entry in environ:
        if entry.startswith(b"CUDA_VISIBLE_DEVICES="):
            return entry.split(b"=", 1)[1].decode() or None
    return None


class LocalExecutor:
    """Workers as subprocesses of this machine; `cpu_threads` is OMP_NUM_THREADS of a CPU worker; `warm`, when
    given, forks workers from fork servers where it can (ssnas.scheduling.warm)."""

    name = "local"
    prestarts = True
    takes_slots = True

    def __init__(self, registry: Registry, runs_dir: Path, cpu_threads: int | None = None,
                 warm: WarmStarts | None = None) -> None:
        self.registry = registry
        self.runs_dir = Path(runs_dir)
        self.cpu_threads = cpu_threads
        self.warm = warm
        self._processes: dict[str, subprocess.Popen] = {}
        self._forked: dict[str, int] = {}  # run -> pid of a worker a fork server of ours forked
        self._adopted: dict[str, int] = {}  # run -> pid of a worker another scheduler started
        self._exits: dict[str, int] = {}  # a pidfd per live worker: readable once it exits
        self._codes: dict[str, int | None] = {}  # exit codes of forked workers that ended

    def submit(self, run_id: str, slot: str | None, after: str | None = None) -> None:
        run_dir = run_folder(self.runs_dir, self.registry.get_run(run_id))
        run_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if slot is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot
        elif self.cpu_threads:
            env.setdefault("OMP_NUM_THREADS", str(self.cpu_threads))
        command = [sys.executable, "-m", "ssnas.worker", run_id, "--runs", str(self.runs_dir)]
        if after is not None:
            command += ["--after", after]
        with open(run_dir / "log.txt", "ab") as log:
            pid = self.warm.start(slot, run_id, command[3:], env, log.fileno()) if self.warm is not None else None
            if pid is None:
                process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           env=env, start_new_session=True)
        self._forget(run_id)
        if pid is not None:
            self._forked[run_id] = pid
        else:
            self._processes[run_id] = process
            pid = process.pid
        self._watch(run_id, pid)

    def adopt(self, run: Run) -> WorkerStatus:
        """Watch a running run's worker of this machine by its pid (it is no child of ours)."""
        pid = run.pid
        if not pid or run.host != this_host() or not pid_alive(pid) or not worker_of(pid, run.id):
            return WorkerStatus(alive=False, pid=pid)
        self._forget(run.id)
        self._adopted[run.id] = pid
        self._watch(run.id, pid)
        return WorkerStatus(alive=True, pid=pid, slot=visible_devices(pid))

    def status(self, run_id: str) -> WorkerStatus:
        process = self._processes.get(run_id)
        if process is not None:
            code = process.poll()
            if code is not None:
                self._unwatch(run_id)
            return WorkerStatus(alive=code is None, exit_code=code, pid=process.pid)
        pid = self._forked.get(run_id)
        if pid is not None:
            if pid_alive(pid) and not self._exited(run_id):
                return WorkerStatus(alive=True, pid=pid)
            self._unwatch(run_id)
            if self.warm is not None and self.warm.forked(pid):  # asked once: the code is kept from then on
                self._codes[run_id] = self.warm.exit_code(pid)
            return WorkerStatus(alive=False, exit_code=self._codes.get(run_id), pid=pid)
        pid = self._adopted.get(run_id)
        if pid is None:
            return WorkerStatus(alive=False)
        alive = pid_alive(pid)
        if not alive:
            self._unwatch(run_id)
        return WorkerStatus(alive=alive, pid=pid)

    def wait(self, timeout: float) -> None:
        """Sleep until a worker exits (its pidfd turns readable) or `timeout` passes."""
        if not self._exits:
            time.sleep(timeout)
            return
        select.select(list(self._exits.values()), [], [], timeout)

    def cancel(self, run_id: str) -> None:
        process = self._processes.get(run_id)
        pid = process.pid if process is not None else self._forked.get(run_id) or self._adopted.get(run_id) or \
            self.registry.get_run(run_id).pid
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _watch(self, run_id: str, pid: int) -> None:
        if hasattr(os, "pidfd_open"):
            try:
                self._exits[run_id] = os.pidfd_open(pid)
            except OSError:  # gone already, or no pidfds here: status() still tells
                pass

    def _exited(self, run_id: str) -> bool:
        """Whether the pidfd of a run's worker says it exited (a pid alone may be reused meanwhile)."""
        fd = self._exits.get(run_id)
        return fd is not None and bool(select.select([fd], [], [], 0)[0])

    def _unwatch(self, run_id: str) -> None:
        if run_id in self._exits:
            os.close(self._exits.pop(run_id))

    def _forget(self, run_id: str) -> None:
        """Drop what was kept of an earlier worker of the same run (a run resumed, or taken over)."""
        self._unwatch(run_id)
        self._processes.pop(run_id, None)
        self._forked.pop(run_id, None)
        self._codes.pop(run_id, None)
        self._adopted.pop(run_id, None)

    def close(self) -> None:
        """Let the fork servers go (the workers run on)."""
        if self.warm is not None:
            self.warm.close()
