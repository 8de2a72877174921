"""`--executor slurm`: settings, the head over TCP, adoption, and runs end to end through submitit's local
cluster (`--slurm cluster=local`: each job a process of this machine, run as SLURM would run it, its
registry calls and files relayed to the scheduler's head over TCP)."""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ssnas.cli import main
from ssnas.cluster.head import RegistryHead
from ssnas.cluster.link import Gone
from ssnas.cluster.slurm import SlurmOptions, parse_settings
from ssnas.cluster.tcp import HeadServer, RemoteHead, ask_head
from ssnas.errors import ClusterError
from ssnas.registry import Registry
from ssnas.scheduling.daemon import start_scheduler
from tests.e2e import runs_json, scheduler_pid, ssnas, tiny_recipe, wait_for

submitit = pytest.importorskip("submitit")


@pytest.fixture
def jobs(tmp_path, monkeypatch):
    """The `--slurm` settings of a test's runs: jobs on this machine, their folder and scratch under tmp_path;
    every job process left over is killed after the test (with its scheduler gone it would wait for the next)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    yield ("--executor", "slurm", "--slurm", "cluster=local", "--slurm", f"folder={tmp_path / 'jobs'}")
    kill_processes_under(tmp_path)


def kill_processes_under(folder: Path) -> None:
    """Every process whose command line names a path under `folder` (submitit's controllers and jobs)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(folder).encode() in cmdline.read_bytes() and int(cmdline.parent.name) != os.getpid():
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def registry_of(runs: Path) -> Registry:
    return Registry(runs / "registry.db", create=False)


def running_with_steps(runs: Path, run_id: str, steps: int):
    registry = registry_of(runs)

    def check():
        run = registry.get_run(run_id)
        return run if run.status == "running" and len(registry.metrics(run_id, key="loss")) >= steps else None
    return check


def ended(runs: Path, run_id: str, status: str):
    registry = registry_of(runs)
    return lambda: registry.get_run(run_id) if registry.get_run(run_id).status == status else None


# -- settings ---------------------------------------------------------------------------------------


def test_settings_are_checked_stored_and_merged():
    given = parse_settings(["partition=gpu", "time=1-2:30", "gpus=2", "mem=16G", "qos=high", "cluster=local"])
    assert (given.partition, given.time, given.gpus, given.mem) == ("gpu", 1590, 2, "16G")
    assert given.sbatch == {"qos": "high"} and given.cluster == "local"
    assert SlurmOptions.from_json(given.to_json()) == given and SlurmOptions.from_json("not json") == SlurmOptions()
    assert [parse_settings([f"time={t}"]).time for t in ("90", "1:30", "2:00:00", "1-0")] == [90, 2, 120, 1440]
    later = given.merged(parse_settings(["time=60", "constraint=a100"]))
    assert (later.partition, later.time, later.sbatch) == ("gpu", 60, {"qos": "high", "constraint": "a100"})
    for bad in ("time=0", "time=soon", "gpus=x", "cpus=0", "mem=lots", "cluster=aws", "a b=1", "partition"):
        with pytest.raises(ClusterError, match=f"--slurm {bad}: "):
            parse_settings([bad])


def stand_in(folder: Path, name: str, script: str) -> Path:
    """An executable `name` in `folder` (a stand-in for a SLURM command), which goes first on PATH."""
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(f"#!/bin/sh\n{script}\n")
    (folder / name).chmod(0o755)
    return folder


def test_a_run_asks_slurm_for_what_its_settings_say(tmp_path, monkeypatch):
    from submitit.slurm.slurm import _make_sbatch_string

    from ssnas.cluster.slurm_executor import job_parameters

    monkeypatch.setenv("PATH", f"{stand_in(tmp_path / 'bin', 'srun', 'exit 1')}:{os.environ['PATH']}")
    registry = Registry(tmp_path / "registry.db")
    run = registry.get_run(registry.create_run(name="r", stage="search", config={"run": {"device": "cuda"}}))
    executor = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="slurm")
    options = parse_settings(["partition=gpu", "time=8:00:00", "mem=32G", "account=lab", "qos=high", "cpus=4"])
    executor.update_parameters(**job_parameters(options, run))
    script = _make_sbatch_string(command="python -m x", folder=tmp_path / "jobs", **executor._executor.parameters)
    for line in ("--partition=gpu", "--time=480", "--mem=32G", "--account=lab", "--qos=high", "--cpus-per-task=4",
                 "--gpus-per-node=1", "--signal=USR2@90"):
        assert f"#SBATCH {line}\n" in script
    cpu_run = run.with_changes(config={"run": {"device": "auto"}})
    assert "gpus_per_node" not in job_parameters(SlurmOptions(), cpu_run)  # auto asks for none: say gpus=N


def test_what_cannot_go_to_slurm_is_one_line_and_no_run(tmp_path, monkeypatch):
    recipe = str(tiny_recipe(tmp_path))
    runs = ["--runs", str(tmp_path / "runs")]

    def run(*args):
        return CliRunner().invoke(main, [*runs, "run", recipe, *args])

    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    done = run("--executor", "slurm", "--slurm", "partition=gpu")
    assert done.exit_code == 2 and "Error: no sbatch on this machine: run ssnas on a login node" in done.output
    done = run("--executor", "slurm", "--gpus", "cpu")
    assert done.exit_code == 2 and "--gpus picks this machine's GPUs; SLURM gives each run its own" in done.output
    done = run("--slurm", "partition=gpu")
    assert done.exit_code == 2 and "--slurm settings are for SLURM runs (--executor slurm)" in done.output
    done = run("--executor", "slurm", "--slurm", "time=soon")
    assert done.exit_code == 2 and "Invalid value for '--slurm': expected a time" in done.output
    monkeypatch.setitem(sys.modules, "submitit", None)  # `import submitit` fails as if it were not installed
    done = run("--set", "run.executor=slurm")
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == ["Error: submitit is not installed: pip install -e '.[slurm]'"]
    assert not (tmp_path / "runs" / "registry.db").exists()


# -- the head over TCP ----------------------------------------------------------------------------------


def test_jobs_reach_the_head_over_tcp_with_its_secret_and_wait_for_the_next_one(tmp_path):
    registry = Registry(tmp_path / "runs" / "registry.db")
    run_id = registry.create_run(name="r", stage="search", config={})
    folder = tmp_path / "jobs"
    server = HeadServer(RegistryHead(str(tmp_path / "runs")))
    server.publish(folder)
    assert stat.S_IMODE((folder / "head.json").stat().st_mode) == 0o600
    head = RemoteHead(folder, patience=1.0)
    assert head("record", "get_run", run_id).status == "queued"
    head("write_file", run_id, "log.txt", b"hello\n", 0)
    assert (tmp_path / "runs" / run_id / "log.txt").read_bytes() == b"hello\n"
    with pytest.raises(ClusterError, match="not a registry call a worker may make"):
        head("record", "delete_run", run_id)
    with pytest.raises(ClusterError, match="not a call of the head"):
        head("runs_folder")
    ask_head(folder, "request_stop", run_id)  # what `ssnas kill` does from another shell
    assert head("take_stop", run_id) is True and head("take_stop", run_id) is False

    forged = json.loads((folder / "head.json").read_text()) | {"authkey": "00" * 32}
    (tmp_path / "forged").mkdir()
    (tmp_path / "forged" / "head.json").write_text(json.dumps(forged))
    with pytest.raises(ClusterError, match="no head at"):
        ask_head(tmp_path / "forged", "take_stop", run_id)

    server.close()  # the scheduler goes away: its jobs wait for the next one
    (folder / "head.json").unlink()
    successor = HeadServer(RegistryHead(str(tmp_path / "runs")))
    later = time.monotonic() + 0.5
    threading.Timer(0.5, successor.publish, args=(folder,)).start()
    assert head("record", "get_run", run_id).id == run_id and time.monotonic() >= later
    successor.close()
    started = time.monotonic()
    with pytest.raises(Gone):
        head("record", "get_run", run_id)
    assert time.monotonic() - started < 10


def test_a_new_scheduler_adopts_a_running_slurm_job_by_its_id(tmp_path, monkeypatch):
    """Through sacct (a stand-in here): alive while SLURM says RUNNING, ended (no result) once it does not."""
    from ssnas.cluster.slurm_executor import SlurmExecutor

    state = tmp_path / "state"
    state.write_text("RUNNING")
    sacct = stand_in(tmp_path / "bin", "sacct", f"echo 'JobID|State|NodeList'; echo \"4242|$(cat {state})|gpu03\"")
    monkeypatch.setenv("PATH", f"{sacct}:{os.environ['PATH']}")
    runs = tmp_path / "runs"
    registry = Registry(runs / "registry.db")
    options = SlurmOptions(folder=str(tmp_path / "jobs"))
    run_id = registry.create_run(name="r", stage="search", config={}, executor="slurm")
    registry.update_run(run_id, ray_options=options.to_json())
    registry.start_run(run_id, pid=77, host="gpu03", device="cuda:0", node="gpu03")
    folder = options.job_folder(runs)
    (folder / "runs").mkdir(parents=True)
    (folder / "runs" / f"{run_id}.json").write_text(json.dumps({"cluster": "slurm", "job_id": "4242"}))

    executor = SlurmExecutor(registry, runs)
    try:
        assert executor.adopt(registry.get_run(run_id)).alive and executor.status(run_id).alive
        assert json.loads((folder / "head.json").read_text())["port"] == executor.server.address[1]  # jobs come back
        state.write_text("NODE_FAIL")
        worker = wait_for(lambda: None if executor.status(run_id).alive else executor.status(run_id), timeout=20)
        assert worker.exit_code is None
        assert "job 4242 ended NODE_FAIL without a result" in registry.events(run_id)[-1]["message"]
    finally:
        executor.server.close()


# -- end to end, on submitit's local cluster ------------------------------------------------------------


def test_a_pipeline_runs_to_finished_as_slurm_jobs_with_rows_and_files_on_the_head(tmp_path, jobs):
    runs = tmp_path / "runs"
    recipe = tiny_recipe(tmp_path, stage="pipeline", epochs=1)
    ssnas(runs, "run", str(recipe), "--set", 'run.stages=["search", "finetune"]', "--set", "finetune.epochs=1",
          *jobs, check=True)
    rows = {row["stage"]: row for row in runs_json(runs)}
    assert sorted(rows) == ["finetune", "search"] and {r["status"] for r in rows.values()} == {"finished"}
    assert {r["executor"] for r in rows.values()} == {"slurm"} and rows["finetune"]["parent_id"] == rows["search"]["id"]
    registry = registry_of(runs)
    for stage, outputs in (("search", ["genotype.json"]), ("finetune", ["genotype.json", "results.json"])):
        folder = runs / rows[stage]["id"]
        for name in ["checkpoint.pt", "log.txt", *outputs]:
            assert (folder / name).is_file(), f"{stage}: {name} is not on the head"
        assert "[info] slurm: job " in (folder / "log.txt").read_text()
        [written] = {path.parent for path in (folder / "tb").rglob("events.out.tfevents.*[0-9]")}
        events = EventAccumulator(str(written), size_guidance={"scalars": 0})
        events.Reload()
        losses = registry.metrics(rows[stage]["id"], key="loss", split="train")
        assert losses and len(events.Scalars("loss/train")) == len(losses)
    folder = SlurmOptions(folder=str(tmp_path / "jobs")).job_folder(runs)
    recorded = {json.loads(path.read_text())["job_id"] for path in (folder / "runs").glob("*.json")}
    assert len(recorded) == 2
    # a job writes its result and removes its scratch folder after its run has reported the end to the head
    wait_for(lambda: all((folder / "jobs" / f"{job}_0_result.pkl").is_file() for job in recorded), timeout=30)
    wait_for(lambda: not list((tmp_path / "scratch").glob("ssnas-*")), timeout=30)  # each job's went with it


@pytest.mark.slow
def test_ssnas_kill_stops_a_slurm_run_resume_finishes_it_and_rerun_starts_it_anew(tmp_path, jobs):
    runs = tmp_path / "runs"
    ssnas(runs, "run", str(tiny_recipe(tmp_path, epochs=60)), *jobs, "--slurm", "time=30", "--detach", check=True)
    [run] = runs_json(runs)
    wait_for(running_with_steps(runs, run["id"], 10))
    assert "asked to stop" in ssnas(runs, "kill", run["id"][:8], check=True).stdout
    killed = wait_for(ended(runs, run["id"], "killed"), timeout=60)
    assert "stopped on request" in killed.error and (runs / run["id"] / "checkpoint.pt").is_file()
    registry = registry_of(runs)
    assert 10 <= len(registry.metrics(run["id"], key="loss")) < 180

    ssnas(runs, "resume", run["id"][:8], check=True)
    resumed = registry.get_run(run["id"])
    assert resumed.status == "finished" and resumed.executor == "slurm"
    assert SlurmOptions.from_json(resumed.ray_options).time == 30  # the settings it was submitted with
    assert [m["step"] for m in registry.metrics(run["id"], key="loss")] == list(range(1, 181))
    log = (runs / run["id"] / "log.txt").read_text()
    assert "stopped on request" in log and "resuming from step" in log and log.count("[info] slurm: job ") == 2

    ssnas(runs, "rerun", run["id"][:8], "--slurm", "time=45", check=True)
    [again] = [r for r in runs_json(runs) if r["id"] != run["id"]]
    assert again["status"] == "finished" and again["executor"] == "slurm"
    assert SlurmOptions.from_json(registry.get_run(again["id"]).ray_options).time == 45


@pytest.mark.slow
def test_a_stop_through_the_head_and_a_scheduler_restart_leave_slurm_runs_whole(tmp_path, jobs):
    """`request_stops` is how a stop reaches a job on another node; a killed scheduler's jobs wait for the next
    one and go on with it."""
    from ssnas.cluster.slurm_executor import request_stops

    runs = tmp_path / "runs"
    recipe = str(tiny_recipe(tmp_path, epochs=60))
    ssnas(runs, "run", recipe, *jobs, "--detach", check=True)
    ssnas(runs, "run", recipe, *jobs, "--detach", check=True)
    stopped, survivor = [registry_of(runs).get_run(r["id"]) for r in runs_json(runs)]
    wait_for(running_with_steps(runs, stopped.id, 5))
    wait_for(running_with_steps(runs, survivor.id, 5))
    request_stops(runs, [stopped])
    assert "stopped on request" in wait_for(ended(runs, stopped.id, "killed"), timeout=60).error

    os.kill(scheduler_pid(runs), signal.SIGKILL)  # the head goes with it; the survivor's job waits
    time.sleep(3)
    assert registry_of(runs).get_run(survivor.id).status == "running"
    start_scheduler(runs)  # as the next `ssnas` command would
    finished = wait_for(ended(runs, survivor.id, "finished"), timeout=240)
    assert [m["step"] for m in registry_of(runs).metrics(survivor.id, key="loss")] == list(range(1, 181))
    assert (runs / survivor.id / "genotype.json").is_file() and finished.node
