"""The queue's rules: which queued run starts next, on which device slot, and what a worker's exit means.

The `Scheduler` runs every queued run of one registry: oldest first, a run only after its parent
finished (a run whose parent failed, was killed or lost fails without starting), at most
`max_parallel` local workers at once, one device slot each (a GPU index through
CUDA_VISIBLE_DEVICES, or the CPU). Runs of an engine that places them itself (Ray) take no slot and
are started as soon as they are ready. It knows nothing of processes: an `Executor` per engine
starts, watches and adopts workers (`Engines` opens one when a run first needs it).

It also adopts what a scheduler that died left behind: a `running` run whose worker still runs on
this machine is watched (and holds its slot) until it exits; queued runs are simply queued.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ssnas.errors import SsnasError
from ssnas.registry import Registry
from ssnas.run_record import TERMINAL, Run
from ssnas.scheduling.executor import Executor, WorkerExit, WorkerStatus

LOCAL = "local"  # the executor name of this machine's workers (the only ones that take device slots)
# the status a worker's exit code says, for a run the worker could not record the end of
UNRECORDED_ENDS: dict[int, str] = {WorkerExit.FAILED: "failed", WorkerExit.KILLED: "killed"}


@dataclass
class Engines:
    """The executors of a scheduler by name (a run's `executor` column); `open` makes one the first time a
    run needs it (raising SsnasError when it cannot); `pending` says a run cannot be started yet."""

    opened: dict[str, Executor]
    open: Callable[[str, Run], Executor] | None = field(default=None, repr=False)
    pending: Callable[[Run], bool] | None = field(default=None, repr=False)

    def for_run(self, run: Run, open_new: bool = True) -> Executor | None:
        """The run's executor; None while it is pending, or (without `open_new`) when not opened yet."""
        name = run.executor or LOCAL
        if self.pending is not None and self.pending(run):
            return None
        if name not in self.opened:
            if not open_new:
                return None
            if self.open is None:
                raise SsnasError(f"no executor {name!r} here")
            self.opened[name] = self.open(name, run)
        return self.opened[name]


def not_started(parent_id: str | None) -> str:
    return f"not started: parent {parent_id} did not finish"


class Scheduler:
    """Starts queued runs when their parent has finished, within `max_parallel` and the device slots."""

    def __init__(self, registry: Registry, engines: Engines, slots: Sequence[str | None], max_parallel: int,
                 log: Callable[[str], None] | None = None) -> None:
        self.registry = registry
        self.engines = engines
        self.active: dict[str, str | None] = {}  # run -> its slot (None: the CPU, or placed by its engine)
        self.standby: dict[str, str] = {}  # prestarted run -> the active run whose slot it will take over
        self.untracked = 0  # running runs no executor here can watch: reconcile ends them when they die
        self._engine: dict[str, Executor] = {}  # the executor of every active and standby run
        self._log = log or (lambda message: None)
        self.configure(slots, max_parallel)

    def configure(self, slots: Sequence[str | None], max_parallel: int) -> None:
        """New settings: taken from the next start on (running workers keep their slots)."""
        self.slots = list(slots)
        self.max_parallel = max(1, min(max_parallel, len(self.slots)))

    @property
    def free(self) -> list[str | None]:
        """Slots no local worker holds."""
        free = list(self.slots)
        for run_id, slot in self.active.items():
            if self._engine[run_id].takes_slots and slot in free:
                free.remove(slot)
        return free

    def local_workers(self) -> int:
        return sum(1 for run_id in self.active if self._engine[run_id].takes_slots)

    def step(self) -> bool:
        """One scheduling pass; True while the folder has runs queued, or running ones to watch.

        When the executor can, the run that will take an active run's slot is prestarted on it, so
        that its imports and set-up overlap the active run's last steps: a chain's next stage on
        its parent's slot, and, when every GPU slot is taken, a ready run on the slot of the active
        run furthest along.
        """
        self.registry.reconcile()  # a dead worker's `running` run becomes lost: the scheduler's job, not a reader's
        self._collect()
        self._adopt_running()
        queued = self.registry.runs(status="queued", sort="created_at")
        without_slot: list[tuple[str, Executor]] = []  # ready runs that found every slot taken
        for run in queued:
            if run.id in self.active or run.id in self.standby:
                continue
            ready = self._ready(run)
            if ready is None:
                self.registry.finish_run(run.id, "failed", error=not_started(run.parent_id))
                continue
            executor = self._executor(run)
            if executor is None:
                continue
            if not executor.takes_slots:  # placed and queued for resources by its engine
                if ready:
                    self._start(run.id, executor, None)
            elif ready and self.local_workers() < self.max_parallel and self.free:
                self._start(run.id, executor, self.free[0])
            elif ready:
                without_slot.append((run.id, executor))
            elif run.parent_id in self._open_slots():  # children first: a chain keeps its slot
                self._start(run.id, executor, self.active[run.parent_id], after=run.parent_id)
        for run_id, executor in without_slot:
            # on GPU slots only: on a CPU whose cores the running workers already fill, a waiting
            # worker's imports only take from them (the paper's synthetic sweep took 6.5 min with
            # this on CPU slots, 6.0 without)
            open_gpu_slots = [r for r in self._open_slots() if self.active[r] is not None]
            if open_gpu_slots:
                before = max(open_gpu_slots, key=self._progress)
                self._start(run_id, executor, self.active[before], after=before)
        return bool(queued or self.active or self.standby or self.untracked)

    def wait(self, timeout: float) -> None:
        """Until a worker exits, or `timeout` seconds."""
        busy = {id(e): e for run_id, e in self._engine.items()}
        if not busy:
            time.sleep(timeout)
            return
        for executor in busy.values():
            executor.wait(timeout / len(busy))

    # -- starting

    def _ready(self, run: Run) -> bool | None:
        """True to start, False to wait, None when the run can never start (its parent did not finish)."""
        if not run.parent_id:
            return True
        try:
            parent = self.registry.get_run(run.parent_id).status
        except SsnasError:  # the parent was deleted
            return None
        if parent == "finished":
            return True
        return False if parent not in TERMINAL else None

    def _executor(self, run: Run) -> Executor | None:
        try:
            return self.engines.for_run(run)
        except SsnasError as error:
            self.registry.finish_run(run.id, "failed", error=f"not started: {error}")
            self._log(f"{run.id} failed: not started: {error}")
            return None

    def _start(self, run_id: str, executor: Executor, slot: str | None, after: str | None = None) -> None:
        try:
            executor.submit(run_id, slot, after=after)
        except Exception as error:  # noqa: BLE001 - the run must end in a final state, the scheduler go on
            text = str(error).strip().splitlines()
            reason = text[0] if text else type(error).__name__
            self.registry.finish_run(run_id, "failed", error=f"not started: {reason}")
            self._log(f"{run_id} failed to start: {error}")
            return
        self._engine[run_id] = executor
        if after is None:
            self.active[run_id] = slot
        else:
            self.standby[run_id] = after
        where = f"on GPU {slot}" if slot is not None else "on the CPU" if executor.takes_slots else \
            f"on {executor.name}"
        self._log(f"{run_id} {'prestarted' if after else 'started'} {where}" + (f" after {after}" if after else ""))

    def _open_slots(self) -> list[str]:
        """Active local runs whose slot no prestarted run has claimed yet (none if their executor can't prestart)."""
        claimed = set(self.standby.values())
        return [run_id for run_id in self.active if run_id not in claimed
                and self._engine[run_id].prestarts and self._engine[run_id].takes_slots]

    def _progress(self, run_id: str) -> float:
        return self.registry.get_run(run_id).progress or 0.0

    # -- watching

    def _collect(self) -> None:
        """Settle the runs whose worker exited; a prestarted successor takes over its predecessor's slot."""
        for run_id, slot in list(self.active.items()):
            executor = self._engine[run_id]
            worker = executor.status(run_id)
            if worker.alive:
                continue
            del self.active[run_id]
            del self._engine[run_id]
            successor = next((s for s, before in self.standby.items() if before == run_id), None)
            if successor is not None:  # it takes the slot over (or exits at once if it may not start)
                del self.standby[successor]
                self.active[successor] = slot
            self._settle(run_id, executor, worker)
        for waiting in list(self.standby):
            executor = self._engine[waiting]
            worker = executor.status(waiting)
            if not worker.alive:  # died while waiting: settled like a worker that never started
                del self.standby[waiting]
                del self._engine[waiting]
                self._settle(waiting, executor, worker)

    def _settle(self, run_id: str, executor: Executor, worker: WorkerStatus) -> None:
        """Give a run whose worker exited a final status, unless another worker has it now."""
        run = self.registry.get_run(run_id)
        if run.status == "running":
            if worker.pid is None or run.pid == worker.pid:
                self._end_unrecorded(run_id, worker.exit_code)
            else:  # another worker started it first (one a dead scheduler had prestarted): watch that one
                self._adopt(run, executor)
        elif run.status == "queued" and not (run.pid is not None and run.pid == worker.pid):
            if self._ready(run) is None:
                error = not_started(run.parent_id)
            else:
                error = f"worker exited (code {worker.exit_code}) before it started; see its log.txt"
            self.registry.finish_run(run_id, "failed", error=error)
            self._log(f"{run_id} failed: {error}")
        elif run.status == "queued":
            self._log(f"{run_id} was queued again after its worker ended: it starts anew")
        else:
            self._log(f"{run_id} {run.status}")

    def _end_unrecorded(self, run_id: str, exit_code: int | None) -> None:
        """End a run whose worker exited with it still `running`: as its exit code says when it says (the
        worker could not record its end: its registry write failed), else `lost` (it died)."""
        status = UNRECORDED_ENDS.get(exit_code) if exit_code is not None else None
        if status is None:
            status, error = "lost", "worker process exited without a final status"
        else:
            error = f"worker exited {status} (code {exit_code}) without recording its end; see its log.txt"
        self.registry.finish_run(run_id, status, error=error)
        self._log(f"{run_id} {status}: {error}")

    def _adopt_running(self) -> None:
        """Watch the running runs of this folder that no scheduler watches (their scheduler died)."""
        self.untracked = 0
        for run in self.registry.runs(status="running"):
            if run.id in self.active or run.id in self.standby:
                continue
            try:
                executor = self.engines.for_run(run, open_new=False)
            except SsnasError:
                executor = None
            if executor is None or not self._adopt(run, executor):
                self.untracked += 1

    def _adopt(self, run: Run, executor: Executor) -> bool:
        worker = executor.adopt(run)
        if not worker.alive:
            return False
        self._engine[run.id] = executor
        self.active[run.id] = worker.slot if executor.takes_slots else None
        self._log(f"{run.id} adopted: its worker {worker.pid} runs on")
        return True


# -- the queue as a reader sees it -------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """A queued run and why it has not started (None: it starts at the scheduler's next pass)."""

    run: Run
    reason: str | None


def waiting_reasons(queued: Sequence[Run], running: Sequence[Run], parents: Mapping[str, str],
                    parallel: int) -> list[Waiting]:
    """Why each queued run (oldest first) waits, by the scheduler's rules: its parent has not finished, or
    every local slot is taken (`parents`: the status of each queued run's parent)."""
    free = parallel - sum(1 for run in running if (run.executor or LOCAL) == LOCAL)
    reasons = []
    for run in queued:
        parent = parents.get(run.parent_id) if run.parent_id else None
        if run.parent_id and parent != "finished":
            reason = (f"parent {run.parent_id[:8]} {parent}" if parent in ("queued", "running")
                      else f"parent {run.parent_id[:8]} did not finish: it will fail")
        elif (run.executor or LOCAL) != LOCAL:
            reason = f"placed by {run.executor}"
        elif free > 0:
            free -= 1
            reason = None
        else:
            reason = f"no free slot ({parallel} of {parallel} busy)"
        reasons.append(Waiting(run, reason))
    return reasons
