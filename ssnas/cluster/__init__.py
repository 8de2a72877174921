"""Runs on a cluster, with one registry on the machine that holds the runs folder: on an existing Ray
cluster (`--executor ray`) or as SLURM jobs (`--executor slurm`).

How the pieces fit:
- `RayExecutor` (executor.py) is the scheduler's `Executor` for Ray (ssnas.scheduling): each run is a Ray task that asks
  for one GPU (or `cpus` CPUs) and any custom resources, on whichever node Ray picks. `SlurmExecutor`
  (slurm_executor.py) is the one for SLURM: each run is a job submitted through submitit, with the settings of
  slurm.py.
- The task or job (node.py; slurm_job.py for a job) fetches the run's inputs from the head into a scratch folder on
  its node and starts the same worker as a local run, `python -m ssnas.worker RUN_ID --head-fd FD`, linked to it by
  a socket (link.py). It answers the worker's registry calls on the head, ships the run's files there
  (files.py) and turns a stop asked on the head into SIGTERM.
- `RegistryHead` (head.py), on the machine that holds the runs folder, is the only writer of the registry for
  runs on cluster nodes and the keeper of their files: a detached, named Ray actor for Ray tasks; served over
  TCP by the runs folder's scheduler for SLURM jobs (tcp.py), which find it through the job folder they share.

Nothing here imports Ray or submitit at module level: `ssnas --help` and `ssnas runs` stay fast, and both are
optional extras (`pip install -e '.[ray]'`, `'.[slurm]'`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from ssnas.errors import ClusterError

ADDRESS_FILE = "ray.json"  # in the runs folder: the cluster its Ray runs went to, for kill and resume
INSTALL_HINT = "Ray is not installed: pip install -e '.[ray]'"


def import_ray() -> ModuleType:
    """Ray, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """What `ssnas run|resume|rerun` pass on to Ray: the cluster, and what each run's task asks for."""

    address: str | None = None  # None: $RAY_ADDRESS, then the runs folder's recorded cluster, then "auto"
    cpus: int = 1  # CPUs per run (a GPU run asks for one GPU as well)
    resources: dict[str, float] = field(default_factory=dict)  # custom resources per run, e.g. {"big_disk": 1}

    def to_json(self) -> str:
        """As stored with each Ray run (`runs.ray_options`), for the runs folder's scheduler."""
        return json.dumps({"address": self.address, "cpus": self.cpus, "resources": self.resources})

    @classmethod
    def from_json(cls, text: str | None) -> RayOptions:
        """Options stored by `to_json`; the defaults for a run stored without them (or with broken ones)."""
        try:
            data = json.loads(text) if text else {}
            return cls(data.get("address"), int(data.get("cpus", 1)),
                       {str(k): float(v) for k, v in (data.get("resources") or {}).items()})
        except (ValueError, TypeError, AttributeError):
            return cls()


def parse_resources(pairs: Sequence[str]) -> dict[str, float]:
    """`NAME=AMOUNT` pairs (`--ray-resource second=1`) as Ray's custom resources."""
    resources: dict[str, float] = {}
    for pair in pairs:
        name, _, amount = pair.partition("=")
        try:
            resources[name.strip()] = float(amount)
        except ValueError:
            raise ClusterError(f"--ray-resource {pair}: expected NAME=AMOUNT, e.g. second=1") from None
        if not name.strip() or resources[name.strip()] <= 0:
            raise ClusterError(f"--ray-resource {pair}: expected NAME=AMOUNT with AMOUNT > 0")
    return resources


def recorded_address(runs_dir: Path) -> str | None:
    """The cluster the runs folder's Ray runs went to last (written when they were started)."""
    path = Path(runs_dir) / ADDRESS_FILE
    try:
        return json.loads(path.read_text())["address"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def connect(address: str | None, runs_dir: Path) -> str:
    """Join the cluster as a driver (quietly) and record its address in the runs folder; returns it.

    Without an address: $RAY_ADDRESS, then the cluster recorded for this runs folder, then a cluster
    started on this machine ("auto"). Never starts a cluster of its own.
    """
    ray = import_ray()
    wanted = address or os.environ.get("RAY_ADDRESS") or recorded_address(runs_dir) or "auto"
    if wanted.startswith("ray://"):
        raise ClusterError(f"{wanted}: run ssnas on a node of the cluster (the registry stays on that machine) "
                           "and give the head's HOST:PORT, not a Ray Client address")
    if wanted != "auto" and not _listening(wanted):
        raise ClusterError(f"no Ray cluster at {wanted} (nothing answers there); start one with `ray start --head`")
    if not ray.is_initialized():
        try:
            ray.init(address=wanted, logging_level=logging.ERROR, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            if wanted == "auto":
                raise ClusterError("no Ray cluster on this machine: give --address HOST:PORT, or start one with "
                                   "`ray start --head`") from None
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ClusterError(f"cannot join the Ray cluster at {wanted}: {first}") from None
    resolved = ray.get_runtime_context().gcs_address
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    (Path(runs_dir) / ADDRESS_FILE).write_text(json.dumps({"address": resolved}) + "\n")
    return resolved


def _listening(address: str, timeout: float = 3.0) -> bool:
    """Whether something accepts connections at HOST:PORT (Ray itself would retry for minutes)."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout).close()
    except (OSError, ValueError):
        return False
    return True
