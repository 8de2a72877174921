"""One scheduler per runs folder, end to end: real `ssnas` processes, a real scheduler process, real workers.

What a scheduler that dies leaves behind is adopted by the next one; two submissions share one
max-parallel; a foreground launch's Ctrl-C kills its runs or detaches from them; `ssnas queue` changes
the running scheduler's settings and takes queued runs off; an idle scheduler exits on its own.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ssnas.exit_status import OK, interrupted
from ssnas.registry import Registry, pid_alive, this_host
from ssnas.scheduling.state import read_state, scheduler_alive
from tests.e2e import all_ended, running_with_steps, scheduler_pid, ssnas, tiny_recipe, wait_for
from tests.e2e import registry_rows as rows


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"


def statuses(runs):
    return {r.id: r.status for r in rows(runs)}


def kill_scheduler(runs):
    pid = scheduler_pid(runs)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not scheduler_alive(runs), timeout=10)


def log_of(runs, run_id):
    return (runs / run_id / "log.txt").read_text()


def test_a_killed_scheduler_orphans_nothing_the_next_queue_adopts_its_runs(tmp_path, runs):
    recipe = tiny_recipe(tmp_path, stage="pipeline", epochs=300)
    ssnas(runs, "run", str(recipe), "--detach", check=True)
    by_stage = {r.stage: r.id for r in rows(runs)}
    search, pretrain = by_stage["search"], by_stage["pretrain"]
    wait_for(running_with_steps(runs, search, 3))
    wait_for(lambda: (runs / pretrain / "log.txt").exists() and "waiting for run" in log_of(runs, pretrain))

    kill_scheduler(runs)  # the search's worker runs on; the prestarted pretrain's worker sees its scheduler go
    wait_for(lambda: "the scheduler that prestarted this worker is gone" in log_of(runs, pretrain), timeout=30)
    assert statuses(runs)[pretrain] == "queued" and statuses(runs)[search] == "running"

    shown = ssnas(runs, "queue", check=True).stdout  # the next scheduler: it adopts the search and the queue
    assert "(started now)" in shown and "pretrain" in shown
    ended = wait_for(all_ended(runs, 3), timeout=300)
    assert {r.status for r in ended} == {"finished"}
    assert log_of(runs, pretrain).count("not started") == 1  # the orphaned worker left it, one worker ran it
    registry = Registry(runs / "registry.db", create=False, readonly=True)
    steps = [m["step"] for m in registry.metrics(pretrain, key="loss")]
    assert steps and len(steps) == len(set(steps))
    assert "adopted" in (runs / "scheduler.log").read_text()


@pytest.mark.slow  # about 50 s; the test above covers adoption by the next scheduler in the default run
def test_the_next_run_adopts_what_a_killed_scheduler_left_queued(tmp_path, runs):
    long = tiny_recipe(tmp_path, epochs=150, extra="\n[sweep]\nseed = [0, 1]\n")
    ssnas(runs, "run", str(long), "--detach", "--max-parallel", "1", check=True)
    first, second = [r.id for r in rows(runs)]
    wait_for(running_with_steps(runs, first, 3))
    kill_scheduler(runs)
    time.sleep(1.0)
    assert statuses(runs)[second] == "queued"  # nobody starts it

    (tmp_path / "short").mkdir()
    short = tiny_recipe(tmp_path / "short", epochs=1)
    ssnas(runs, "run", str(short), check=True, timeout=600)  # follows its own run to its end
    ended = wait_for(all_ended(runs, 3), timeout=300)
    assert {r.status for r in ended} == {"finished"}
    intervals = sorted((r.started_at, r.ended_at) for r in ended)
    assert all(a[1] <= b[0] for a, b in zip(intervals, intervals[1:], strict=False))  # max-parallel 1 kept


def test_two_detached_submissions_share_one_max_parallel_and_the_scheduler_then_exits(tmp_path, runs):
    recipe = tiny_recipe(tmp_path, epochs=3)
    first = ssnas(runs, "run", str(recipe), "--detach", "--max-parallel", "1", "--set", "sweep.seed=[0, 1]",
                  check=True).stdout
    second = ssnas(runs, "run", str(recipe), "--detach", check=True).stdout
    assert "follow with: ssnas --runs" in first and f"ssnas --runs {runs} runs" in second
    pid = scheduler_pid(runs)
    ended = wait_for(all_ended(runs, 3), timeout=300)
    assert {r.status for r in ended} == {"finished"}
    intervals = sorted((r.started_at, r.ended_at) for r in ended)
    assert all(a[1] <= b[0] for a, b in zip(intervals, intervals[1:], strict=False))  # one worker at a time
    assert read_state(runs).settings.max_parallel == 1  # kept: the second submission gave none
    wait_for(lambda: not scheduler_alive(runs), timeout=15)  # idle: it exits on its own
    wait_for(lambda: not pid_alive(pid), timeout=5)
    log = (runs / "scheduler.log").read_text()
    assert log.count("scheduler idle: exiting") >= 1 and log.count("started on the CPU") == 3


def foreground(runs, *args):
    return subprocess.Popen([sys.executable, "-m", "ssnas.cli", "--runs", str(runs), "run", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_ctrl_c_of_a_foreground_run_kills_its_runs_and_leaves_none_queued(tmp_path, runs):
    recipe = tiny_recipe(tmp_path, epochs=150, extra="\n[sweep]\nseed = [0, 1]\n")
    cli = foreground(runs, str(recipe), "--max-parallel", "1")
    wait_for(lambda: len(rows(runs)) == 2)
    first = rows(runs)[0].id
    wait_for(running_with_steps(runs, first, 3))
    cli.send_signal(signal.SIGINT)
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == interrupted(signal.SIGINT), err
    assert err.strip().splitlines()[-1].startswith("interrupted: 2 run(s) killed; ssnas resume RUN continues one")
    assert set(statuses(runs).values()) == {"killed"}
    assert (runs / first / "checkpoint.pt").exists()  # the running one checkpointed


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, OK), (signal.SIGHUP, interrupted(signal.SIGHUP))])
def test_a_foreground_run_that_detaches_leaves_its_runs_going(tmp_path, runs, signum, code):
    recipe = tiny_recipe(tmp_path, epochs=20)
    cli = foreground(runs, str(recipe), "--on-interrupt", "detach")
    wait_for(lambda: rows(runs))
    [run] = rows(runs)
    wait_for(running_with_steps(runs, run.id, 2))
    cli.send_signal(signum)
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == code
    if signum == signal.SIGINT:
        assert f"detached: the runs go on; follow with: ssnas --runs {runs} runs" in err
    [done] = wait_for(all_ended(runs, 1), timeout=300)
    assert done.status == "finished"


def test_queue_max_parallel_reaches_the_running_scheduler(tmp_path, runs):
    recipe = tiny_recipe(tmp_path, epochs=150, extra="\n[sweep]\nseed = [0, 1, 2]\n")
    ssnas(runs, "run", str(recipe), "--detach", "--max-parallel", "1", check=True)
    ids = [r.id for r in rows(runs)]
    wait_for(running_with_steps(runs, ids[0], 1))
    shown = json.loads(ssnas(runs, "queue", "--json", check=True).stdout)
    assert shown["scheduler"]["max_parallel"] == 1
    assert [(r["id"], r["status"], r["waits"]) for r in shown["runs"]] == [
        (ids[0], "running", None), (ids[1], "queued", "no free slot (1 of 1 busy)"),
        (ids[2], "queued", "no free slot (1 of 1 busy)")]

    ssnas(runs, "queue", "--max-parallel", "2", check=True)
    wait_for(lambda: sum(s == "running" for s in statuses(runs).values()) == 2, timeout=60)
    shown = json.loads(ssnas(runs, "queue", "--json", check=True).stdout)
    assert shown["scheduler"]["max_parallel"] == 2 and shown["settings"]["max_parallel"] == 2
    assert "cancelled" in ssnas(runs, "queue", "--clear", check=True).stdout
    assert statuses(runs)[ids[2]] == "killed"
    ssnas(runs, "kill", *ids[:2], check=True)
    wait_for(all_ended(runs, 3), timeout=120)


def test_queue_cancels_queued_runs_and_says_why_the_others_wait(tmp_path):
    from click.testing import CliRunner

    from ssnas.cli import main

    registry = Registry(tmp_path / "registry.db")
    parent = registry.create_run(name="p", stage="search", config={})
    registry.start_run(parent, pid=os.getpid(), host=this_host(), device="cpu")  # alive, and no worker to adopt
    a, b = (registry.create_run(name=n, stage="pretrain", config={}, parent_id=parent) for n in "ab")

    def queue(*args):
        done = CliRunner().invoke(main, ["--runs", str(tmp_path), "queue", *args])
        assert done.exit_code == 0, done.output
        return done.output

    shown = queue("--cancel", a[:6])
    assert f"{a[:8]} cancelled" in shown and f"parent {parent[:8]} running" in shown
    assert registry.get_run(a).status == "killed" and registry.get_run(a).error == "cancelled before it started"
    assert f"{parent[:8]} is running, not queued" in queue("--cancel", parent)
    queue("--clear")
    assert registry.get_run(b).status == "killed"
    registry.finish_run(parent, "finished")
    assert CliRunner().invoke(main, ["--runs", str(tmp_path), "queue", "x"]).exit_code == 2  # ids go with --cancel
