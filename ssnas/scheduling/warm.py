"""Warm starts, the scheduler's side: one fork server (`python -m ssnas.forkserver`) per device slot.

A server imports torch and the stage code once and forks a worker per run (see ssnas.forkserver), which
saves each run the interpreter start and imports (about 3 s). Nothing here imports torch. The servers of
every slot start with the executor's first run and import side by side; a run waits for its slot's server
to be ready (what a plain worker would spend importing anyway, and on a small CPU it spares several
workers importing at once). Whatever goes wrong with a server (not ready within `READY_TIMEOUT_S`,
refused, died, hung), `WarmStarts.start` returns None and the executor starts the run as a plain
`python -m ssnas.worker` subprocess: no run is lost to a server.

A server ends with its scheduler (it reads end of file on its socket, however the scheduler died); the
workers it forked run on, as workers outlive their scheduler. Their exit codes come from the server (the
scheduler is not their parent): `{"exit": PID, "code": CODE}` messages.

`SSNAS_WARM_WORKERS`: unset or `1`: warm starts on CPU slots; `all`: on GPU slots too (one server per GPU,
started with that GPU's CUDA_VISIBLE_DEVICES, so that a later scheduler reads a forked worker's slot from
its environment as it does a plain worker's); `0`: off, every worker a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

WARM_ENV = "SSNAS_WARM_WORKERS"
FORK_SERVER = "ssnas.forkserver"  # the module, as it shows on the server's (and its workers') command line
READY_TIMEOUT_S = 60.0  # a server imports in about 3 s (20 s on a busy 2-core machine); past this, plain workers
START_TIMEOUT_S = 30.0  # a server answers a request within milliseconds; past this it is taken for hung
EXIT_REPORT_S = 2.0  # how long to wait for the server's report of a worker that exited
RESTART_AFTER_S = 60.0  # a server that died is started again at most this often
MAX_MESSAGE = 1 << 16


def warm_setting(environ: dict[str, str] | None = None) -> str:
    """"off", "cpu" (warm starts on CPU slots, the default) or "all" (GPU slots too), from SSNAS_WARM_WORKERS;
    "off" where the platform has no fork, pidfds or descriptor passing."""
    value = (environ if environ is not None else os.environ).get(WARM_ENV, "").strip().lower()
    if value in ("0", "off", "false", "no") or not supported():
        return "off"
    return "all" if value == "all" else "cpu"


def supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "fork") and hasattr(os, "pidfd_open") and \
        hasattr(socket, "send_fds")


class ForkServer:
    """One fork server process and the socket to it."""

    def __init__(self, runs_dir: Path, slot: str | None, log: Callable[[str], None]) -> None:
        self.slot = slot
        self._log = log
        self.ready = False
        self.gone = False
        self.started_at = time.monotonic()
        self._codes: dict[int, int] = {}  # pid of a forked worker -> its exit code, until asked for
        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ)
        if slot is not None:  # set before torch loads: the server never touches CUDA, its workers see this GPU
            env["CUDA_VISIBLE_DEVICES"] = slot
        try:
            self.process: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-m", FORK_SERVER, "--runs", str(runs_dir), "--fd", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        except OSError as error:
            self.process = None
            self._drop(f"could not start: {error}")
        finally:
            theirs.close()

    @property
    def where(self) -> str:
        return f"GPU {self.slot}" if self.slot is not None else "the CPU"

    def start(self, run_id: str, argv: list[str], env: dict[str, str], log_fd: int) -> int | None:
        """Fork the worker of `run_id` (`python -m ssnas.worker` with `argv`, environment `env`, output to
        `log_fd`); its pid, or None when this server cannot (not ready yet, refused, gone)."""
        self._drain(0.0)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.ready and not self.gone:
            if self._receive(deadline - time.monotonic()) is None and not self.gone and \
                    time.monotonic() >= deadline:
                self._drop(f"not ready in {READY_TIMEOUT_S:.0f} s")
        if self.gone:
            return None
        request = json.dumps({"run": run_id, "argv": argv, "env": env}).encode()
        try:
            socket.send_fds(self.channel, [request], [log_fd])
        except OSError as error:
            self._drop(f"lost: {error}")
            return None
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.gone:
            message = self._receive(deadline - time.monotonic())
            if message is None:
                if not self.gone:
                    self._drop(f"no answer in {START_TIMEOUT_S:.0f} s")
                return None
            if message.get("started") == run_id:
                pid = int(message["pid"])
                self._codes.pop(pid, None)  # a code kept for an earlier process of this pid
                return pid
            if "error" in message and message.get("run") == run_id:
                self._log(f"fork server on {self.where} did not fork {run_id}: {message['error']}")
                return None
        return None

    def exit_code(self, pid: int, wait: float = EXIT_REPORT_S) -> int | None:
        """The exit code of forked worker `pid` (which has exited), waiting up to `wait` s for its report."""
        deadline = time.monotonic() + wait
        while pid not in self._codes and not self.gone and time.monotonic() < deadline:
            self._drain(deadline - time.monotonic())
        return self._codes.pop(pid, None)

    def close(self) -> None:
        """Let the server go (it exits at end of file); its workers run on."""
        self.channel.close()
        self.gone = True
        if self.process is not None:
            if not self.ready and self.process.poll() is None:
                self.process.kill()  # still importing: it would read end of file only once done
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    # -- messages

    def _drain(self, timeout: float) -> None:
        """Take every message waiting (the first one waited for up to `timeout` s)."""
        while self._receive(timeout) is not None:
            timeout = 0.0

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        """One message, or None after `timeout` s or when the server is gone; notes readiness and exits."""
        if self.gone:
            return None
        try:
            readable, _, _ = select.select([self.channel], [], [], max(0.0, timeout))
            if not readable:
                if self.process is not None and self.process.poll() is not None and not self.ready:
                    self._drop(f"exited with code {self.process.returncode} before it was ready")
                return None
            data = self.channel.recv(MAX_MESSAGE)
        except OSError as error:
            self._drop(f"lost: {error}")
            return None
        if not data:
            self._drop("exited" + (f" with code {code}" if (code := self._exit_status()) is not None else ""))
            return None
        message = json.loads(data)
        if "ready" in message:
            self.ready = True
            self._log(f"fork server {message['ready']} on {self.where} ready: warm workers from now on")
        elif "refused" in message:
            self._drop(f"refused to serve: {message['refused']}")
        elif "exit" in message:
            self._codes[int(message["exit"])] = int(message["code"])
        return message

    def _exit_status(self) -> int | None:
        """The server's exit code once it closed its socket (it exits a moment later), or None."""
        try:
            return self.process.wait(timeout=2) if self.process is not None else None
        except subprocess.TimeoutExpired:
            return None

    def _drop(self, why: str) -> None:
        if not self.gone:
            self._log(f"fork server on {self.where} {why}: plain workers instead")
        self.gone = True
        self.channel.close()
        if self.process is not None and self.process.poll() is None and not self.ready:
            self.process.kill()  # still importing (it would exit at end of file only once done)
            self.process.wait()


class WarmStarts:
    """The fork servers of one executor by device slot, each started on the slot's first run."""

    def __init__(self, runs_dir: Path, gpus: bool = False, log: Callable[[str], None] | None = None) -> None:
        self.runs_dir = Path(runs_dir)
        self.gpus = gpus
        self._log = log or (lambda message: None)
        self._servers: dict[str | None, ForkServer] = {}
        self._by_pid: dict[int, ForkServer] = {}  # forked workers not yet reported ended
        self.slots: list[str | None] = [None]  # the executor's device slots: one server each starts with the first run

    def start(self, slot: str | None, run_id: str, argv: list[str], env: dict[str, str], log_fd: int) -> int | None:
        """The pid of a worker forked for `run_id` on `slot`, or None: start it the plain way."""
        if slot is not None and not self.gpus:
            return None
        for other in dict.fromkeys(self.slots):  # side by side, ready by the time their first runs come
            if other is None or self.gpus:
                self._server(other)
        server = self._server(slot)
        pid = server.start(run_id, argv, env, log_fd)
        if pid is not None:
            self._by_pid[pid] = server
            self._log(f"{run_id}: worker {pid} forked warm on {server.where}")
        return pid

    def forked(self, pid: int) -> bool:
        return pid in self._by_pid

    def exit_code(self, pid: int) -> int | None:
        """The exit code of forked worker `pid`, once it has exited (None if its server could not say)."""
        server = self._by_pid.pop(pid, None)
        return server.exit_code(pid) if server is not None else None

    def close(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()

    def _server(self, slot: str | None) -> ForkServer:
        server = self._servers.get(slot)
        if server is not None and server.gone and time.monotonic() - server.started_at >= RESTART_AFTER_S:
            server.close()
            server = None
        if server is None:
            server = self._servers[slot] = ForkServer(self.runs_dir, slot, self._log)
        return server
