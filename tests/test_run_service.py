"""The run service alone, without a front end: every action and lookup, and its rules."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ssnas.errors import RegistryError, SsnasError
from ssnas.baselines import load_baseline
from ssnas.registry import Registry, this_host
from ssnas.run_record import Run
from ssnas.runs.actions import refusal
from ssnas.runs.service import RunService



@pytest.fixture
def service(tmp_path):
    runs_dir = tmp_path / "runs"
    service = RunService(runs_dir)
    service.writer(create=True)
    yield service
    service.close()


def queued(service: RunService, name: str = "r", **fields) -> str:
    registry = service.writer()
    run_id = registry.create_run(name=name, stage="search", config={"search": {"epochs": 3}}, seed=0, **fields)
    registry.update_run(run_id, run_dir=str(service.runs_dir / run_id))
    return run_id


def running(service: RunService, pid: int, name: str = "busy") -> str:
    run_id = queued(service, name)
    service.writer().start_run(run_id, pid=pid, host=this_host(), device="cpu")
    return run_id


def test_a_run_is_a_typed_record(service):
    run = service.run(queued(service, tags=["a"]))
    assert isinstance(run, Run) and run.status == "queued" and run.tags == ["a"]
    assert run.setting("search.epochs") == 3 and run.setting("search.nothing", 7) == 7
    assert run.short_id == run.id[:8] and not run.terminal


def test_kill_ends_a_queued_run_and_signals_a_running_worker(service):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        waiting, busy = queued(service), running(service, sleeper.pid)
        outcomes = service.kill([waiting, busy])
        assert [o.ok for o in outcomes] == [True, True]
        assert sleeper.wait(timeout=10) == -15  # SIGTERM: a worker checkpoints and ends killed itself
        assert service.run(waiting).status == "killed"
        assert service.run(waiting).error == "cancelled before it started"
        again = service.kill([waiting])
        assert not again[0].ok and "already killed" in again[0].message
    finally:
        sleeper.kill()


def test_tags_are_added_and_removed_and_blank_ones_refused(service):
    run_id = queued(service)
    assert service.tag(run_id, add=["paper", "best"]).tags == ["paper", "best"]
    assert service.tag(run_id, remove=["paper"]).tags == ["best"]
    for bad in ([""], ["  "]):
        with pytest.raises(SsnasError, match="non-empty"):
            service.tag(run_id, add=bad)
    assert service.run(run_id).tags == ["best"]


def test_delete_refuses_a_running_run_before_asking_and_removes_folders(service):
    asked = []
    busy = running(service, pid=subprocess.Popen([sys.executable, "-c", "pass"]).pid)
    done = queued(service)
    (service.runs_dir / done).mkdir(parents=True)
    with pytest.raises(SsnasError, match="still running"):
        service.delete([busy, done], confirm=lambda runs: asked.append(runs) or True)
    assert asked == [] and service.run(done).status == "queued"
    with pytest.raises(SsnasError, match="nothing deleted"):
        service.delete([done], confirm=lambda runs: False)
    assert [o.message for o in service.delete([done])] == [f"deleted {done[:8]}"]
    assert not (service.runs_dir / done).exists()
    with pytest.raises(RegistryError, match="no run"):
        service.run(done)


def test_refusal_is_the_rule_every_front_end_asks(service):
    run = service.run(queued(service))
    assert refusal("kill", run) is None and refusal("delete", run) is None
    assert "only killed, failed, lost runs resume" in refusal("resume", run)
    finished = run.with_changes(status="finished")
    assert "already finished" in refusal("kill", finished)


def test_folder_and_genotype_lookup_and_export(service, tmp_path):
    run_id = queued(service)
    run = service.run(run_id)
    assert service.folder(run) == service.runs_dir / run_id
    assert service.genotype(run).genotype is None
    folder = service.runs_dir / run_id
    folder.mkdir(parents=True)
    load_baseline("bmnas-mmimdb").save(folder / "genotype.json")
    found = service.genotype(run)
    assert found.genotype == load_baseline("bmnas-mmimdb") and found.where.endswith("genotype.json")
    service.writer().add_genotype(run_id, 5, 1, found.genotype.to_json())
    assert service.genotype(run).where == "epoch 1, step 5"
    written = service.export(run_id, tmp_path / "out")
    assert [line.rsplit("/", 1)[-1] for line in written] == ["genotype.json", "metrics.csv", "config.json"]
    (folder / "genotype.json").write_text("{broken")
    service.writer().delete_rows_after(run_id, 0)
    assert "genotype" in (service.genotype(run).error or "")


def test_compare_gives_a_row_per_field_and_the_differing_config(service):
    a, b = queued(service, "a"), queued(service, "b")
    service.writer().update_run(b, config={"search": {"epochs": 5}})
    comparison = service.compare([a, b])
    assert comparison.labels == [a[:8], b[:8]]
    assert comparison.summary[0] == {"": "name", a[:8]: "a", b[:8]: "b"}
    assert comparison.config == [{"config that differs": "search.epochs", a[:8]: "3", b[:8]: "5"}]
    with pytest.raises(SsnasError, match="twice"):
        service.compare([a, a])


def test_readers_never_write(service):
    sleeper = subprocess.Popen([sys.executable, "-c", "pass"])
    sleeper.wait()
    stale = running(service, sleeper.pid)
    service.writer().update_run(stale, heartbeat_at=time.time() - 3600)
    reader = Registry(service.registry_path, create=False, readonly=True)
    try:
        run = reader.get_run(stale)
        assert run.status == "running" and reader.worker_gone(run)
        assert [r.id for r in reader.runs(status="running")] == [stale]
        with pytest.raises(RegistryError, match="readonly"):
            reader.add_tags(stale, ["x"])
    finally:
        reader.close()
    assert service.writer().reconcile() == [stale]  # what the scheduler does on each pass
    assert service.run(stale).status == "lost"


def test_a_reader_that_comes_before_the_schema_is_told_to_wait_and_not_cached(tmp_path):
    """The dashboard may open registry.db between its creation and its schema: it must try again later
    rather than keep a connection that knows no columns."""
    import sqlite3

    from tui.data import RegistryReader

    path = tmp_path / "registry.db"
    sqlite3.connect(path).close()  # the file exists, nothing in it yet
    with pytest.raises(RegistryError, match="being created"):
        Registry(path, create=False, readonly=True)
    reader = RegistryReader(tmp_path)
    assert reader.poll_runs(0).error.endswith("being created (no schema yet)")
    Registry(path).close()  # its creator writes the schema
    assert reader.poll_runs(0).changes.runs == []
    reader.close()
