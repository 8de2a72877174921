"""The head over TCP, for cluster jobs that no Ray connects to the head (SLURM).

The runs folder's scheduler serves its `RegistryHead` (head.py) on a TCP port (`HeadServer`) and
publishes where, with a fresh secret, in `head.json` of the job folder: a folder the compute nodes
share, which SLURM jobs read anyway (submitit keeps each job's function and result there). A job
reads it and makes its head calls over an authenticated connection (`RemoteHead`, the `head`
function of node.py); `ssnas kill` from another shell asks for stops the same way (`ask_head`).
The registry itself never leaves the scheduler's machine.

A scheduler that goes away (stopped, or killed) takes its server with it; its jobs wait for the next
one, which publishes its own address in the same folder, and go on with it (`RECONNECT_S`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import struct
import threading
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Any

from ssnas.cluster.head import RegistryHead
from ssnas.cluster.link import Gone, Peer, serve
from ssnas.errors import ClusterError

ADDRESS_FILE = "head.json"
HEAD_CALLS = frozenset({"record", "read_file", "write_file", "request_stop", "take_stop"})
HEAD_ADDRESS_ENV = "SSNAS_HEAD_ADDRESS"  # HOST[:PORT] the jobs reach the scheduler at (default: this host's name)
DIAL_TIMEOUT_S = 10.0
RECONNECT_S = 300.0  # how long a job waits for a head (a scheduler that went away, and the next one)
RETRY_S = 2.0


def advertised_address() -> tuple[str, int]:
    """Where the jobs reach this machine: $SSNAS_HEAD_ADDRESS (HOST or HOST:PORT), else its fully qualified
    name and a port the system picks."""
    given = os.environ.get(HEAD_ADDRESS_ENV, "").strip()
    if not given:
        return socket.getfqdn(), 0
    host, _, port = given.partition(":")
    try:
        return host or socket.getfqdn(), int(port or 0)
    except ValueError:
        raise ClusterError(f"${HEAD_ADDRESS_ENV}={given}: expected HOST or HOST:PORT") from None


class HeadServer:
    """A `RegistryHead` served over TCP to the jobs (and to `ssnas kill`), one call at a time, from a thread of
    the scheduler; `ended` is set whenever a connection closes (a job ending wakes the scheduler)."""

    def __init__(self, head: RegistryHead) -> None:
        self.head = head
        self.authkey = secrets.token_bytes(32)
        self.ended = threading.Event()
        host, port = advertised_address()
        try:
            self._socket = socket.create_server(("", port))
        except OSError as error:
            raise ClusterError(f"cannot serve the head on port {port}: {error.strerror}") from None
        self.address = (host, self._socket.getsockname()[1])
        self._lock = threading.Lock()
        self._clients: set[socket.socket] = set()
        threading.Thread(target=self._accept, name="head-server", daemon=True).start()

    def publish(self, folder: Path) -> None:
        """Write where the head is, and its secret, into a job folder (readable by this user only)."""
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = json.dumps({"host": self.address[0], "port": self.address[1], "authkey": self.authkey.hex()})
        partial = folder / f".{ADDRESS_FILE}.{os.getpid()}"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text + "\n")
        os.replace(partial, folder / ADDRESS_FILE)

    def close(self) -> None:
        """Stop serving: no new connections, and the open ones closed (their jobs wait for the next head)."""
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (a close alone would not)
        self._socket.close()
        for client in list(self._clients):
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)  # wakes its thread, blocked reading it

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._socket.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(client,), name="head-connection", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._clients.add(client)
        connection = Connection(os.dup(client.fileno()))
        try:
            deliver_challenge(connection, self.authkey)
            answer_challenge(connection, self.authkey)
        except (AuthenticationError, EOFError, OSError):  # not one of ours
            return
        else:
            serve(connection, self._answer)
            self.ended.set()
        finally:
            if not connection.closed:
                connection.close()
            self._clients.discard(client)
            client.close()

    def _answer(self, method: str, args: tuple, kwargs: dict) -> Any:
        if method not in HEAD_CALLS:
            raise ClusterError(f"{method!r} is not a call of the head")
        with self._lock:
            return getattr(self.head, method)(*args, **kwargs)


def dial(folder: Path) -> Peer:
    """A connection to the head that published its address in `folder`; ClusterError when none answers."""
    path = folder / ADDRESS_FILE
    try:
        published = json.loads(path.read_text())
        host, port, authkey = str(published["host"]), int(published["port"]), bytes.fromhex(published["authkey"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ClusterError(f"{path}: no head address (has the runs folder's scheduler started?)") from None
    try:
        client = socket.create_connection((host, port), timeout=DIAL_TIMEOUT_S)
    except OSError as error:
        raise ClusterError(f"no head at {host}:{port} ({path}): {error}") from None
    client.settimeout(None)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _seconds(DIAL_TIMEOUT_S))  # whatever holds that port
    connection = Connection(client.detach())
    try:
        answer_challenge(connection, authkey)
        deliver_challenge(connection, authkey)
    except (AuthenticationError, EOFError, OSError) as error:
        connection.close()
        raise ClusterError(f"no head at {host}:{port} ({path}): {error or type(error).__name__}") from None
    with socket.socket(fileno=os.dup(connection.fileno())) as view:  # calls may wait as long as they take
        view.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _seconds(0))
    return Peer(connection)


def _seconds(timeout: float) -> bytes:
    """A `struct timeval`, as SO_RCVTIMEO takes it (0: no timeout)."""
    return struct.pack("ll", int(timeout), int(timeout % 1 * 1e6))


def ask_head(folder: Path, method: str, *args: Any) -> Any:
    """One call of the head published in `folder` (what `ssnas kill` asks of the scheduler)."""
    peer = dial(folder)
    try:
        return peer.call(method, *args)
    except (EOFError, OSError) as error:
        raise ClusterError(f"the head of {folder} went away: {error}") from None
    finally:
        peer.close()


class RemoteHead:
    """The head as a job sees it: `head("record", "get_run", RUN_ID)`, a `node.HeadCall`. A head that cannot be
    reached is waited for, up to `patience` seconds (the next scheduler of the runs folder publishes itself in
    the same folder), then `Gone`. Calls from several threads take turns."""

    def __init__(self, folder: Path, patience: float = RECONNECT_S) -> None:
        self.folder = folder
        self.patience = patience
        self._peer: Peer | None = None
        self._lock = threading.Lock()

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            lost_at: float | None = None
            while True:
                if self._peer is not None:
                    try:
                        return self._peer.call(method, *args, **kwargs)
                    except (EOFError, OSError):
                        self._peer.close()
                        self._peer = None
                lost_at = lost_at if lost_at is not None else time.monotonic()
                try:
                    self._peer = dial(self.folder)
                except ClusterError as error:
                    if time.monotonic() - lost_at >= self.patience:
                        raise Gone(str(error)) from None
                    time.sleep(RETRY_S)
