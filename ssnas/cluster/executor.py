"""`RayExecutor`: the scheduler's `Executor` (ssnas.scheduling) on an existing Ray cluster.

Each run becomes one Ray task (node.py) that asks for one GPU when the run's device wants CUDA (or
is "auto" on a cluster with GPUs), else for `cpus` CPUs, plus any custom resources (the run's own
`ray_options`, stored when it was submitted); Ray picks the node and queues the task until its
resources are free, so Ray runs take no local device slot. The runs folder's scheduler polls the
tasks: a task that ended with an error (its node or its Ray worker died) reads as a dead worker
without a pid, so the scheduler marks its run `lost`. A task dies with the scheduler that is its Ray
driver; its run is then marked `lost` when its heartbeat goes stale (`Registry.reconcile`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ssnas.cluster import RayOptions, connect, import_ray
from ssnas.cluster.head import find_head, head_actor
from ssnas.cluster.node import run_on_node
from ssnas.registry import Registry
from ssnas.run_record import Run
from ssnas.scheduling.executor import WorkerStatus


class RayExecutor:
    """Workers as Ray tasks; their rows and files come back to this machine's registry and runs folder."""

    name = "ray"
    prestarts = False  # a task waiting for its parent would hold its GPU the whole time
    takes_slots = False  # Ray places each task and queues it until its resources are free

    def __init__(self, registry: Registry, runs_dir: Path, options: RayOptions) -> None:
        self.ray = import_ray()
        self.registry = registry
        self.runs_dir = Path(runs_dir)
        self.options = options
        self.address = connect(options.address, self.runs_dir)
        self.head = head_actor(self.runs_dir)
        self._task = self.ray.remote(run_on_node)
        self._tasks: dict[str, Any] = {}  # run id -> the ObjectRef of its task, while it goes on
        self._ended: dict[str, WorkerStatus] = {}

    def submit(self, run_id: str, slot: str | None, after: str | None = None) -> None:
        """Start the run's task with the run's own options; `slot` and `after` are local (Ray places and orders)."""
        run = self.registry.get_run(run_id)
        options = RayOptions.from_json(run.ray_options) if run.ray_options else self.options
        gpus = 1 if self._wants_gpu(run.setting("run.device", "auto")) else 0
        task = self._task.options(num_cpus=options.cpus, num_gpus=gpus, resources=dict(options.resources),
                                  max_retries=0, name=f"ssnas {run_id[:8]} {run.name}")
        self._tasks[run_id] = task.remote(self.head, run_id, options.cpus)
        self._ended.pop(run_id, None)

    def adopt(self, run: Run) -> WorkerStatus:
        """A task belongs to the driver that started it: another scheduler's cannot be watched from here."""
        return WorkerStatus(alive=False)

    def status(self, run_id: str) -> WorkerStatus:
        ref = self._tasks.get(run_id)
        if ref is None:
            return self._ended.get(run_id, WorkerStatus(alive=False))
        if not self.ray.wait([ref], timeout=0)[0]:
            return WorkerStatus(alive=True)
        del self._tasks[run_id]
        try:
            code, pid = self.ray.get(ref)
        except self.ray.exceptions.RayError as error:  # the node, or the task's Ray worker, died
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            self.registry.add_events([(run_id, time.time(), "error", f"ray: {reason}")])
            code, pid = None, None
        self._ended[run_id] = WorkerStatus(alive=False, exit_code=code, pid=pid)
        return self._ended[run_id]

    def wait(self, timeout: float) -> None:
        """Until one of the tasks ends, or `timeout` seconds."""
        if self._tasks:
            self.ray.wait(list(self._tasks.values()), num_returns=1, timeout=timeout)
        else:
            time.sleep(timeout)

    def cancel(self, run_id: str) -> None:
        """A running worker checkpoints and ends killed; a task still waiting for a node is dropped."""
        self.ray.get(self.head.request_stop.remote(run_id))
        if self.registry.get_run(run_id).status == "queued":
            self.registry.finish_run(run_id, "killed", error="cancelled before it started")
            ref = self._tasks.pop(run_id, None)
            if ref is not None:
                self.ray.cancel(ref)
                self._ended[run_id] = WorkerStatus(alive=False)

    def _wants_gpu(self, device: str) -> bool:
        if device == "auto":
            return self.ray.cluster_resources().get("GPU", 0) > 0
        return device.startswith("cuda")


def request_stops(runs_dir: Path, address: str | None, run_ids: Sequence[str]) -> None:
    """Ask the head to stop Ray runs (`ssnas kill`, from any shell on the head's machine)."""
    ray = import_ray()
    connect(address, runs_dir)
    head = find_head(runs_dir)
    ray.get([head.request_stop.remote(run_id) for run_id in run_ids])
