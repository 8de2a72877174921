"""The run registry on real SQLite files: schema, run lifecycle, concurrent writers, polling reads."""

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import ssnas.registry as registry_module
from ssnas.errors import RegistryError
from ssnas.registry import SCHEMA_VERSION, Registry, this_host
from ssnas.run_record import TERMINAL


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "runs" / "registry.db"


@pytest.fixture
def registry(db_path):
    with Registry(db_path) as opened:
        yield opened


def new_run(registry, name="run", stage="search", **fields):
    return registry.create_run(name=name, stage=stage, config=fields.pop("config", {"search": {"epochs": 2}}), **fields)


def dead_pid():
    """The pid of a process that has exited and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# -- opening and schema


def test_new_registry_gets_the_schema_once_and_reopens_unchanged(db_path):
    Registry(db_path).close()
    Registry(db_path).close()
    with Registry(db_path, create=False):
        pass
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [row[0] for row in conn.execute("SELECT number FROM migrations")] == list(range(1, SCHEMA_VERSION + 1))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "metrics", "arch_weights", "genotypes", "events", "migrations"} <= tables
    indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"runs_status", "runs_group_id", "runs_parent_id", "runs_created_at", "metrics_run",
            "metrics_run_key", "arch_weights_run_epoch", "genotypes_run", "events_run"} <= indexes


def test_missing_registry_without_create(tmp_path):
    path = tmp_path / "nowhere.db"
    with pytest.raises(RegistryError) as caught:
        Registry(path, create=False)
    assert str(caught.value) == f"{path}: no such registry"
    assert not path.exists()


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "registry.db"
    junk = os.urandom(4096)
    path.write_bytes(junk)
    with pytest.raises(RegistryError) as caught:
        Registry(path)
    assert str(caught.value) == f"{path}: not an ssnas registry (not an SQLite database)"
    assert path.read_bytes() == junk


def test_opening_a_second_registry_never_touches_the_file_outside_sqlite(tmp_path, monkeypatch):
    """Closing any descriptor of the file would drop the POSIX locks of this process's open
    connection (a worker holds two: its own and its reporter's), which once left the registry
    unreadable to other processes for a moment."""
    import io

    path = tmp_path / "registry.db"
    first = Registry(path)
    real_open = io.open

    def guarded(file, *args, **kwargs):
        assert Path(file) != path, "the registry file was opened outside SQLite"
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(io, "open", guarded)
    monkeypatch.setattr("builtins.open", guarded)
    second = Registry(path, create=False)
    second.close()
    first.close()


def test_an_sqlite_file_of_something_else_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(RegistryError) as caught:
        Registry(path)
    assert str(caught.value) == f"{path}: not an ssnas registry (no runs table)"


def test_a_registry_from_a_newer_ssnas_is_refused(db_path):
    Registry(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    with pytest.raises(RegistryError) as caught:
        Registry(db_path)
    assert str(caught.value) == (
        f"{db_path}: schema version 7 is newer than this ssnas ({SCHEMA_VERSION}); upgrade ssnas"
    )


def test_an_empty_file_becomes_a_registry(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    with Registry(path) as registry:
        assert registry.runs() == []


def test_opening_a_current_registry_imports_neither_sqlite_utils_nor_numpy(db_path):
    Registry(db_path).close()
    code = (
        "import sys\nfrom ssnas.registry import Registry\n"
        f"Registry({str(db_path)!r}, create=False).runs(limit=5)\n"
        "print([m for m in ('sqlite_utils', 'numpy', 'torch') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- runs


def test_create_run_records_a_queued_run_with_json_columns_decoded(registry):
    config = {"search": {"epochs": 3}, "data": {"label_ratio": 0.1}}
    run_id = registry.create_run(name="s1", stage="search", config=config, tags=["a", "b", "a"], seed=4,
                                 label_ratio=0.1, versions={"torch": "2.4"}, recipe_path="recipes/x.toml")
    assert len(run_id) == 12 and int(run_id, 16) >= 0
    run = registry.get_run(run_id)
    assert run["status"] == "queued" and run["executor"] == "local"
    assert run["config"] == config and run["tags"] == ["a", "b"] and run["versions"] == {"torch": "2.4"}
    assert run["seed"] == 4 and run["label_ratio"] == 0.1 and run["recipe_path"] == "recipes/x.toml"
    assert abs(run["created_at"] - time.time()) < 5
    assert run["latest_loss"] is None and run["best_f1"] is None and run["test_f1"] is None


def test_create_run_refuses_an_unknown_stage_and_unserialisable_config(registry):
    with pytest.raises(RegistryError, match="stage 'train' is not one of search, pretrain, finetune"):
        registry.create_run(name="x", stage="train", config={})
    with pytest.raises(RegistryError, match="config: not JSON-serialisable"):
        registry.create_run(name="x", stage="search", config={"f": object()})


def test_create_run_takes_a_fixed_id_once(registry):
    assert registry.create_run(name="a", stage="search", config={}, run_id="0123456789ab") == "0123456789ab"
    assert new_run(registry, name="b", run_id="snap-search-1") == "snap-search-1"
    assert registry.get_run("snap-search-1")["name"] == "b"
    assert len(new_run(registry, name="c")) == 12  # random ids still come without one
    with pytest.raises(RegistryError, match="run id 'snap-search-1' is already taken"):
        new_run(registry, name="again", run_id="snap-search-1")
    for bad in ("", "abc", "ABCDEF012345", "has space", "-leading", "x" * 65, "ümlaut", 123):
        with pytest.raises(RegistryError, match="is not 4-64 of a-z, 0-9 and '-'"):
            new_run(registry, run_id=bad)
    assert [run["name"] for run in registry.runs(sort="created_at")] == ["a", "b", "c"]


def test_resolve_takes_a_unique_prefix(registry, monkeypatch):
    ids = iter(["ab12" + "0" * 8, "ab34" + "0" * 8, "ab56" + "0" * 8, "cd00" + "0" * 8])
    monkeypatch.setattr(registry_module, "uuid", SimpleNamespace(uuid4=lambda: SimpleNamespace(hex=next(ids) + "ffff")))
    made = [new_run(registry, name=f"r{k}") for k in range(4)]
    assert registry.resolve("cd") == made[3]
    assert registry.resolve("AB34") == made[1]
    assert registry.resolve(made[0]) == made[0]
    assert registry.get_run("ab5")["name"] == "r2"
    with pytest.raises(RegistryError) as caught:
        registry.resolve("ab")
    assert str(caught.value) == f"'ab' matches 3 runs: {made[0]}, {made[1]}, {made[2]}"
    for missing in ("ee", "", "zz"):
        with pytest.raises(RegistryError) as caught:
            registry.resolve(missing)
        assert str(caught.value) == f"no run matches {missing!r}"


def test_a_run_goes_queued_running_finished(registry):
    run_id = new_run(registry)
    registry.start_run(run_id, pid=os.getpid(), host=this_host(), device="cuda:0")
    run = registry.get_run(run_id)
    assert (run["status"], run["device"], run["node"], run["pid"]) == ("running", "cuda:0", this_host(), os.getpid())
    assert run["started_at"] and run["heartbeat_at"] >= run["started_at"]
    with pytest.raises(RegistryError, match="already running"):
        registry.start_run(run_id, pid=1, host="elsewhere", device="cpu")
    registry.heartbeat(run_id, progress=0.5)
    assert registry.get_run(run_id)["progress"] == 0.5
    registry.finish_run(run_id, "finished")
    run = registry.get_run(run_id)
    assert run["status"] == "finished" and run["progress"] == 1.0 and run["ended_at"] >= run["started_at"]


def test_a_failed_run_keeps_its_error_and_can_be_resumed(registry):
    run_id = new_run(registry)
    registry.start_run(run_id, pid=os.getpid(), host=this_host(), device="cpu")
    registry.finish_run(run_id, "failed", error="ValueError: boom")
    assert registry.get_run(run_id)["error"] == "ValueError: boom"
    with pytest.raises(RegistryError, match="is failed, not queued"):
        registry.start_run(run_id, pid=os.getpid(), host=this_host(), device="cpu")
    registry.update_run(run_id, status="queued")  # what resume does
    registry.start_run(run_id, pid=os.getpid(), host=this_host(), device="cpu", node="gpu-node-3")
    run = registry.get_run(run_id)
    assert (run["status"], run["error"], run["ended_at"], run["node"]) == ("running", None, None, "gpu-node-3")


def test_finish_run_takes_only_terminal_statuses(registry):
    run_id = new_run(registry)
    with pytest.raises(RegistryError, match="status 'running' is not one of finished, failed, killed, lost"):
        registry.finish_run(run_id, "running")
    for status in TERMINAL:
        registry.finish_run(run_id, status)
        assert registry.get_run(run_id)["status"] == status


def test_update_run_encodes_json_and_refuses_unknown_fields_and_runs(registry):
    run_id = new_run(registry)
    registry.update_run(run_id, config={"search": {"epochs": 9}}, tags=["x"], run_dir="runs/abc", git_commit="f00")
    run = registry.get_run(run_id)
    assert run["config"] == {"search": {"epochs": 9}} and run["tags"] == ["x"] and run["run_dir"] == "runs/abc"
    with pytest.raises(RegistryError, match="cannot set run field"):
        registry.update_run(run_id, colour="red")
    with pytest.raises(RegistryError, match="status 'done' is not one of"):
        registry.update_run(run_id, status="done")
    with pytest.raises(RegistryError, match="no run 'nope'"):
        registry.update_run("nope", name="x")


def test_tags_are_added_once_and_removed(registry):
    run_id = new_run(registry, tags=["a"])
    registry.add_tags(run_id, ["b", "a", "c"])
    assert registry.get_run(run_id)["tags"] == ["a", "b", "c"]
    registry.remove_tags(run_id, ["a", "zzz"])
    assert registry.get_run(run_id)["tags"] == ["b", "c"]
    assert [r["id"] for r in registry.runs(tag="c")] == [run_id]
    assert registry.runs(tag="a") == []


# -- reconcile


def started(registry, *, pid, host=None, heartbeat_age=0.0):
    run_id = new_run(registry)
    registry.start_run(run_id, pid=pid, host=host or this_host(), device="cpu")
    registry.update_run(run_id, heartbeat_at=time.time() - heartbeat_age)
    return run_id


def test_reconcile_marks_lost_only_stale_runs_whose_process_is_gone(registry):
    gone = started(registry, pid=dead_pid(), heartbeat_age=120)
    alive = started(registry, pid=os.getpid(), heartbeat_age=120)
    fresh = started(registry, pid=dead_pid(), heartbeat_age=0)
    assert registry.reconcile() == [gone]
    lost = registry.get_run(gone)
    assert lost["status"] == "lost" and lost["error"] == "worker process gone" and lost["ended_at"]
    assert registry.get_run(alive)["status"] == "running"
    assert registry.get_run(fresh)["status"] == "running"
    assert registry.reconcile() == []


def test_runs_on_another_host_are_lost_only_after_a_much_older_heartbeat(registry):
    recent = started(registry, pid=os.getpid(), host="other-host", heartbeat_age=120)
    ancient = started(registry, pid=os.getpid(), host="other-host", heartbeat_age=3600)
    assert registry.reconcile(stale_after=30) == [ancient]
    assert registry.get_run(recent)["status"] == "running"


def test_readers_never_reconcile_the_scheduler_does(registry):
    gone = started(registry, pid=dead_pid(), heartbeat_age=120)
    other = started(registry, pid=dead_pid(), heartbeat_age=120)
    assert [run.status for run in registry.runs()] == ["running", "running"]
    assert registry.get_run(other).status == "running" and registry.worker_gone(registry.get_run(other))
    assert sorted(registry.reconcile()) == sorted([gone, other])
    assert registry.get_run(gone).status == "lost"


# -- concurrent writers

WRITER = """
import sys, time
from ssnas.registry import Registry
path, run_id, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
registry = Registry(path)
time.sleep(max(0.0, start_at - time.time()))
for b in range(200):
    registry.add_metrics([(run_id, b * 50 + i, b, "train", "loss", float(i), time.time()) for i in range(50)])
    if b % 50 == 0:
        registry.heartbeat(run_id, progress=b / 200)
registry.add_events([(run_id, time.time(), "info", "done")])
"""


def test_four_writer_processes_at_once_lose_nothing(registry, db_path):
    run_ids = [new_run(registry, name=f"w{k}") for k in range(4)]
    start_at = time.time() + 1.0
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(db_path), run_id, str(start_at)],
                                stderr=subprocess.PIPE, text=True) for run_id in run_ids]
    errors = [w.communicate(timeout=120)[1] for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0, 0], errors
    assert not any("locked" in e for e in errors)
    for run_id in run_ids:
        rows = registry.metrics(run_id)
        assert len(rows) == 200 * 50
        assert [r["step"] for r in rows] == list(range(200 * 50))
        assert [e["message"] for e in registry.events(run_id)] == ["done"]
    assert sqlite3.connect(db_path).execute("SELECT count(*) FROM metrics").fetchone()[0] == 40_000


def test_a_registry_can_be_handed_to_another_thread(registry):
    run_id = new_run(registry)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(registry.get_run(run_id)["name"]))
    thread.start()
    thread.join()
    assert seen == ["run"]


# -- listings


def test_runs_carry_loss_and_f1_summaries(registry):
    run_id = new_run(registry, stage="finetune")
    other = new_run(registry)
    registry.add_metrics([(run_id, s, 0, "train", "loss", 1.0 / (s + 1), 0.0) for s in range(5)])
    logged = [("dev", "f1_weighted", 0.5), ("dev", "f1_weighted", 0.7), ("dev", "f1_weighted", 0.6),
              ("test", "f1_weighted", 0.66), ("dev", "loss", 9.0)]
    registry.add_metrics([(run_id, 10 + s, s, split, key, value, 0.0) for s, (split, key, value) in enumerate(logged)])
    rows = {r["id"]: r for r in registry.runs()}
    assert (rows[run_id]["latest_loss"], rows[run_id]["best_f1"], rows[run_id]["test_f1"]) == (0.2, 0.7, 0.66)
    assert (rows[other]["latest_loss"], rows[other]["best_f1"], rows[other]["test_f1"]) == (None, None, None)
    assert rows[run_id].config is None
    assert registry.runs(config=True)[0]["config"] == {"search": {"epochs": 2}}


def test_runs_filter_by_columns_group_and_parent(registry):
    parent = new_run(registry, name="s", group_id="g1", dataset="synthetic")
    child = new_run(registry, name="p", stage="pretrain", group_id="g1", parent_id=parent, dataset="mmimdb")
    grandchild = new_run(registry, name="f", stage="finetune", group_id="g2", parent_id=child, dataset="mmimdb")
    registry.finish_run(parent, "finished")
    names = lambda rows: [r["name"] for r in rows]  # noqa: E731
    assert names(registry.runs()) == ["f", "p", "s"]
    assert names(registry.runs(status="finished")) == ["s"]
    assert names(registry.runs(status=["queued", "finished"], stage=("search", "finetune"))) == ["f", "s"]
    assert names(registry.runs(dataset="mmimdb", limit=1)) == ["f"]
    assert names(registry.group("g1")) == ["s", "p"]
    assert names(registry.children(parent[:6])) == ["p"]
    assert names(registry.children(child)) == ["f"]
    assert registry.children(grandchild) == []


def test_delete_run_removes_it_and_its_rows(registry):
    keep, drop = new_run(registry, name="keep"), new_run(registry, name="drop")
    for run_id in (keep, drop):
        registry.add_metrics([(run_id, 0, 0, "train", "loss", 1.0, 0.0)])
        registry.add_arch_weights([(run_id, 0, 0, "step_op", 0, 0, None, "sum", 0.5)])
        registry.add_genotype(run_id, 0, 0, "{}")
        registry.add_events([(run_id, 0.0, "info", "hi")])
    registry.delete_run(drop)
    assert [r["name"] for r in registry.runs()] == ["keep"]
    conn = sqlite3.connect(registry.path)
    for table in ("metrics", "arch_weights", "genotypes", "events"):
        assert conn.execute(f"SELECT DISTINCT run_id FROM {table}").fetchall() == [(keep,)]
    with pytest.raises(RegistryError, match="no run"):
        registry.delete_run(drop)


def test_delete_rows_after_a_step_keeps_earlier_rows_and_events(registry):
    run_id, other = new_run(registry), new_run(registry)
    for rid in (run_id, other):
        registry.add_metrics([(rid, s, 0, "train", "loss", float(s), 0.0) for s in range(6)])
        registry.add_arch_weights([(rid, s, s, "step_op", 0, 0, None, "sum", 0.5) for s in range(6)])
        for s in range(6):
            registry.add_genotype(rid, s, s, "{}")
    registry.add_events([(run_id, 5.0, "info", "late")])
    registry.delete_rows_after(run_id, 3)
    assert [r["step"] for r in registry.metrics(run_id)] == [0, 1, 2, 3]
    assert registry.arch_epochs(run_id) == [0, 1, 2, 3]
    assert [g["step"] for g in registry.genotypes(run_id)] == [0, 1, 2, 3]
    assert len(registry.events(run_id)) == 1
    assert len(registry.metrics(other)) == 6


def test_runs_changed_since_follows_creates_updates_and_deletes(registry):
    a, b = new_run(registry, name="a"), new_run(registry, name="b")
    first = registry.runs_changed_since(0)
    assert [r["name"] for r in first.runs] == ["a", "b"] and first.deleted == []
    assert registry.runs_changed_since(first.revision).runs == []
    registry.heartbeat(a, progress=0.25)
    changed = registry.runs_changed_since(first.revision)
    assert [(r["name"], r["progress"]) for r in changed.runs] == [("a", 0.25)]
    registry.delete_run(b)  # b held the highest revision: the cursor must still move forward
    registry.add_tags(a, ["x"])
    after_delete = registry.runs_changed_since(changed.revision)
    assert [r["name"] for r in after_delete.runs] == ["a"] and after_delete.deleted == [b]
    assert after_delete.revision > changed.revision


# -- worker writes and polling reads


def test_metrics_are_read_after_a_cursor(registry):
    run_id, other = new_run(registry), new_run(registry)
    registry.add_metrics((run_id, s, 0, "train", "loss", float(s), 1.0) for s in range(3))
    registry.add_metrics([(other, 0, 0, "train", "loss", 9.0, 1.0)])
    registry.add_metrics([(run_id, 3, 0, "dev", "f1_weighted", 0.4, 2.0), (run_id, 4, 0, None, "lr", 1e-3, 2.0)])
    registry.add_metrics([])
    rows = registry.metrics(run_id)
    assert [r["value"] for r in rows] == [0.0, 1.0, 2.0, 0.4, 1e-3]
    assert set(rows[0]) == {"rowid", "run_id", "step", "epoch", "split", "key", "value", "wall_time"}
    cursor = rows[2]["rowid"]
    assert [r["key"] for r in registry.metrics(run_id, after=cursor)] == ["f1_weighted", "lr"]
    assert registry.metrics(run_id, after=rows[-1]["rowid"]) == []
    assert [r["value"] for r in registry.metrics(run_id, key="loss", after=rows[0]["rowid"])] == [1.0, 2.0]
    assert [r["value"] for r in registry.metrics(run_id, split="dev")] == [0.4]
    assert registry.metric_keys(run_id) == [("f1_weighted", "dev"), ("loss", "train"), ("lr", None)]


def test_arch_weights_genotypes_and_events(registry):
    run_id = new_run(registry)
    for epoch in (0, 1):
        registry.add_arch_weights([
            (run_id, 10 * epoch, epoch, "cell_input", 0, None, 0, "image[2]", 0.6),
            (run_id, 10 * epoch, epoch, "cell_input", 0, None, 1, "text[0]", 0.4),
            (run_id, 10 * epoch, epoch, "step_op", 0, 0, None, "concat_fc", 0.3 + epoch / 10),
        ])
        registry.add_genotype(run_id, 10 * epoch, epoch, json.dumps({"epoch": epoch}))
    assert registry.arch_epochs(run_id) == [0, 1]
    latest = registry.arch_weights(run_id, epoch=1)
    assert [(r["kind"], r["slot"], r["choice"], r["weight"]) for r in latest] == [
        ("cell_input", 0, "image[2]", 0.6), ("cell_input", 1, "text[0]", 0.4), ("step_op", None, "concat_fc", 0.4)]
    assert latest[2]["step_index"] == 0 and latest[0]["step_index"] is None
    assert len(registry.arch_weights(run_id)) == 6
    assert [json.loads(g["genotype"]) for g in registry.genotypes(run_id)] == [{"epoch": 0}, {"epoch": 1}]
    assert registry.latest_genotype(run_id)["epoch"] == 1
    assert registry.latest_genotype(new_run(registry)) is None
    registry.add_events([(run_id, 1.0, "info", "started"), (run_id, 2.0, "warning", "slow")])
    events = registry.events(run_id)
    assert [e["message"] for e in events] == ["started", "slow"]
    assert [e["level"] for e in registry.events(run_id, after=events[0]["rowid"])] == ["warning"]


def test_a_corrupt_json_column_does_not_break_listings(tmp_path):
    import sqlite3

    registry = Registry(tmp_path / "registry.db")
    good = registry.create_run(name="good", stage="search", config={})
    bad = registry.create_run(name="bad", stage="search", config={})
    with sqlite3.connect(tmp_path / "registry.db") as conn:
        conn.execute("UPDATE runs SET tags = '[oops', config = '{' WHERE id = ?", (bad,))
    rows = {r["id"]: r for r in registry.runs()}
    assert set(rows) == {good, bad}
    assert rows[bad]["tags"] == [] and "tags is not valid JSON" in rows[bad]["corrupt"]
    assert registry.get_run(bad)["config"] is None and "config is not valid JSON" in registry.get_run(bad)["corrupt"]
