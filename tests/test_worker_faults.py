"""Every way a worker can be stopped or fail leaves its run in a true final state, and one a resume can go on
from: a stop in its first instant, a resume with no checkpoint, a full disk, a registry that refuses the
end, and elapsed time summed over attempts."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssnas.errors import RegistryError
from ssnas.recipe import load_recipe
from ssnas.registry import Registry
from ssnas.reporting import InMemoryReporter
from ssnas.run_record import Run
from ssnas.runs.format import elapsed_seconds
from ssnas.scheduling.executor import WorkerExit, WorkerStatus
from ssnas.scheduling.scheduler import Engines, Scheduler
from ssnas.stages.training import StageStopped
from ssnas.worker import Place, run_worker, work
from ssnas.writes import WriteError, write_atomically
from tests.e2e import tiny_recipe, wait_for

STEPS = 6  # the tiny search: 2 epochs of 3 steps


def tiny_run(folder: Path, run_dir: Path | None = None) -> tuple[Path, str, Path]:
    """A queued tiny search in `folder/runs`, its files in `run_dir` (default runs/RUN_ID)."""
    recipe = load_recipe(tiny_recipe(folder))
    runs = folder / "runs"
    with Registry(runs / "registry.db") as registry:
        run_id = registry.create_run(name="tiny", stage="search", config=recipe.to_dict(), recipe_path=str(recipe.path))
        run_dir = run_dir or runs / run_id
        registry.update_run(run_id, run_dir=str(run_dir))
    return runs, run_id, run_dir


def start_worker(runs: Path, run_id: str, run_dir: Path) -> subprocess.Popen:
    """The worker as the local executor starts it, its output appended to the run's log.txt."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "log.txt", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "ssnas.worker", run_id, "--runs", str(runs)], stdout=log,
                                stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def queue_again(registry: Registry, run_id: str) -> None:
    """What `ssnas resume` writes."""
    registry.update_run(run_id, status="queued", error=None, ended_at=None)


def in_process(runs: Path, run_id: str, registry: object | None = None) -> int:
    """The worker's `work` in this process, through `registry` (default: the runs folder's)."""
    with Registry(runs / "registry.db", create=False) as own:
        run = own.get_run(run_id)
        place = Place(Path(run.run_dir or runs / run_id), None, lambda: Registry(own.path, create=False))
        return work(registry or own, run, place)


def assert_one_history(registry: Registry, run_id: str) -> None:
    """Every series holds each step once, and the loss every step of the stage."""
    rows = registry.metrics(run_id)
    keys = [(row["key"], row["split"], row["step"]) for row in rows]
    assert len(keys) == len(set(keys))
    assert [row["step"] for row in rows if row["key"] == "loss"] == list(range(1, STEPS + 1))
    assert [row["step"] for row in registry.genotypes(run_id)] == [3, 6]


# -- a stop at start-up ---------------------------------------------------------------------------------


def test_a_stop_in_the_workers_first_instant_ends_it_killed_and_a_resume_counts_both_attempts(tmp_path):
    runs, run_id, run_dir = tiny_run(tmp_path)
    registry = Registry(runs / "registry.db", create=False)
    worker = start_worker(runs, run_id, run_dir)
    running = wait_for(lambda: registry.get_run(run_id).status == "running", timeout=60, interval=0.005)
    assert running
    os.kill(worker.pid, signal.SIGTERM)  # where `ssnas kill` sends it, torch not imported yet
    assert worker.wait(timeout=120) == WorkerExit.KILLED
    stopped = registry.get_run(run_id)
    assert stopped.status == "killed" and stopped.error == "search: stopped before its first step"
    assert registry.metrics(run_id) == [] and not (run_dir / "checkpoint.pt").exists()
    first = stopped.ended_at - stopped.started_at
    assert elapsed_seconds(stopped) == pytest.approx(first)

    queue_again(registry, run_id)
    assert start_worker(runs, run_id, run_dir).wait(timeout=300) == WorkerExit.FINISHED
    done = registry.get_run(run_id)
    assert done.status == "finished"
    assert_one_history(registry, run_id)
    second = done.ended_at - done.started_at
    assert elapsed_seconds(done) == pytest.approx(first + second) and second < elapsed_seconds(done)
    registry.close()


def test_a_stop_asked_before_a_stages_first_step_ends_it_there_with_nothing_saved():
    from tests.test_loop import fit_line

    reporter = InMemoryReporter(stop_after=0)
    with pytest.raises(StageStopped, match="^line: stopped before its first step$"):
        fit_line(reporter)
    assert reporter.metrics == [] and reporter.checkpoints == []


# -- a resume without a checkpoint ------------------------------------------------------------------------


def test_a_run_resumed_without_a_checkpoint_starts_over_as_one_history(tmp_path):
    runs, run_id, run_dir = tiny_run(tmp_path)
    with Registry(runs / "registry.db", create=False) as registry:
        # an attempt that logged two steps and was killed -9 before its first checkpoint
        registry.start_run(run_id, pid=1, host="gone", device="cpu")
        registry.add_metrics([(run_id, step, 0, "train", "loss", 9.0, 0.0) for step in (1, 2)])
        registry.add_arch_weights([(run_id, 2, 0, "step_op", 0, 0, None, "sum", 0.5)])
        registry.add_genotype(run_id, 2, 0, "{}")
        registry.add_events([(run_id, 0.0, "info", "the earlier attempt")])
        registry.finish_run(run_id, "lost", error="worker process gone")
        queue_again(registry, run_id)
    (run_dir / "tb").mkdir(parents=True)
    (run_dir / "tb" / "events.out.tfevents.0.earlier").write_bytes(b"")
    (run_dir / "checkpoint.pt.tmp").write_bytes(b"half a checkpoint")

    assert run_worker(run_id, runs) == WorkerExit.FINISHED
    with Registry(runs / "registry.db", create=False) as registry:
        assert_one_history(registry, run_id)
        assert 9.0 not in [row["value"] for row in registry.metrics(run_id)]
        assert {row["step"] for row in registry.arch_weights(run_id)} == {0, 3, 6}  # at the start, each epoch's end
        assert registry.events(run_id)[0]["message"] == "the earlier attempt"  # the log keeps every attempt
    assert not (run_dir / "tb" / "events.out.tfevents.0.earlier").exists()
    assert not list(run_dir.glob("*.tmp"))


# -- a full disk -------------------------------------------------------------------------------------------


def assert_failed_for_lack_of_space(runs: Path, run_id: str, run_dir: Path) -> None:
    with Registry(runs / "registry.db", readonly=True) as reader:  # readers still read
        [run] = reader.runs()
    assert run.status == "failed"
    assert run.error == f"WriteError: could not write {run_dir / 'checkpoint.pt'}: No space left on device"
    assert not list(run_dir.glob("*.tmp")) and not (run_dir / "checkpoint.pt").exists()


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A tmpfs of `size` at `folder`; skips the test where this process may not mount one."""
    folder.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (needs root outside a restricted container)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_fails_the_run_with_the_reason_and_leaves_no_temporary(tmp_path):
    # 256 KB: the log and the TensorBoard file fit, the first checkpoint (about 700 KB) does not
    with small_disk(tmp_path / "disk", "256k") as disk:
        runs, run_id, run_dir = tiny_run(tmp_path, run_dir=disk / "run")
        assert start_worker(runs, run_id, run_dir).wait(timeout=300) == WorkerExit.FAILED
        assert_failed_for_lack_of_space(runs, run_id, run_dir)
        assert "could not write" in (run_dir / "log.txt").read_text()  # the temporary's space took the log


def test_a_checkpoint_write_that_fails_as_torch_fails_names_the_file_and_the_reason(tmp_path, monkeypatch):
    import torch

    def full_disk(state, file):  # what torch.save does on a full disk: its own error, the OSError as context
        file.write(b"part of a checkpoint")
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")  # noqa: B904

    runs, run_id, run_dir = tiny_run(tmp_path)
    monkeypatch.setattr(torch, "save", full_disk)
    assert in_process(runs, run_id) == WorkerExit.FAILED
    assert_failed_for_lack_of_space(runs, run_id, run_dir)


def test_an_atomic_write_that_fails_keeps_the_old_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"old")

    def fail(file):
        file.write(b"new, half")
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    with pytest.raises(WriteError, match=f"^could not write {path}: Disk quota exceeded$"):
        write_atomically(path, fail)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_reporter_that_cannot_open_its_writers_says_why_at_the_first_flush(tmp_path):
    from ssnas.tracking import RunReporter

    def full_disk():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    reporter = RunReporter(full_disk, "r1", tmp_path, hparams={})
    with pytest.raises(RuntimeError, match="^tracking failed: .*No space left on device$"):
        reporter.flush(timeout=5)  # at once, not after the timeout with nothing written
    with pytest.raises(RuntimeError, match="No space left on device"):
        reporter.close()


class RefusingRegistry:
    """The registry a worker sees when the registry's own disk fills as the run fails: it refuses the end."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def __getattr__(self, name: str):
        return getattr(self._registry, name)

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        raise RegistryError(f"{self._registry.path}: database or disk is full")


class ExitedExecutor:
    """A local executor whose one worker has exited with `code`."""

    name, prestarts, takes_slots = "local", False, True

    def __init__(self, pid: int, code: int) -> None:
        self.exited = WorkerStatus(alive=False, exit_code=code, pid=pid)

    def submit(self, run_id, slot, after=None):
        pass

    def status(self, run_id):
        return self.exited

    def adopt(self, run):
        return self.exited

    def wait(self, timeout):
        pass

    def cancel(self, run_id):
        pass


def test_a_worker_that_cannot_record_its_failure_exits_failed_and_the_scheduler_records_it(
        tmp_path, monkeypatch, capsys):
    import torch

    def full_disk(state, file):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    runs, run_id, _ = tiny_run(tmp_path)
    registry = Registry(runs / "registry.db", create=False)
    scheduler = Scheduler(registry, Engines({"local": ExitedExecutor(os.getpid(), WorkerExit.FAILED)}), [None], 1)
    scheduler.step()  # submitted: the worker is this process
    monkeypatch.setattr(torch, "save", full_disk)
    assert in_process(runs, run_id, RefusingRegistry(registry)) == WorkerExit.FAILED
    assert "could not be recorded: " in capsys.readouterr().err
    assert registry.get_run(run_id).status == "running"

    scheduler.step()
    ended = registry.get_run(run_id)
    assert ended.status == "failed"
    assert ended.error == "worker exited failed (code 1) without recording its end; see its log.txt"
    registry.close()


# -- elapsed time over attempts ----------------------------------------------------------------------------


def test_elapsed_time_sums_every_attempt_of_a_run(tmp_path):
    registry = Registry(tmp_path / "registry.db")
    run_id = registry.create_run(name="r", stage="search", config={})
    registry.start_run(run_id, pid=1, host="h", device="cpu")
    time.sleep(0.2)
    registry.finish_run(run_id, "killed", error="stopped")
    first = registry.get_run(run_id)
    queue_again(registry, run_id)
    assert elapsed_seconds(registry.get_run(run_id)) == pytest.approx(first.ended_at - first.started_at)
    registry.start_run(run_id, pid=2, host="h", device="cpu")
    running = registry.get_run(run_id)
    assert running.started_at > first.ended_at  # started_at is this attempt's
    assert elapsed_seconds(running, now=running.started_at + 5) == pytest.approx(first.worked_seconds + 5)
    time.sleep(0.2)
    registry.finish_run(run_id, "finished")
    done = registry.get_run(run_id)
    assert done.worked_seconds == pytest.approx((first.ended_at - first.started_at) + (done.ended_at - done.started_at))
    assert elapsed_seconds(done) == done.worked_seconds >= 0.4
    registry.close()


def test_a_lost_attempt_counts_until_its_last_heartbeat(tmp_path):
    registry = Registry(tmp_path / "registry.db")
    run_id = registry.create_run(name="r", stage="search", config={})
    registry.start_run(run_id, pid=2**22 + 1, host="h", device="cpu")
    registry.update_run(run_id, started_at=100.0, heartbeat_at=130.0)
    assert registry.reconcile(stale_after=0) == [run_id]
    assert registry.get_run(run_id).worked_seconds == 30.0
    registry.close()


def test_elapsed_time_of_a_registry_from_before_worked_seconds_is_the_last_attempts():
    legacy = Run(id="r1", name="r", stage="search", status="killed", created_at=0.0, started_at=10.0, ended_at=25.0)
    assert elapsed_seconds(legacy) == 15.0
    assert elapsed_seconds(legacy.with_changes(status="running", ended_at=None), now=40.0) == 30.0


def test_an_older_registry_gets_the_time_its_ended_runs_worked(tmp_path):
    path = tmp_path / "registry.db"
    with Registry(path) as registry:
        run_id = registry.create_run(name="r", stage="search", config={})
        registry.update_run(run_id, status="finished", started_at=10.0, ended_at=25.0)
    with contextlib.closing(sqlite3.connect(path)) as conn:  # back to schema 2
        conn.execute("ALTER TABLE runs DROP COLUMN worked_seconds")
        conn.execute("DELETE FROM migrations WHERE number = 3")
        conn.execute("PRAGMA user_version = 2")
        conn.commit()
    with Registry(path, readonly=True) as reader:  # a reader reads it as it is
        assert reader.get_run(run_id).worked_seconds is None and elapsed_seconds(reader.get_run(run_id)) == 15.0
    with Registry(path) as registry:
        assert registry.get_run(run_id).worked_seconds == 15.0


def test_the_reports_search_cost_is_every_attempt_of_the_search(tmp_path):
    from tests.test_report import add_chain, report_json

    runs = tmp_path / "runs"
    with Registry(runs / "registry.db") as registry:
        add_chain(registry, runs, "ssl", 1.0, 0, 0.7, top_ratios=(1.2,))
        [search] = registry.runs(stage="search")
        registry.update_run(search.id, started_at=1000.0, ended_at=1010.0, worked_seconds=25.0)  # resumed once
    [chain] = report_json(runs, "gpaper")["chains"]
    assert chain["search_seconds"] == 25.0
