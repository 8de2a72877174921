"""`SlurmExecutor`: the scheduler's `Executor` (ssnas.scheduling) on a SLURM cluster, through submitit.

Each run becomes one job (`sbatch`, written by submitit) with the run's own settings (slurm.py,
stored when it was submitted): SLURM queues it until its partition has room, so SLURM runs take no
local device slot. The job (slurm_job.py) runs the run's worker on its node, its registry calls and
files relayed to the head: the `RegistryHead` of this runs folder, served over TCP by this executor
inside the folder's scheduler (tcp.py). The job folder, which SLURM jobs need on a file system the
nodes share, holds submitit's files, the head's address and each run's job id; the registry and the
runs' files stay on this machine.

A scheduler that starts while SLURM runs are running adopts their jobs by the ids in the job folder
(`sacct` tells when they end), and publishes its own head there, which the jobs reconnect to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ssnas.cluster.head import RegistryHead
from ssnas.cluster.slurm import DEFAULT_TIME_MIN, SlurmOptions, import_submitit
from ssnas.cluster.slurm_job import run_job
from ssnas.cluster.tcp import HeadServer, ask_head
from ssnas.registry import Registry
from ssnas.run_record import Run
from ssnas.scheduling.executor import WorkerStatus

JOBS = "jobs"  # in the job folder: submitit's (each job's function, result and log)
RUN_JOBS = "runs"  # in the job folder: RUN_ID.json, the run's last job


class SlurmExecutor:
    """Workers as SLURM jobs; their rows and files come back to this machine's registry and runs folder."""

    name = "slurm"
    prestarts = False  # a job waiting for its parent would hold its allocation the whole time
    takes_slots = False  # SLURM places each job and queues it until its partition has room

    def __init__(self, registry: Registry, runs_dir: Path) -> None:
        self.submitit = import_submitit()
        self.registry = registry
        self.runs_dir = Path(runs_dir).resolve()
        self.server = HeadServer(RegistryHead(str(self.runs_dir)))
        self._published: set[Path] = set()
        self._jobs: dict[str, Any] = {}  # run id -> its submitit Job, while it goes on
        self._ended: dict[str, WorkerStatus] = {}

    def submit(self, run_id: str, slot: str | None, after: str | None = None) -> None:
        """Submit the run's job with the run's own settings; `slot` and `after` are local (SLURM places and orders)."""
        run = self.registry.get_run(run_id)
        options = SlurmOptions.from_json(run.ray_options)
        folder = self._folder(options)
        executor = self.submitit.AutoExecutor(folder=folder / JOBS, cluster=options.cluster_name)
        executor.update_parameters(**job_parameters(options, run))
        job = executor.submit(run_job, str(folder), run_id, options.cpus or 1)
        record = folder / RUN_JOBS / f"{run_id}.json"
        record.parent.mkdir(exist_ok=True)
        record.write_text(json.dumps({"cluster": options.cluster_name, "job_id": job.job_id}) + "\n")
        self._jobs[run_id] = job
        self._ended.pop(run_id, None)

    def adopt(self, run: Run) -> WorkerStatus:
        """Watch the job of a running run that another scheduler submitted, by its recorded id (through sacct: a job
        that ended meanwhile is settled at the next pass); its job reconnects to this scheduler's head either way.
        A job of cluster=local cannot be watched from here."""
        try:
            folder = self._folder(SlurmOptions.from_json(run.ray_options))
            recorded = json.loads((folder / RUN_JOBS / f"{run.id}.json").read_text())
            cluster, job_id = recorded["cluster"], str(recorded["job_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return WorkerStatus(alive=False, pid=run.pid)
        if cluster != "slurm":
            return WorkerStatus(alive=False, pid=run.pid)
        self._jobs[run.id] = self.submitit.SlurmJob(folder / JOBS, job_id)
        return WorkerStatus(alive=True, pid=run.pid)

    def status(self, run_id: str) -> WorkerStatus:
        job = self._jobs.get(run_id)
        if job is None:
            return self._ended.get(run_id, WorkerStatus(alive=False))
        if not job.done():
            return WorkerStatus(alive=True)
        del self._jobs[run_id]
        code, pid = self._outcome(run_id, job)
        self._ended[run_id] = WorkerStatus(alive=False, exit_code=code, pid=pid)
        return self._ended[run_id]

    def wait(self, timeout: float) -> None:
        """Until a job's connection to the head closes (it is ending), or `timeout` seconds."""
        self.server.ended.wait(timeout)
        self.server.ended.clear()

    def cancel(self, run_id: str) -> None:
        """A running worker checkpoints and ends killed; a job still waiting in SLURM's queue is cancelled."""
        self.server.head.request_stop(run_id)
        if self.registry.get_run(run_id).status == "queued":
            self.registry.finish_run(run_id, "killed", error="cancelled before it started")
            job = self._jobs.pop(run_id, None)
            if job is not None:
                job.cancel(check=False)
                self._ended[run_id] = WorkerStatus(alive=False)

    def _folder(self, options: SlurmOptions) -> Path:
        """The run's job folder, with this scheduler's head published in it."""
        folder = options.job_folder(self.runs_dir)
        if folder not in self._published:
            self.server.publish(folder)
            self._published.add(folder)
        return folder

    def _outcome(self, run_id: str, job: Any) -> tuple[int | None, int | None]:
        """The worker's exit code and pid, as the job returned them; (None, None) when the job failed or died,
        noted as an event of the run."""
        if job.paths.result_pickle.exists():
            try:
                code, pid = job.result()
                return code, pid
            except Exception as error:  # noqa: BLE001 - the job's failure, whatever it was
                reason = f"job {job.job_id} failed: {failure_line(str(error))}"
        else:
            reason = f"job {job.job_id} ended {job.state} without a result"
        self.registry.add_events([(run_id, time.time(), "error", f"slurm: {reason} (see {job.paths.stdout})")])
        return None, None


def job_parameters(options: SlurmOptions, run: Run) -> dict[str, Any]:
    """submitit's parameters for the run's job (the settings not given left to SLURM's defaults)."""
    gpus = options.gpus_for(str(run.setting("run.device", "auto")))
    parameters = {
        "name": f"ssnas-{run.short_id}", "timeout_min": options.time or DEFAULT_TIME_MIN,
        "cpus_per_task": options.cpus or 1, "gpus_per_node": gpus or None, "stderr_to_stdout": True,
        "slurm_partition": options.partition, "slurm_account": options.account, "slurm_mem": options.mem,
        "slurm_additional_parameters": dict(options.sbatch) or None,
    }
    return {key: value for key, value in parameters.items() if value is not None}


def failure_line(text: str) -> str:
    """The exception line of a failed job (submitit puts the job's traceback between dashed lines)."""
    parts = text.split("-" * 22)
    trace = parts[1] if len(parts) > 2 else text
    lines = [line.strip() for line in trace.splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def request_stops(runs_dir: Path, runs: Sequence[Run]) -> None:
    """Ask the runs folder's scheduler to stop SLURM runs (`ssnas kill`, from any shell of its machine): their
    jobs pass it on as SIGTERM."""
    for run in runs:
        ask_head(SlurmOptions.from_json(run.ray_options).job_folder(Path(runs_dir).resolve()), "request_stop", run.id)
