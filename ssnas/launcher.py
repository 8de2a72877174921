"""Queue runs, give each a device, start their workers through an Executor, and wait for them.

`Executor` is the seam other engines plug into (`LocalExecutor` here, `RayExecutor` in
ssnas.cluster.executor): it starts one worker for one run and can say whether it is still alive,
show its log, and cancel it. The `Scheduler` knows nothing of processes: it starts runs whose
parent has finished, at most `max_parallel` at once, one device slot each (a GPU index through
CUDA_VISIBLE_DEVICES, or the CPU).
"""

from __future__ import annotations

import os
import platform
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ssnas.registry import Registry
from ssnas.run_record import TERMINAL

if TYPE_CHECKING:
    from ssnas.cluster import RayOptions


@dataclass(frozen=True)
class WorkerStatus:
    alive: bool
    exit_code: int | None = None
    pid: int | None = None  # the worker's process id, where the executor knows it


class Executor(Protocol):
    name: str
    prestarts: bool  # whether submit(after=RUN) can start a worker that waits for another run

    def submit(self, run_id: str, slot: str | None, after: str | None = None) -> None:
        """Start the worker of `run_id` on device slot `slot` (a GPU index, or None for the CPU).

        With `after`, the worker gets ready (imports, device) while run `after` still holds the
        slot and starts the moment that run ends, unless its own run was killed meanwhile or its
        parent did not finish (then it exits without starting).
        """

    def wait(self, timeout: float) -> None:
        """Return when a worker submitted here exits, or after `timeout` seconds."""

    def status(self, run_id: str) -> WorkerStatus:
        """Whether the worker of a run submitted here is still alive."""

    def logs(self, run_id: str, lines: int = 20) -> str:
        """The last lines of the run's log."""

    def cancel(self, run_id: str) -> None:
        """Ask the run's worker to stop (it checkpoints and ends `killed`)."""


def tail(path: Path, lines: int) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64 * 1024))
        return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])


class LocalExecutor:
    """Workers as subprocesses of this machine: `python -m ssnas.worker RUN_ID`, output to log.txt."""

    name = "local"
    prestarts = True

    def __init__(self, registry: Registry, runs_dir: Path, cpu_threads: int | None = None) -> None:
        self.registry = registry
        self.runs_dir = Path(runs_dir)
        self.cpu_threads = cpu_threads
        self._processes: dict[str, subprocess.Popen] = {}
        self._exits: dict[str, int] = {}  # a pidfd per live worker: readable once it exits

    def submit(self, run_id: str, slot: str | None, after: str | None = None) -> None:
        run_dir = Path(self.registry.get_run(run_id)["run_dir"])
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
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env, start_new_session=True)
        self._processes[run_id] = process
        if hasattr(os, "pidfd_open"):
            self._exits[run_id] = os.pidfd_open(process.pid)

    def status(self, run_id: str) -> WorkerStatus:
        process = self._processes.get(run_id)
        if process is None:
            return WorkerStatus(alive=False)
        code = process.poll()
        if code is not None and run_id in self._exits:
            os.close(self._exits.pop(run_id))
        return WorkerStatus(alive=code is None, exit_code=code, pid=process.pid)

    def wait(self, timeout: float) -> None:
        """Sleep until a worker exits (its pidfd turns readable) or `timeout` passes."""
        if not self._exits:
            time.sleep(timeout)
            return
        select.select(list(self._exits.values()), [], [], timeout)

    def logs(self, run_id: str, lines: int = 20) -> str:
        return tail(Path(self.registry.get_run(run_id)["run_dir"]) / "log.txt", lines)

    def cancel(self, run_id: str) -> None:
        process = self._processes.get(run_id)
        pid = process.pid if process is not None else self.registry.get_run(run_id).get("pid")
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def detect_gpus() -> list[str]:
    """GPU indices on this machine, asked of nvidia-smi (importing torch here would cost seconds)."""
    if shutil.which("nvidia-smi") is None:
        return []
    done = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True)
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def git_commit(path: Path) -> str | None:
    done = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def package_versions() -> dict[str, str]:
    """Versions recorded with every run (read from metadata: importing torch here would be slow)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("ssnas", "torch", "torchvision", "transformers"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            pass
    return versions


def new_group_id() -> str:
    return "g" + uuid.uuid4().hex[:11]


class Scheduler:
    """Starts queued runs when their parent has finished, within `max_parallel` and device slots."""

    def __init__(self, registry: Registry, executor: Executor, slots: Sequence[str | None], max_parallel: int) -> None:
        self.registry = registry
        self.executor = executor
        self.free = list(slots)
        self.max_parallel = max(1, min(max_parallel, len(self.free)))
        self.active: dict[str, str | None] = {}
        self.standby: dict[str, str] = {}  # prestarted run -> the active run whose slot it will take over
        self.handed_off: set[str] = set()  # runs another scheduler took over (a resume)

    def _ready(self, run: dict) -> bool | None:
        """True to start, False to wait, None when the run can never start (its parent did not finish)."""
        if not run.get("parent_id"):
            return True
        parent = self.registry.get_run(run["parent_id"])["status"]
        if parent == "finished":
            return True
        return False if parent not in TERMINAL else None

    def step(self, run_ids: Sequence[str]) -> bool:
        """One scheduling pass; True while any of `run_ids` is queued or active.

        When the executor can, the run that will take an active run's slot is prestarted on it, so
        that its imports and set-up overlap the active run's last steps: a chain's next stage on
        its parent's slot, and, when every GPU slot is taken, a ready run on the slot of the active
        run furthest along.
        """
        for run_id, slot in list(self.active.items()):
            worker = self.executor.status(run_id)
            if not worker.alive:
                del self.active[run_id]
                self._settle(run_id, worker)
                successor = next((s for s, before in self.standby.items() if before == run_id), None)
                if successor is None:
                    self.free.append(slot)
                else:  # the prestarted run takes the slot over (or exits at once if it may not start)
                    del self.standby[successor]
                    self.active[successor] = slot
        for waiting in list(self.standby):
            worker = self.executor.status(waiting)
            if not worker.alive:  # died while waiting: settled like a worker that never started
                del self.standby[waiting]
                self._settle(waiting, worker)
        pending = False
        without_slot: list[str] = []  # ready runs that found every slot taken
        for run_id in run_ids:
            if run_id in self.handed_off:
                continue
            run = self.registry.get_run(run_id)
            if run["status"] != "queued" or run_id in self.active or run_id in self.standby:
                pending = pending or run_id in self.active or run_id in self.standby
                continue
            ready = self._ready(run)
            if ready is None:
                parent = run["parent_id"]
                self.registry.finish_run(run_id, "failed", error=f"not started: parent {parent} did not finish")
                continue
            pending = True
            if ready and len(self.active) < self.max_parallel and self.free:
                slot = self.free.pop(0)
                self.active[run_id] = slot
                self.executor.submit(run_id, slot)
            elif ready:
                without_slot.append(run_id)
            elif run["parent_id"] in self._open_slots():  # children first: a chain keeps its slot
                self._prestart(run_id, run["parent_id"])
        for run_id in without_slot:
            # on GPU slots only: on a CPU whose cores the running workers already fill, a waiting
            # worker's imports only take from them (the paper's synthetic sweep took 6.5 min with
            # this on CPU slots, 6.0 without)
            open_gpu_slots = [r for r in self._open_slots() if self.active[r] is not None]
            if open_gpu_slots:
                self._prestart(run_id, max(open_gpu_slots, key=self._progress))
        return pending or bool(self.active)

    def _open_slots(self) -> list[str]:
        """Active runs whose slot no prestarted run has claimed yet (none if the executor can't prestart)."""
        if not getattr(self.executor, "prestarts", False):
            return []
        claimed = set(self.standby.values())
        return [run_id for run_id in self.active if run_id not in claimed]

    def _progress(self, run_id: str) -> float:
        return self.registry.get_run(run_id).get("progress") or 0.0

    def _prestart(self, run_id: str, before: str) -> None:
        self.standby[run_id] = before
        self.executor.submit(run_id, self.active[before], after=before)

    def _settle(self, run_id: str, worker: WorkerStatus) -> None:
        """Give a run whose worker exited a final status, unless that worker's run is no longer ours."""
        run = self.registry.get_run(run_id)
        ours = worker.pid is None or run.get("pid") == worker.pid
        if run["status"] == "running" and ours:
            self.registry.finish_run(run_id, "lost", error="worker process exited without a final status")
        elif run["status"] == "queued" and run.get("pid") is None:
            if self._ready(run) is None:
                error = f"not started: parent {run['parent_id']} did not finish"
            else:
                error = f"worker exited (code {worker.exit_code}) before it started; see its log.txt"
            self.registry.finish_run(run_id, "failed", error=error)
        elif run["status"] not in TERMINAL:
            self.handed_off.add(run_id)  # resumed, and so another scheduler's now

    def cancel_all(self, run_ids: Sequence[str]) -> None:
        """Stop active runs (they checkpoint and end killed) and mark the queued ones killed."""
        for run_id in [*self.active, *self.standby]:
            self.executor.cancel(run_id)
        for run_id in run_ids:
            if self.registry.get_run(run_id)["status"] == "queued" and run_id not in self.active:
                self.registry.finish_run(run_id, "killed", error="cancelled before it started")

    def run(self, run_ids: Sequence[str], on_tick: Callable[[], None] | None = None, interval: float = 0.5) -> None:
        """Schedule until every run ended; Ctrl-C stops them cleanly."""
        try:
            while self.step(run_ids):
                if on_tick is not None:
                    on_tick()
                self.executor.wait(interval)
        except KeyboardInterrupt:
            self.cancel_all(run_ids)
            while self.active or self.standby:
                self.step(run_ids)
                self.executor.wait(interval)
            raise
        if on_tick is not None:
            on_tick()


def device_slots(gpus: Sequence[str] | None, max_parallel: int | None) -> tuple[list[str | None], int]:
    """Slots and parallelism: one worker per listed GPU, else `max_parallel` CPU workers (default 1)."""
    if gpus:
        return list(gpus), max_parallel or len(gpus)
    count = max_parallel or 1
    return [None] * count, count


def open_executor(name: str, registry: Registry, runs_dir: Path, cpu_threads: int | None = None,
                  ray_options: RayOptions | None = None) -> Executor:
    """The executor that runs' `executor` column names: local subprocesses, or tasks on a Ray cluster."""
    if name == "ray":
        from ssnas.cluster import RayOptions
        from ssnas.cluster.executor import RayExecutor

        return RayExecutor(registry, runs_dir, ray_options or RayOptions())
    return LocalExecutor(registry, runs_dir, cpu_threads)


def host_name() -> str:
    return socket.gethostname()


def main(argv: list[str] | None = None) -> int:
    """`python -m ssnas.launcher RUN...`: the scheduler of a detached `ssnas run`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ssnas.launcher")
    parser.add_argument("run_ids", nargs="+")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--gpus", default="")
    parser.add_argument("--max-parallel", type=int, default=None)
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--address", help="with --executor ray: the cluster")
    parser.add_argument("--ray-cpus", type=int, default=1)
    parser.add_argument("--ray-resource", action="append", default=[], metavar="NAME=AMOUNT")
    args = parser.parse_args(argv)
    runs_dir = Path(args.runs)
    registry = Registry(runs_dir / "registry.db", create=False)
    slots, parallel = device_slots([g for g in args.gpus.split(",") if g], args.max_parallel)
    ray_options = None
    if args.executor == "ray":
        from ssnas.cluster import RayOptions, parse_resources

        ray_options = RayOptions(args.address, args.ray_cpus, parse_resources(args.ray_resource))
    executor = open_executor(args.executor, registry, runs_dir, ray_options=ray_options)
    Scheduler(registry, executor, slots, parallel).run(args.run_ids, interval=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
