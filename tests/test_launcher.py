"""The scheduler's bookkeeping when workers exit, with a scripted executor (the protocol's seam)."""

from ssnas.launcher import Scheduler, WorkerStatus, device_slots
from ssnas.registry import Registry


class ScriptedExecutor:
    """Workers that 'exit' when told to; which pid each had is up to the test."""

    name = "scripted"
    prestarts = True

    def __init__(self):
        self.submitted: list[str] = []
        self.prestarted: dict[str, tuple[str | None, str]] = {}  # run -> (slot, parent)
        self.exited: dict[str, WorkerStatus] = {}

    def submit(self, run_id, slot, after=None):
        self.submitted.append(run_id)
        if after is not None:
            self.prestarted[run_id] = (slot, after)

    def wait(self, timeout):
        pass

    def status(self, run_id):
        return self.exited.get(run_id, WorkerStatus(alive=True, pid=4242))

    def logs(self, run_id, lines=20):
        return ""

    def cancel(self, run_id):
        self.exited[run_id] = WorkerStatus(alive=False, exit_code=3, pid=4242)


def setup(tmp_path, count=1):
    registry = Registry(tmp_path / "registry.db")
    ids = [registry.create_run(name=f"r{i}", stage="search", config={}) for i in range(count)]
    executor = ScriptedExecutor()
    return registry, ids, executor, Scheduler(registry, executor, [None], 1)


def test_a_worker_that_dies_while_running_makes_its_run_lost(tmp_path):
    registry, [run], executor, scheduler = setup(tmp_path)
    scheduler.step([run])
    registry.start_run(run, pid=4242, host="h", device="cpu")
    executor.exited[run] = WorkerStatus(alive=False, exit_code=-9, pid=4242)
    assert scheduler.step([run]) is False
    assert registry.get_run(run)["status"] == "lost"


def test_a_worker_that_exits_before_starting_fails_its_run_once(tmp_path):
    registry, [run], executor, scheduler = setup(tmp_path)
    scheduler.step([run])
    executor.exited[run] = WorkerStatus(alive=False, exit_code=1, pid=4242)
    assert scheduler.step([run]) is False
    failed = registry.get_run(run)
    assert failed["status"] == "failed" and "before it started" in failed["error"]
    assert executor.submitted == [run]  # not started again and again


def test_a_run_resumed_elsewhere_is_left_to_its_new_scheduler(tmp_path):
    registry, [run], executor, scheduler = setup(tmp_path)
    scheduler.step([run])
    registry.start_run(run, pid=4242, host="h", device="cpu")
    registry.finish_run(run, "killed")
    registry.update_run(run, status="queued")  # what `ssnas resume` does before its own scheduler starts it
    executor.exited[run] = WorkerStatus(alive=False, exit_code=3, pid=4242)
    assert scheduler.step([run]) is False
    assert registry.get_run(run)["status"] == "queued" and executor.submitted == [run]


def test_parallelism_follows_slots(tmp_path):
    registry, ids, executor, _ = setup(tmp_path, count=3)
    slots, parallel = device_slots(["0", "1"], None)
    scheduler = Scheduler(registry, executor, slots, parallel)
    scheduler.step(ids)
    assert list(scheduler.active) == ids[:2] and set(scheduler.active.values()) == {"0", "1"}
    assert list(executor.prestarted) == [ids[2]]  # the third waits, ready, on one of the two GPUs


def test_on_cpu_slots_a_ready_run_waits_for_a_free_slot_without_prestarting(tmp_path):
    registry, ids, executor, _ = setup(tmp_path, count=3)
    scheduler = Scheduler(registry, executor, [None, None], 2)
    scheduler.step(ids)
    assert list(scheduler.active) == ids[:2] and executor.prestarted == {}


def test_a_ready_run_is_prestarted_on_the_slot_of_the_run_furthest_along(tmp_path):
    registry, ids, executor, _ = setup(tmp_path, count=3)
    scheduler = Scheduler(registry, executor, ["0", "1"], 2)
    scheduler.step(ids[:2])
    registry.heartbeat(ids[1], progress=0.9)
    registry.heartbeat(ids[0], progress=0.2)
    scheduler.step(ids)
    slot_of_second = scheduler.active[ids[1]]
    assert executor.prestarted == {ids[2]: (slot_of_second, ids[1])}
    executor.exited[ids[1]] = WorkerStatus(alive=False, exit_code=1, pid=4242)  # it failed: no matter, a sibling
    registry.start_run(ids[1], pid=4242, host="h", device="cpu")
    registry.finish_run(ids[1], "failed", error="boom")
    scheduler.step(ids)
    assert scheduler.active[ids[2]] == slot_of_second and not scheduler.standby


def test_a_child_claims_its_parents_slot_before_a_ready_sibling(tmp_path):
    registry, executor = Registry(tmp_path / "registry.db"), ScriptedExecutor()
    first = chain(registry, ("search", "pretrain"))
    second = chain(registry, ("search", "pretrain"))
    scheduler = Scheduler(registry, executor, [None], 1)
    scheduler.step([second[0], first[0], second[1], first[1]])  # the sibling is listed before the child
    assert scheduler.active == {second[0]: None}
    assert executor.prestarted == {second[1]: (None, second[0])}
    assert first[0] not in executor.submitted


def chain(registry, stages=("search", "pretrain", "finetune")):
    ids, parent = [], None
    for stage in stages:
        parent = registry.create_run(name=stage, stage=stage, config={}, parent_id=parent)
        ids.append(parent)
    return ids


def test_the_next_stage_is_prestarted_on_its_parents_slot_and_takes_it_over(tmp_path):
    registry, executor = Registry(tmp_path / "registry.db"), ScriptedExecutor()
    search, pretrain, finetune = chain(registry)
    scheduler = Scheduler(registry, executor, ["0"], 1)
    scheduler.step([search, pretrain, finetune])
    assert executor.prestarted == {pretrain: ("0", search)} and finetune not in executor.submitted
    registry.start_run(search, pid=4242, host="h", device="cpu")
    registry.finish_run(search, "finished")
    executor.exited[search] = WorkerStatus(alive=False, exit_code=0, pid=4242)
    scheduler.step([search, pretrain, finetune])
    assert scheduler.active == {pretrain: "0"} and scheduler.free == []
    assert executor.prestarted[finetune] == ("0", pretrain)  # the chain goes on the same way


def test_a_prestarted_stage_whose_parent_failed_fails_without_starting(tmp_path):
    registry, executor = Registry(tmp_path / "registry.db"), ScriptedExecutor()
    search, pretrain = chain(registry, ("search", "pretrain"))
    scheduler = Scheduler(registry, executor, [None], 1)
    scheduler.step([search, pretrain])
    registry.start_run(search, pid=4242, host="h", device="cpu")
    registry.finish_run(search, "failed", error="boom")
    executor.exited[search] = WorkerStatus(alive=False, exit_code=1, pid=4242)
    executor.exited[pretrain] = WorkerStatus(alive=False, exit_code=4, pid=4343)  # it saw the parent fail
    while scheduler.step([search, pretrain]):
        pass
    child = registry.get_run(pretrain)
    assert child["status"] == "failed" and f"parent {search} did not finish" in child["error"]
    assert scheduler.free == [None]


def test_cancelling_kills_a_prestarted_stage_before_it_starts(tmp_path):
    registry, executor = Registry(tmp_path / "registry.db"), ScriptedExecutor()
    search, pretrain = chain(registry, ("search", "pretrain"))
    scheduler = Scheduler(registry, executor, [None], 1)
    scheduler.step([search, pretrain])
    scheduler.cancel_all([search, pretrain])
    assert executor.exited[pretrain].exit_code == 3  # its waiting worker was signalled too
    assert registry.get_run(pretrain)["status"] == "killed"


def test_a_prestarted_worker_whose_run_was_killed_while_it_waited_does_not_start(tmp_path):
    from ssnas.worker import run_worker

    registry = Registry(tmp_path / "registry.db")
    before = registry.create_run(name="before", stage="search", config={})
    waiting = registry.create_run(name="waiting", stage="search", config={})
    registry.start_run(before, pid=4242, host="h", device="cpu")
    registry.finish_run(waiting, "killed", error="cancelled before it started")  # `ssnas kill` meanwhile
    registry.finish_run(before, "finished")
    assert run_worker(waiting, tmp_path, after=before) == 4
    assert registry.get_run(waiting)["status"] == "killed" and registry.get_run(waiting)["pid"] is None
