"""One run on a cluster node: what its Ray task or SLURM job does there.

It fetches the run's inputs from the head into a scratch folder, starts the same worker as a local
run (`python -m ssnas.worker RUN_ID`, output to the run's log.txt) linked to it by a socket, answers
the worker's registry calls on the head, ships the run's files there, and turns a stop asked on the
head (`ssnas kill`) or from outside (Ray cancelling the task, SLURM signalling the job) into SIGTERM,
so that the worker checkpoints and ends `killed` as a local one does. The scratch folder goes when
the worker ends: everything in it is on the head by then.

The head is reached through one function, `head(method, *args)`, a call of `RegistryHead` (head.py):
through Ray for a task, over TCP for a job (tcp.py). When the node dies, the task or job dies with it;
the scheduler sees it end and marks the run `lost`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssnas.cluster import files
from ssnas.cluster.link import Gone, serve
from ssnas.scheduling.executor import WorkerExit

if TYPE_CHECKING:
    from ssnas.run_record import Run

STOP_POLL_S = 0.5
HeadCall = Callable[..., Any]  # head(method, *args, **kwargs): a call of the RegistryHead of the runs folder


def run_on_node(head: Any, run_id: str, cpus: int) -> tuple[int, int | None]:
    """A run's Ray task (`head` is the RegistryHead actor): its worker here; returns its exit code and pid."""
    import ray

    def call(method: str, *args: Any, **kwargs: Any) -> Any:
        return ray.get(getattr(head, method).remote(*args, **kwargs))

    name, node_id = this_node()
    return run_linked(call, run_id, cpus, name, f"ray: node {name} ({node_id})")


def run_linked(head: HeadCall, run_id: str, cpus: int, node: str, where: str,
               stopped: Callable[[], bool] = lambda: False) -> tuple[int, int | None]:
    """Run `run_id`'s worker here, recorded on `node`, with `cpus` threads; `where` heads its log; `stopped`
    says a stop came from outside. Returns the worker's exit code and process id."""
    head("take_stop", run_id)  # a stale request, for an earlier attempt; before the status: a kill after it is seen
    run = head("record", "get_run", run_id)
    if run.status != "queued":  # stopped (or taken over) while it waited for a node
        return int(WorkerExit.NOT_STARTED), None
    scratch = Path(tempfile.mkdtemp(prefix=f"ssnas-{run_id[:8]}-"))
    try:
        shipment = _fetch_inputs(head, run, scratch)

        def answer(method: str, args: tuple, kwargs: dict) -> Any:
            if method in ("ship_files", "finish_run"):
                shipment.ship()
            return None if method == "ship_files" else head("record", method, *args, **kwargs)

        process, connection = _start_worker(run_id, scratch, cpus, node, where)
        relay = threading.Thread(target=serve, args=(connection, answer), name=f"link-{run_id[:8]}", daemon=True)
        relay.start()
        _wait(process, lambda: stopped() or head("take_stop", run_id))
        relay.join(timeout=60)
        shipment.ship()  # what the worker wrote after its last call (a traceback)
        return process.returncode, process.pid
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _fetch_inputs(head: HeadCall, run: Run, scratch: Path) -> files.Shipment:
    """The run's checkpoint and log, and its parent's outputs, from the head into `scratch`; returns what
    ships the run's folder back (what was fetched counts as shipped)."""
    run_id, parent = run.id, run.parent_id
    files.fetch(lambda name: head("read_file", run_id, name), files.RUN_INPUTS, scratch / run_id)
    if parent:
        files.fetch(lambda name: head("read_file", parent, name), files.PARENT_OUTPUTS, scratch / parent)
    shipment = files.Shipment(scratch / run_id,
                              lambda name, data, offset: head("write_file", run_id, name, data, offset))
    shipment.mark_present()
    return shipment


def this_node() -> tuple[str, str]:
    """This Ray node's name in the cluster (`ray start --node-name`, by default its IP address) and id."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    return next((node["NodeName"] for node in ray.nodes() if node["NodeID"] == node_id), node_id[:12]), node_id


def _start_worker(run_id: str, scratch: Path, cpus: int, node: str, where: str) -> tuple[subprocess.Popen, Connection]:
    """`python -m ssnas.worker` on the scratch folder, with one end of a socket pair as its link."""
    ours, theirs = socket.socketpair()
    env = {**os.environ, "OMP_NUM_THREADS": str(cpus)}  # what the task was given (CUDA_VISIBLE_DEVICES: the cluster's)
    command = [sys.executable, "-m", "ssnas.worker", run_id, "--runs", str(scratch),
               "--head-fd", str(theirs.fileno()), "--node", node]
    with open(scratch / run_id / "log.txt", "ab") as log:
        log.write(f"[info] {where}, {socket.gethostname()}:{scratch}\n".encode())
        log.flush()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   pass_fds=(theirs.fileno(),))
    theirs.close()
    return process, Connection(ours.detach())


def _wait(process: subprocess.Popen, stop_asked: Callable[[], bool]) -> None:
    """Until the worker exits; a stop asked on the head or from outside, or Ray cancelling the task, becomes
    SIGTERM. A head that is gone for good ends the worker at once: nothing it does could be recorded."""
    stopping = False
    while process.poll() is None:
        try:
            if not stopping and stop_asked():
                process.send_signal(signal.SIGTERM)
                stopping = True
            time.sleep(STOP_POLL_S)
        except KeyboardInterrupt:  # ray.cancel of this task
            process.send_signal(signal.SIGTERM)
            stopping = True
        except Gone:
            process.kill()
            process.wait()
            raise
