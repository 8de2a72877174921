"""Warm workers (issue 15): runs forked by the scheduler's fork server, end to end with real processes.

A pipeline through forked workers trains exactly what fresh interpreters train; a worker that crashes
fails its run only; `ssnas kill` of a forked worker checkpoints and ends it `killed`; a scheduler that
dies leaves its forked workers running and the next one adopts them (and no process that merely has the
pid); without a fork server (switched off, or gone) workers start the plain way.
"""

import json
import os
import re
import signal
from pathlib import Path

import pytest

from ssnas.registry import Registry, pid_alive
from ssnas.scheduling.local import process_name, worker_name, worker_of
from ssnas.scheduling.state import scheduler_alive
from ssnas.scheduling.warm import WARM_ENV, warm_setting
from tests.e2e import all_ended, running_with_steps, scheduler_pid, ssnas, tiny_recipe, wait_for
from tests.e2e import registry_rows as rows


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"


def scheduler_log(runs):
    path = runs / "scheduler.log"
    return path.read_text() if path.exists() else ""


def forked(runs):
    """Run id -> pid of each worker a fork server forked, from the scheduler's log."""
    return dict(re.findall(r"(\w+): worker (\d+) forked warm", scheduler_log(runs)))


def outputs(runs):
    """Per stage: its genotype, its test F1 (fine-tune) and its loss curve."""
    found = {}
    with Registry(runs / "registry.db", create=False, readonly=True) as registry:
        for run in registry.runs():
            folder = runs / run.id
            results = folder / "results.json"
            found[run.stage] = ((folder / "genotype.json").read_text(),
                                json.loads(results.read_text())["test"] if results.exists() else None,
                                [m["value"] for m in registry.metrics(run.id, key="loss")])
    return found


def test_a_pipeline_through_warm_workers_trains_what_fresh_interpreters_train(tmp_path, monkeypatch):
    recipe = tiny_recipe(tmp_path, stage="pipeline", epochs=2)
    warm, cold = tmp_path / "warm", tmp_path / "cold"
    ssnas(warm, "run", str(recipe), check=True)
    monkeypatch.setenv(WARM_ENV, "0")
    ssnas(cold, "run", str(recipe), check=True)

    assert set(forked(warm)) == {r.id for r in rows(warm)}  # every stage forked (its first run waits for the server)
    assert not forked(cold) and "fork server" not in scheduler_log(cold)
    assert {r.status for r in rows(warm)} == {"finished"}
    assert outputs(warm) == outputs(cold)
    assert set(outputs(warm)) == {"search", "pretrain", "finetune"}


def test_a_crashed_warm_worker_fails_its_run_only_and_the_next_run_starts_warm(tmp_path, runs):
    recipe = tiny_recipe(tmp_path, epochs=300, extra="\n[sweep]\nseed = [0, 1]\n")
    ssnas(runs, "run", str(recipe), "--detach", "--max-parallel", "1", "--set", "search.epochs=2",
          "--set", "sweep.seed=[0]", check=True)
    ssnas(runs, "run", str(recipe), "--detach", check=True)  # two more: seeds 0 and 1, 300 epochs
    quick, crashing, last = [r.id for r in rows(runs)]
    wait_for(running_with_steps(runs, crashing, 3), timeout=300)
    pid = int(forked(runs)[crashing])
    assert process_name(pid) == worker_name(crashing)
    os.kill(pid, signal.SIGKILL)  # a crash: no end recorded, exit code -9 from its fork server
    wait_for(running_with_steps(runs, last, 1), timeout=120)
    ssnas(runs, "kill", last[:8], check=True)
    ended = {r.id: r for r in wait_for(all_ended(runs, 3), timeout=120)}
    assert ended[quick].status == "finished"
    assert ended[crashing].status == "lost" and "without a final status" in ended[crashing].error
    assert ended[last].status == "killed" and last in forked(runs)  # forked by the same server
    assert scheduler_log(runs).count("ready: warm workers") == 1


def test_kill_of_a_warm_worker_checkpoints_and_ends_it_killed(tmp_path, runs):
    ssnas(runs, "run", str(tiny_recipe(tmp_path, epochs=300)), "--detach", check=True)
    [run] = rows(runs)
    wait_for(running_with_steps(runs, run.id, 5), timeout=300)
    assert run.id in forked(runs)
    assert "asked to stop" in ssnas(runs, "kill", run.id[:8], check=True).stdout
    [ended] = wait_for(all_ended(runs, 1), timeout=120)
    assert ended.status == "killed" and "stopped on request" in ended.error
    assert (runs / run.id / "checkpoint.pt").exists()
    wait_for(lambda: f"{run.id} killed" in scheduler_log(runs), timeout=30)  # settled by the scheduler


def test_a_new_scheduler_adopts_a_warm_worker_of_a_dead_one_and_no_reused_pid(tmp_path, runs):
    recipe = tiny_recipe(tmp_path, epochs=300, extra="\n[sweep]\nseed = [0, 1]\n")
    ssnas(runs, "run", str(recipe), "--detach", "--max-parallel", "1", check=True)
    run, queued = rows(runs)
    running = wait_for(running_with_steps(runs, run.id, 3), timeout=300)
    server = int(re.search(r"fork server (\d+) on the CPU ready", scheduler_log(runs)).group(1))
    assert worker_of(running.pid, run.id)
    assert not worker_of(running.pid, "0123456789ab")  # the pid of this worker is no worker of another run
    assert not worker_of(server, run.id) and not worker_of(os.getpid(), run.id)

    os.kill(scheduler_pid(runs), signal.SIGKILL)
    wait_for(lambda: not scheduler_alive(runs), timeout=10)
    wait_for(lambda: not pid_alive(server), timeout=10)  # the fork server ends with its scheduler
    assert pid_alive(running.pid)  # its worker runs on

    ssnas(runs, "queue", check=True)  # the next scheduler adopts it, and holds the queued run behind it
    wait_for(lambda: f"{run.id} adopted: its worker {running.pid} runs on" in scheduler_log(runs), timeout=30)
    assert {r.id: r.status for r in rows(runs)}[queued.id] == "queued"  # max-parallel 1: the adopted one counts
    ssnas(runs, "kill", run.id[:8], queued.id[:8], check=True)
    ended = wait_for(all_ended(runs, 2), timeout=120)
    assert {r.status for r in ended} == {"killed"}


def test_a_fork_server_that_is_gone_leaves_plain_workers(tmp_path, runs):
    recipe = tiny_recipe(tmp_path, epochs=300, extra="\n[sweep]\nseed = [0, 1]\n")
    ssnas(runs, "run", str(recipe), "--detach", "--max-parallel", "1", check=True)
    first, second = [r.id for r in rows(runs)]
    wait_for(running_with_steps(runs, first, 3), timeout=300)
    server = int(re.search(r"fork server (\d+) on the CPU ready", scheduler_log(runs)).group(1))
    os.kill(server, signal.SIGKILL)
    ssnas(runs, "kill", first[:8], check=True)  # its worker runs on without the server and ends killed
    second_run = wait_for(running_with_steps(runs, second, 1), timeout=120)
    plain = b"ssnas.worker" in (Path("/proc") / str(second_run.pid) / "cmdline").read_bytes()
    ssnas(runs, "kill", second[:8], check=True)
    ended = {r.id: r for r in wait_for(all_ended(runs, 2), timeout=120)}
    assert ended[first].status == "killed" and ended[second].status == "killed"
    log = scheduler_log(runs)
    assert "fork server on the CPU exited with code -9: plain workers instead" in log
    # a plain worker, unless a minute had passed since the server started (then one is started again)
    assert plain != (second in forked(runs))
    assert plain or log.count("ready: warm workers") == 2


def test_the_setting_turns_warm_workers_off():
    assert warm_setting({}) == "cpu"
    assert warm_setting({WARM_ENV: "1"}) == "cpu"
    assert warm_setting({WARM_ENV: "all"}) == "all"
    assert all(warm_setting({WARM_ENV: off}) == "off" for off in ("0", "off", "false", "no"))


def test_a_forked_workers_exit_code_reaches_the_scheduler_through_its_fork_server(tmp_path, runs):
    """A prestarted worker killed while it waits: its run is still queued, so only the exit code, which the
    fork server reaps and reports, can say what happened."""
    ssnas(runs, "run", str(tiny_recipe(tmp_path, stage="pipeline", epochs=300)), "--detach", check=True)
    by_stage = {r.stage: r.id for r in rows(runs)}
    search, pretrain = by_stage["search"], by_stage["pretrain"]
    wait_for(running_with_steps(runs, search, 1), timeout=300)
    wait_for(lambda: "waiting for run" in (runs / pretrain / "log.txt").read_text(), timeout=60)
    os.kill(int(forked(runs)[pretrain]), signal.SIGKILL)
    ended = wait_for(lambda: {r.id: r for r in rows(runs)}[pretrain].terminal and {r.id: r for r in rows(runs)},
                     timeout=60)
    assert ended[pretrain].status == "failed"
    assert ended[pretrain].error == "worker exited (code -9) before it started; see its log.txt"
    ssnas(runs, "kill", search[:8], check=True)
    assert {r.status for r in wait_for(all_ended(runs, 3), timeout=120)} == {"killed", "failed"}
