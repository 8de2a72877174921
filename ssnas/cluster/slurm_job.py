"""One SLURM run's job, on the node SLURM gave it (the function submitit runs there).

It does what a Ray task does (node.py: the run's inputs fetched into a scratch folder, the worker
started and linked, its registry calls and files relayed to the head), with the head reached over
TCP at the address the scheduler published in the job folder (tcp.py). SIGTERM (`scancel`,
preemption) and submitit's SIGUSR2 (sent before the time limit) reach the worker as SIGTERM, so that
it checkpoints and ends `killed`, ready for `ssnas resume`; submitit's own handlers, which would
requeue the job, are replaced.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path

from ssnas.cluster.node import run_linked
from ssnas.cluster.tcp import RemoteHead

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)  # scancel and preemption; submitit's time-limit warning


def run_job(folder: str, run_id: str, cpus: int) -> tuple[int, int | None]:
    """Run `run_id`'s worker on this node, its head published in `folder`; returns its exit code and pid."""
    stop = threading.Event()
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, frame: stop.set())
    node = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    job = os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID") or "?"
    return run_linked(RemoteHead(Path(folder)), run_id, cpus, node, f"slurm: job {job} on node {node}", stop.is_set)
