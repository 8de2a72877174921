"""One run's Ray task, on the node Ray picked for it.

It fetches the run's inputs from the head into a scratch folder, starts the same worker as a local
run (`python -m ssnas.worker RUN_ID`, output to the run's log.txt) linked to it by a socket, answers
the worker's registry calls on the head, ships the run's files there, and turns a stop asked on the
head (`ssnas kill`) into SIGTERM, so that the worker checkpoints and ends `killed` as a local one does.
The scratch folder goes when the worker ends: everything in it is on the head by then.

When the node dies, the task dies with it; the scheduler sees the task fail and marks the run `lost`.
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
from ssnas.cluster.link import serve
from ssnas.scheduling.executor import WorkerExit

if TYPE_CHECKING:
    from ssnas.run_record import Run

STOP_POLL_S = 0.5


def run_on_node(head: Any, run_id: str, cpus: int) -> tuple[int, int | None]:
    """Run `run_id`'s worker here; returns its exit code and process id."""
    import ray

    stops = ray.get(head.stop_requests.remote(run_id))  # before the status: a kill in between is seen
    run = ray.get(head.record.remote("get_run", run_id))
    if run.status != "queued":  # stopped (or taken over) while it waited for a node
        return int(WorkerExit.NOT_STARTED), None
    scratch = Path(tempfile.mkdtemp(prefix=f"ssnas-{run_id[:8]}-"))
    try:
        shipment = _fetch_inputs(head, run, scratch)

        def answer(method: str, args: tuple, kwargs: dict) -> Any:
            if method in ("ship_files", "finish_run"):
                shipment.ship()
            return None if method == "ship_files" else ray.get(head.record.remote(method, *args, **kwargs))

        process, connection = _start_worker(run_id, scratch, cpus)
        relay = threading.Thread(target=serve, args=(connection, answer), name=f"link-{run_id[:8]}", daemon=True)
        relay.start()
        _wait(process, lambda: ray.get(head.stop_requests.remote(run_id)) > stops)
        relay.join(timeout=60)
        shipment.ship()  # what the worker wrote after its last call (a traceback)
        return process.returncode, process.pid
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _fetch_inputs(head: Any, run: Run, scratch: Path) -> files.Shipment:
    """The run's checkpoint and log, and its parent's outputs, from the head into `scratch`; returns what
    ships the run's folder back (what was fetched counts as shipped)."""
    import ray

    run_id, parent = run.id, run.parent_id
    files.fetch(lambda name: ray.get(head.read_file.remote(run_id, name)), files.RUN_INPUTS, scratch / run_id)
    if parent:
        files.fetch(lambda name: ray.get(head.read_file.remote(parent, name)), files.PARENT_OUTPUTS, scratch / parent)
    shipment = files.Shipment(scratch / run_id,
                              lambda name, data, offset: ray.get(head.write_file.remote(run_id, name, data, offset)))
    shipment.mark_present()
    return shipment


def this_node() -> tuple[str, str]:
    """This node's name in the cluster (`ray start --node-name`, by default its IP address) and id."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    return next((node["NodeName"] for node in ray.nodes() if node["NodeID"] == node_id), node_id[:12]), node_id


def _start_worker(run_id: str, scratch: Path, cpus: int) -> tuple[subprocess.Popen, Connection]:
    """`python -m ssnas.worker` on the scratch folder, with one end of a socket pair as its link."""
    name, node_id = this_node()
    ours, theirs = socket.socketpair()
    env = {**os.environ, "OMP_NUM_THREADS": str(cpus)}  # what the task was given (CUDA_VISIBLE_DEVICES is Ray's)
    command = [sys.executable, "-m", "ssnas.worker", run_id, "--runs", str(scratch),
               "--head-fd", str(theirs.fileno()), "--node", name]
    with open(scratch / run_id / "log.txt", "ab") as log:
        log.write(f"[info] ray: node {name} ({node_id}), {socket.gethostname()}:{scratch}\n".encode())
        log.flush()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   pass_fds=(theirs.fileno(),))
    theirs.close()
    return process, Connection(ours.detach())


def _wait(process: subprocess.Popen, stop_asked: Callable[[], bool]) -> None:
    """Until the worker exits; a stop asked on the head, or Ray cancelling the task, becomes SIGTERM."""
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
