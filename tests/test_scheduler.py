"""The scheduler's rules and bookkeeping, with a scripted executor (the protocol's seam) and a real registry."""

import time

import pytest

from ssnas.registry import Registry, this_host
from ssnas.scheduling.executor import WorkerExit, WorkerStatus
from ssnas.scheduling.scheduler import Engines, Scheduler, waiting_reasons
from ssnas.scheduling.state import FolderLock, Settings, read_state, scheduler_alive, update_settings


class ScriptedExecutor:
    """Workers that 'exit' when told to; which pid each had is up to the test."""

    name = "scripted"
    prestarts = True
    takes_slots = True

    def __init__(self):
        self.submitted: list[str] = []
        self.prestarted: dict[str, tuple[str | None, str]] = {}  # run -> (slot, parent)
        self.exited: dict[str, WorkerStatus] = {}
        self.adoptable: dict[str, WorkerStatus] = {}  # run -> what adopt() finds of its worker

    def submit(self, run_id, slot, after=None):
        self.submitted.append(run_id)
        self.exited.pop(run_id, None)
        if after is not None:
            self.prestarted[run_id] = (slot, after)

    def adopt(self, run):
        return self.adoptable.get(run.id, WorkerStatus(alive=False))

    def wait(self, timeout):
        pass

    def status(self, run_id):
        return self.exited.get(run_id, WorkerStatus(alive=True, pid=4242))

    def cancel(self, run_id):
        self.exited[run_id] = WorkerStatus(alive=False, exit_code=WorkerExit.KILLED, pid=4242)


class PlacingExecutor(ScriptedExecutor):
    """An engine that places runs itself, as Ray does: no local slot, no prestart."""

    name = "ray"
    prestarts = False
    takes_slots = False


def scheduler_for(registry, executor, slots=(None,), parallel=1, **others):
    return Scheduler(registry, Engines({"local": executor, **others}), slots, parallel)


def setup(tmp_path, count=1):
    registry = Registry(tmp_path / "registry.db")
    ids = [registry.create_run(name=f"r{i}", stage="search", config={}) for i in range(count)]
    executor = ScriptedExecutor()
    return registry, ids, executor, scheduler_for(registry, executor)


def chain(registry, stages=("search", "pretrain", "finetune"), group=None):
    ids, parent = [], None
    for stage in stages:
        parent = registry.create_run(name=stage, stage=stage, config={}, parent_id=parent, group_id=group)
        ids.append(parent)
    return ids


def end(registry, executor, run_id, status, pid=4242, code=0):
    """The worker of `run_id` ran it (with `pid`) to `status` and exited."""
    registry.start_run(run_id, pid=pid, host="h", device="cpu")
    registry.finish_run(run_id, status)
    executor.exited[run_id] = WorkerStatus(alive=False, exit_code=code, pid=pid)


def test_a_worker_that_dies_while_running_makes_its_run_lost(tmp_path):
    registry, [run], executor, scheduler = setup(tmp_path)
    scheduler.step()
    registry.start_run(run, pid=4242, host="h", device="cpu")
    executor.exited[run] = WorkerStatus(alive=False, exit_code=-9, pid=4242)
    assert scheduler.step() is False
    assert registry.get_run(run).status == "lost"


def test_a_worker_that_exits_before_starting_fails_its_run_once(tmp_path):
    registry, [run], executor, scheduler = setup(tmp_path)
    scheduler.step()
    executor.exited[run] = WorkerStatus(alive=False, exit_code=1, pid=4242)
    assert scheduler.step() is False
    failed = registry.get_run(run)
    assert failed.status == "failed" and "before it started" in failed.error
    assert executor.submitted == [run]  # not started again and again


def test_a_run_queued_again_after_its_worker_ended_starts_anew(tmp_path):
    registry, [run], executor, scheduler = setup(tmp_path)
    scheduler.step()
    end(registry, executor, run, "killed", code=WorkerExit.KILLED)
    registry.update_run(run, status="queued")  # what `ssnas resume` does, possibly before the exit is seen
    assert scheduler.step() is True
    assert registry.get_run(run).status == "queued" and executor.submitted == [run, run]


def test_every_queued_run_of_the_folder_shares_one_max_parallel(tmp_path):
    registry, executor = Registry(tmp_path / "registry.db"), ScriptedExecutor()
    first = registry.create_run(name="a", stage="search", config={}, group_id="g1")
    second = registry.create_run(name="b", stage="search", config={}, group_id="g2")
    scheduler = scheduler_for(registry, executor)
    scheduler.step()
    assert executor.submitted == [first]  # oldest first, whichever submission queued it
    end(registry, executor, first, "finished")
    scheduler.step()
    assert executor.submitted == [first, second]


def test_parallelism_follows_slots(tmp_path):
    registry, ids, executor, _ = setup(tmp_path, count=3)
    settings = Settings(gpus=("0", "1"))
    scheduler = scheduler_for(registry, executor, settings.slots([]), settings.parallel([]))
    scheduler.step()
    assert list(scheduler.active) == ids[:2] and set(scheduler.active.values()) == {"0", "1"}
    assert list(executor.prestarted) == [ids[2]]  # the third waits, ready, on one of the two GPUs


def test_on_cpu_slots_a_ready_run_waits_for_a_free_slot_without_prestarting(tmp_path):
    registry, ids, executor, _ = setup(tmp_path, count=3)
    scheduler = scheduler_for(registry, executor, [None, None], 2)
    scheduler.step()
    assert list(scheduler.active) == ids[:2] and executor.prestarted == {}


def test_new_settings_apply_from_the_next_start_on(tmp_path):
    registry, ids, executor, scheduler = setup(tmp_path, count=3)
    scheduler.step()
    assert list(scheduler.active) == ids[:1]
    scheduler.configure([None, None, None], 2)
    scheduler.step()
    assert list(scheduler.active) == ids[:2]  # two at once now, not three: max_parallel bounds the slots
    scheduler.configure([None], 1)
    end(registry, executor, ids[0], "finished")
    scheduler.step()
    assert list(scheduler.active) == ids[1:2] and ids[2] not in executor.submitted  # the running one keeps on


def test_a_ready_run_is_prestarted_on_the_slot_of_the_run_furthest_along(tmp_path):
    registry, ids, executor, _ = setup(tmp_path, count=2)
    scheduler = scheduler_for(registry, executor, ["0", "1"], 2)
    scheduler.step()
    registry.heartbeat(ids[1], progress=0.9)
    registry.heartbeat(ids[0], progress=0.2)
    third = registry.create_run(name="r2", stage="search", config={})
    scheduler.step()
    slot_of_second = scheduler.active[ids[1]]
    assert executor.prestarted == {third: (slot_of_second, ids[1])}
    end(registry, executor, ids[1], "failed", code=1)  # it failed: no matter, a sibling
    scheduler.step()
    assert scheduler.active[third] == slot_of_second and not scheduler.standby


def test_a_child_claims_its_parents_slot_before_a_ready_sibling(tmp_path):
    registry, executor = Registry(tmp_path / "registry.db"), ScriptedExecutor()
    search = registry.create_run(name="a/search", stage="search", config={})
    sibling = registry.create_run(name="b/search", stage="search", config={})  # queued before the child
    child = registry.create_run(name="a/pretrain", stage="pretrain", config={}, parent_id=search)
    scheduler = scheduler_for(registry, executor)
    scheduler.step()
    assert scheduler.active == {search: None}
    assert executor.prestarted == {child: (None, search)}
    assert sibling not in executor.submitted


def test_the_next_stage_is_prestarted_on_its_parents_slot_and_takes_it_over(tmp_path):
    registry, executor = Registry(tmp_path / "registry.db"), ScriptedExecutor()
    search, pretrain, finetune = chain(registry)
    scheduler = scheduler_for(registry, executor, ["0"], 1)
    scheduler.step()
    assert executor.prestarted == {pretrain: ("0", search)} and finetune not in executor.submitted
    end(registry, executor, search, "finished")
    scheduler.step()
    assert scheduler.active == {pretrain: "0"} and scheduler.free == []
    assert executor.prestarted[finetune] == ("0", pretrain)  # the chain goes on the same way


def test_a_prestarted_stage_whose_parent_failed_fails_without_starting(tmp_path):
    registry, executor = Registry(tmp_path / "registry.db"), ScriptedExecutor()
    search, pretrain = chain(registry, ("search", "pretrain"))
    scheduler = scheduler_for(registry, executor)
    scheduler.step()
    end(registry, executor, search, "failed", code=1)
    executor.exited[pretrain] = WorkerStatus(alive=False, exit_code=WorkerExit.NOT_STARTED, pid=4343)
    while scheduler.step():
        pass
    child = registry.get_run(pretrain)
    assert child.status == "failed" and f"parent {search} did not finish" in child.error
    assert scheduler.free == [None]


def test_a_prestarted_stage_killed_while_it_waits_stays_killed(tmp_path):
    registry, executor = Registry(tmp_path / "registry.db"), ScriptedExecutor()
    search, pretrain = chain(registry, ("search", "pretrain"))
    scheduler = scheduler_for(registry, executor)
    scheduler.step()
    registry.finish_run(pretrain, "killed", error="cancelled before it started")  # `ssnas kill` meanwhile
    end(registry, executor, search, "killed", code=WorkerExit.KILLED)
    executor.exited[pretrain] = WorkerStatus(alive=False, exit_code=WorkerExit.NOT_STARTED, pid=4343)
    scheduler.step()  # the prestarted worker takes the slot over, and exits at once
    assert scheduler.step() is False
    assert registry.get_run(pretrain).status == "killed" and executor.submitted == [search, pretrain]


def test_a_child_of_a_deleted_parent_fails_without_starting(tmp_path):
    registry, executor = Registry(tmp_path / "registry.db"), ScriptedExecutor()
    search, pretrain = chain(registry, ("search", "pretrain"))
    registry.finish_run(search, "finished")
    registry.delete_run(search)
    scheduler_for(registry, executor).step()
    assert registry.get_run(pretrain).status == "failed" and executor.submitted == []


def test_runs_an_engine_places_itself_take_no_local_slot(tmp_path):
    registry, executor, placing = Registry(tmp_path / "registry.db"), ScriptedExecutor(), PlacingExecutor()
    local = [registry.create_run(name=f"l{i}", stage="search", config={}) for i in range(2)]
    remote = [registry.create_run(name=f"r{i}", stage="search", config={}, executor="ray") for i in range(2)]
    scheduler = scheduler_for(registry, executor, ray=placing)
    scheduler.step()
    assert executor.submitted == local[:1] and placing.submitted == remote  # all at once: Ray queues them


def test_a_run_of_an_executor_that_cannot_open_fails_without_starting(tmp_path):
    from ssnas.errors import ClusterError

    registry, executor = Registry(tmp_path / "registry.db"), ScriptedExecutor()
    run = registry.create_run(name="r", stage="search", config={}, executor="ray")

    def refuse(name, run):
        raise ClusterError("no Ray cluster at 127.0.0.1:1")

    Scheduler(registry, Engines({"local": executor}, refuse), [None], 1).step()
    assert registry.get_run(run).error == "not started: no Ray cluster at 127.0.0.1:1"


def test_a_run_whose_engine_is_pending_waits(tmp_path):
    registry, executor, placing = Registry(tmp_path / "registry.db"), ScriptedExecutor(), PlacingExecutor()
    run = registry.create_run(name="r", stage="search", config={}, executor="ray")
    engines = Engines({"local": executor, "ray": placing}, pending=lambda r: r.ray_options is None)
    scheduler = Scheduler(registry, engines, [None], 1)
    assert scheduler.step() is True and placing.submitted == []
    registry.update_run(run, ray_options='{"cpus": 2}')
    scheduler.step()
    assert placing.submitted == [run]


def test_each_pass_marks_dead_workers_lost(tmp_path):
    registry, [run], executor, scheduler = setup(tmp_path)
    registry.start_run(run, pid=2**22 + 12345, host=this_host(), device="cpu")  # no such process
    registry.update_run(run, heartbeat_at=time.time() - 120)
    scheduler.step()
    assert registry.get_run(run).status == "lost"


def test_a_running_run_whose_scheduler_died_is_adopted_and_holds_its_slot(tmp_path):
    registry, [orphan, queued], executor, scheduler = setup(tmp_path, count=2)
    registry.start_run(orphan, pid=5555, host="h", device="cpu")
    executor.adoptable[orphan] = WorkerStatus(alive=True, pid=5555)
    executor.exited[orphan] = WorkerStatus(alive=True, pid=5555)
    assert scheduler.step() is True
    assert scheduler.active == {orphan: None} and queued not in executor.submitted  # max-parallel 1 is taken
    registry.finish_run(orphan, "finished")
    executor.exited[orphan] = WorkerStatus(alive=False, pid=5555)
    scheduler.step()
    assert registry.get_run(orphan).status == "finished" and executor.submitted == [queued]


def test_a_worker_that_lost_the_start_to_another_watches_the_winner(tmp_path):
    registry, [run], executor, scheduler = setup(tmp_path)
    scheduler.step()
    registry.start_run(run, pid=6666, host="h", device="cpu")  # a dead scheduler's prestarted worker won
    executor.exited[run] = WorkerStatus(alive=False, exit_code=WorkerExit.NOT_STARTED, pid=4242)
    executor.adoptable[run] = WorkerStatus(alive=True, pid=6666)
    assert scheduler.step() is True
    assert registry.get_run(run).status == "running" and list(scheduler.active) == [run]


def test_why_queued_runs_wait():
    from ssnas.run_record import Run

    def run(name, parent=None, executor="local", status="queued"):
        return Run(id=name * 4, name=name, stage="search", status=status, created_at=0.0, parent_id=parent,
                   executor=executor)

    running = [run("a", status="running")]
    queued = [run("b", parent="aaaa"), run("c"), run("d"), run("e", executor="ray")]
    reasons = [w.reason for w in waiting_reasons(queued, running, {"aaaa": "running"}, parallel=2)]
    assert reasons == ["parent aaaa running", None, "no free slot (2 of 2 busy)", "placed by ray"]


# -- the folder's lock and state file -----------------------------------------------------------------


def test_the_lock_admits_one_scheduler_and_a_probe_sees_it(tmp_path):
    first, second = FolderLock(tmp_path), FolderLock(tmp_path)
    assert not scheduler_alive(tmp_path)
    assert first.acquire()
    assert scheduler_alive(tmp_path) and not second.acquire(patience=0.1)
    first.release()
    assert not scheduler_alive(tmp_path) and second.acquire()
    second.release()


def test_settings_persist_and_only_those_given_change(tmp_path):
    assert read_state(tmp_path).settings == Settings()
    update_settings(tmp_path, max_parallel=3)
    update_settings(tmp_path, gpus=("0", "1"))
    update_settings(tmp_path)
    assert read_state(tmp_path).settings == Settings(3, ("0", "1"))
    assert Settings(3, ("0", "1")).slots([]) == ["0", "1"] and Settings(3, ("0", "1")).parallel([]) == 2
    assert Settings(3, ()).slots(["0"]) == [None] * 3 and Settings().slots(["0", "1"]) == ["0", "1"]
    assert Settings(2, ()).cpu_threads([], cores=8) == 4 and Settings(1, ()).cpu_threads([], cores=8) is None


@pytest.mark.parametrize("text", ["{", "[]", '{"settings": {"max_parallel": -1, "gpus": 3}}', "[" * 5000])
def test_a_broken_state_file_reads_as_defaults(tmp_path, text):
    (tmp_path / "scheduler.json").write_text(text)
    assert read_state(tmp_path).settings == Settings() and not read_state(tmp_path).alive


def test_a_prestarted_worker_whose_run_was_killed_while_it_waited_does_not_start(tmp_path):
    from ssnas.worker import run_worker

    registry = Registry(tmp_path / "registry.db")
    before = registry.create_run(name="before", stage="search", config={})
    waiting = registry.create_run(name="waiting", stage="search", config={})
    registry.start_run(before, pid=4242, host="h", device="cpu")
    registry.finish_run(waiting, "killed", error="cancelled before it started")  # `ssnas kill` meanwhile
    registry.finish_run(before, "finished")
    assert run_worker(waiting, tmp_path, after=before) == WorkerExit.NOT_STARTED
    assert registry.get_run(waiting).status == "killed" and registry.get_run(waiting).pid is None


def test_a_worker_does_not_start_a_run_another_worker_runs(tmp_path):
    from ssnas.worker import run_worker

    registry = Registry(tmp_path / "registry.db")
    run = registry.create_run(name="r", stage="search", config={})
    registry.start_run(run, pid=4242, host="h", device="cpu")
    assert run_worker(run, tmp_path) == WorkerExit.NOT_STARTED
    assert registry.get_run(run).pid == 4242
