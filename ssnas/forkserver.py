"""`python -m ssnas.forkserver --runs DIR --fd FD`: warm starts for local workers (issue 15).

A fresh `python -m ssnas.worker` pays about 3 s of interpreter start and torch import per run (on a small,
busy CPU much more). The scheduler of a runs folder keeps one fork server per device slot: it imports torch,
`torch._dynamo` and the stage modules once, then forks one child per run, and the child runs exactly what
`python -m ssnas.worker RUN_ID ...` runs (`ssnas.worker.main`). Each run stays a process of its own: a
crash fails one run, its memory goes back at its exit, SIGTERM to its pid checkpoints and ends it `killed`.

Fork safety. The server runs no torch op, opens no registry and starts no thread of its own, so no OpenMP
pool, SQLite connection or lock exists when it forks (numpy's OpenBLAS pool is shut down by its own
pthread_atfork handler); it refuses to serve when a Python thread or CUDA is up. A child becomes what a
fresh worker would be: its own session, the environment and log the scheduler gave it, its thread count
set from OMP_NUM_THREADS (libgomp read the variable when the server imported torch), fresh seeds for
torch's and numpy's global generators (Python's `random` reseeds itself after a fork), and its process
name (`/proc/PID/comm`) set to `worker_name(RUN_ID)`, by which a later scheduler recognises it.

The protocol, one JSON object per SOCK_SEQPACKET message on the socket FD: the server says
`{"ready": PID}` (or `{"refused": WHY}` and exits); the scheduler asks `{"run": ID, "argv": [...],
"env": {...}}` with the log file's descriptor attached, the server answers `{"started": ID, "pid": PID}`
or `{"error": ..., "run": ID}`, and reports each child's end as `{"exit": PID, "code": CODE}` (a
negative code: killed by that signal, as `Popen.returncode`). At end of file (its scheduler is gone,
however it died) the server exits; running children go on, as workers outlive their scheduler.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import socket
import sys
import threading
import traceback
from typing import Any, NoReturn

from ssnas.scheduling.local import worker_name

MAX_MESSAGE = 1 << 20  # a request carries the worker's environment: a few kB


def preload() -> None:
    """Import what every worker imports (about 3 s); nothing here may run a torch op or start a thread."""
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401 - torch.optim imports it on first use: 1.5 s on a small CPU

    import ssnas.execution  # noqa: F401
    import ssnas.recipe  # noqa: F401
    import ssnas.sinks  # noqa: F401
    import ssnas.stages.loop  # noqa: F401
    import ssnas.stages.runtime  # noqa: F401
    import ssnas.stages.training  # noqa: F401
    import ssnas.tracking  # noqa: F401
    import ssnas.worker  # noqa: F401


def fork_hazard() -> str | None:
    """Why forking this process now would be unsafe (a Python thread or CUDA up), or None."""
    import torch

    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:
        return f"threads running: {', '.join(threads)}"
    if torch.cuda.is_initialized():
        return "CUDA is initialized"
    return None


def send(channel: socket.socket, message: dict[str, Any]) -> None:
    channel.send(json.dumps(message).encode())


def become_worker(request: dict[str, Any], log_fd: int | None) -> None:
    """In a fresh child: what a worker started as its own process has (see the module docstring)."""
    import torch

    os.setsid()
    with open(f"/proc/{os.getpid()}/comm", "w") as comm:
        comm.write(worker_name(request["run"]))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    if log_fd is not None:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
    os.environ.clear()
    os.environ.update(request["env"])
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdecimal() and int(threads) > 0:
        torch.set_num_threads(int(threads))
    torch.seed()  # a fresh process's global generator is seeded from the OS: not the server's
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()


def run_child(request: dict[str, Any], log_fd: int | None, inherited: list[int]) -> NoReturn:
    """The forked child: become the run's worker, run `ssnas.worker.main`, and exit with its code."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in inherited:
            with contextlib.suppress(OSError):
                os.close(fd)
        become_worker(request, log_fd)
        from ssnas import worker

        code = worker.main(list(request["argv"]))
    except SystemExit as stop:  # argparse, as `python -m ssnas.worker` would exit
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # noqa: BLE001 - as an uncaught exception ends a fresh interpreter
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        from ssnas.worker import exit_process

        exit_process(code)


class Server:
    """The fork loop: requests in, children out, their ends reported; it ends with its scheduler."""

    def __init__(self, channel: socket.socket) -> None:
        self.channel = channel
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # only to wake the select
        try:
            while True:
                readable, _, _ = select.select([self.channel.fileno(), self.wake_read], [], [], 1.0)
                if self.wake_read in readable:
                    with contextlib.suppress(OSError):
                        os.read(self.wake_read, 4096)
                self.reap()
                if self.channel.fileno() in readable and not self.answer():
                    return
        except OSError as error:  # the scheduler's end is gone mid-message
            print(f"[info] fork server {os.getpid()}: {error}", flush=True)

    def answer(self) -> bool:
        """Serve one request; False at end of file (the scheduler is gone)."""
        data, fds, _, _ = socket.recv_fds(self.channel, MAX_MESSAGE, 1)
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        request = json.loads(data)
        log_fd = fds[0] if fds else None
        try:
            hazard = fork_hazard()
            if hazard is not None:
                raise RuntimeError(f"not forking: {hazard}")
            for stream in (sys.stdout, sys.stderr):  # a child must not write the server's buffered output
                stream.flush()
            pid = os.fork()
            if pid == 0:
                run_child(request, log_fd, [self.channel.fileno(), self.wake_read, self.wake_write])
        except Exception as error:  # noqa: BLE001 - the scheduler starts this run the cold way
            send(self.channel, {"error": f"{type(error).__name__}: {error}", "run": request.get("run")})
            return True
        finally:
            if log_fd is not None:
                os.close(log_fd)
        send(self.channel, {"started": request["run"], "pid": pid})
        return True

    def reap(self) -> None:
        """Report every child that ended (the scheduler cannot wait for a process that is not its child)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            send(self.channel, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssnas.forkserver", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="the runs folder whose scheduler started this server")
    parser.add_argument("--fd", type=int, required=True, help="the socket to the scheduler (SOCK_SEQPACKET)")
    args = parser.parse_args(argv)
    channel = socket.socket(fileno=args.fd)
    try:
        preload()
        hazard = fork_hazard()
        if hazard is not None:
            send(channel, {"refused": hazard})
            return 1
        send(channel, {"ready": os.getpid()})
        Server(channel).serve()
    except OSError:  # the scheduler went away before the server was ready
        return 0
    return 0


if __name__ == "__main__":
    status = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):
            stream.flush()
    os._exit(status)  # skip torch's teardown, as a worker does
