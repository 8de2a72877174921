"""The head of a runs folder: on the machine that holds the registry, it makes every registry write of
the runs on cluster nodes and keeps their files.

Workers on other nodes never open SQLite (SQLite over a network file system loses writes): their
rows, heartbeats and files reach it through the Ray task or SLURM job that started them. On Ray the
head is an actor, named after the runs folder (and host) and detached, so that the folder's scheduler
(whichever process it is), `ssnas kill` from another shell and a later `ssnas resume` all find the
same one; it is pinned to the node it was first asked for from, the machine of the runs folder. For
SLURM jobs the same `RegistryHead` lives in the folder's scheduler, behind a TCP server (tcp.py).
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any

from ssnas.cluster import files
from ssnas.errors import ClusterError
from ssnas.records import RECORD_CALLS
from ssnas.registry import RUN_ID, Registry

NAMESPACE = "ssnas"


class RegistryHead:
    """The registry writes and run files of the cluster runs of one runs folder (a Ray actor's class, or served
    over TCP by the scheduler for SLURM jobs)."""

    def __init__(self, runs_dir: str) -> None:
        self.runs_dir = Path(runs_dir)
        self._registry: Registry | None = None
        self._identity: tuple[int, int] | None = None
        self._stops: set[str] = set()  # runs asked to stop whose task or job has not taken the request yet

    def record(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One registry call of a worker (ssnas.records.WorkerRecords), e.g. record("finish_run", RUN, "finished")."""
        if method not in RECORD_CALLS:
            raise ClusterError(f"{method!r} is not a registry call a worker may make")
        return getattr(self._db(), method)(*args, **kwargs)

    def read_file(self, run_id: str, name: str) -> bytes | None:
        return files.read(self._run_dir(run_id), name)

    def write_file(self, run_id: str, name: str, data: bytes, offset: int | None) -> None:
        files.store(self._run_dir(run_id), name, data, offset)

    def request_stop(self, run_id: str) -> None:
        """Ask a run's worker to stop (`ssnas kill`): its task or job passes it on as SIGTERM."""
        self._stops.add(run_id)

    def take_stop(self, run_id: str) -> bool:
        """Whether a stop was asked for the run since this was last asked (the request is taken: a task
        takes a stale one before it looks at its run, so that it never stops a later attempt)."""
        if run_id in self._stops:
            self._stops.discard(run_id)
            return True
        return False

    def runs_folder(self) -> str:
        return str(self.runs_dir)

    def _run_dir(self, run_id: str) -> Path:
        if not RUN_ID.fullmatch(run_id):
            raise ClusterError(f"{run_id!r} is not a run id")
        return self.runs_dir / run_id

    def _db(self) -> Registry:
        """The registry, opened anew when its file was replaced (a runs folder removed and made again)."""
        path = self.runs_dir / "registry.db"
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise ClusterError(f"{path}: the registry is gone") from None
        if self._registry is None or self._identity != (stat.st_dev, stat.st_ino):
            if self._registry is not None:
                self._registry.close()
            self._registry, self._identity = Registry(path, create=False), (stat.st_dev, stat.st_ino)
        return self._registry


def head_name(runs_dir: Path) -> str:
    """The actor's name: one per runs folder of one machine."""
    digest = hashlib.sha1(f"{socket.gethostname()}:{Path(runs_dir).resolve()}".encode()).hexdigest()
    return f"ssnas-registry-{digest[:12]}"


def head_actor(runs_dir: Path) -> Any:
    """The head of `runs_dir`: the running one, or a new one pinned to this node (a Ray actor handle)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    actor = ray.remote(RegistryHead).options(
        name=head_name(runs_dir), namespace=NAMESPACE, lifetime="detached", get_if_exists=True, num_cpus=0,
        scheduling_strategy=here,
    )
    head: Any = actor.remote(str(Path(runs_dir).resolve()))  # Any, as returned: ray's types lack `method.remote`
    ray.get(head.runs_folder.remote())  # up, and its node could import ssnas
    return head


def find_head(runs_dir: Path) -> Any:
    """The running head of `runs_dir`, for stopping its runs; none is a one-line error."""
    import ray

    try:
        return ray.get_actor(head_name(runs_dir), namespace=NAMESPACE)
    except ValueError:
        raise ClusterError(f"{runs_dir}: no ssnas head on this Ray cluster (its runs ended with the cluster)") from None
