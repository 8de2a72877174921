"""`--executor ray` end to end, on a real Ray cluster: a head and a second node started on this machine
(`ray start` twice, each with its own resources) once for the module, and real `ssnas` subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ssnas.cli import main
from ssnas.registry import Registry
from tests.e2e import runs_json, ssnas, tiny_recipe, wait_for

STAGE_FILES = {"search": ["genotype.json"], "pretrain": ["genotype.json", "pretrained.pt"],
               "finetune": ["genotype.json", "results.json"]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_tree(root: int) -> list[int]:
    """`root` and every process below it (Ray gives its workers process groups of their own)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        tree.append(pid)
        frontier += parents.get(pid, [])
    return tree


@dataclass
class Cluster:
    address: str
    nodes: dict[str, subprocess.Popen]  # node name -> its `ray start --block`
    logs: Path

    def start(self, name: str, *args: str) -> None:
        """One node, in the foreground of its own `ray start` (so that its processes can be found)."""
        log = self.logs / f"{name}.log"
        scratch = self.logs / "scratch"  # the runs' scratch folders: a dead node leaves its own behind
        scratch.mkdir(exist_ok=True)
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1", "TMPDIR": str(scratch)}
        with open(log, "wb") as out:
            self.nodes[name] = subprocess.Popen(
                [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--node-name", name,
                 "--disable-usage-stats", "--dashboard-agent-listen-port", str(free_port()), *args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        wait_for(lambda: "Ray runtime started" in log.read_text(errors="replace")
                 or self.nodes[name].poll() is not None, timeout=90)
        assert self.nodes[name].poll() is None, log.read_text(errors="replace")[-3000:]

    def kill(self, name: str) -> None:
        """The node dies: every process of it at once."""
        node = self.nodes.pop(name)
        for pid in process_tree(node.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    temp = Path(tempfile.mkdtemp(prefix="ssnas-ray-"))  # short: Ray's socket paths live under it
    port = free_port()
    nodes = Cluster(f"127.0.0.1:{port}", {}, temp)
    started = time.monotonic()
    try:
        nodes.start("head", "--head", "--port", str(port), "--num-cpus", "2", "--resources", '{"head": 2}',
                    "--temp-dir", str(temp), "--include-dashboard=false", "--dashboard-port", str(free_port()),
                    "--ray-client-server-port", str(free_port()))
        nodes.start("second", "--address", nodes.address, "--num-cpus", "1", "--resources", '{"second": 1}')
        print(f"ray cluster up in {time.monotonic() - started:.1f} s")
        yield nodes
    finally:
        for name in list(nodes.nodes):
            nodes.kill(name)
        shutil.rmtree(temp, ignore_errors=True)


def test_without_ray_installed_the_executor_is_one_line_and_no_run(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    recipe = tiny_recipe(tmp_path)
    for args in (["--executor", "ray"], ["--set", "run.executor=ray"]):
        done = CliRunner().invoke(main, ["--runs", str(tmp_path / "runs"), "run", str(recipe), *args])
        assert done.exit_code == 2
        assert done.output.strip().splitlines() == ["Error: Ray is not installed: pip install -e '.[ray]'"]
    assert not (tmp_path / "runs" / "registry.db").exists()


def test_runs_of_two_executors_are_not_started_together(tmp_path):
    registry = Registry(tmp_path / "registry.db")
    for executor in ("local", "ray"):
        registry.finish_run(registry.create_run(name=executor, stage="search", config={}, executor=executor), "failed")
    done = CliRunner().invoke(main, ["--runs", str(tmp_path), "rerun", "--failed"])
    assert done.exit_code == 2 and "different executors (local, ray): start them separately" in done.output
    assert len(registry.runs()) == 2  # nothing queued


def test_gpus_are_rays_to_give_and_an_unreachable_cluster_is_one_line(tmp_path, monkeypatch):
    from ssnas.scheduling import state

    monkeypatch.setattr(state, "detect_gpus", lambda: ["0"])  # a GPU this machine has: Ray still refuses it
    recipe = str(tiny_recipe(tmp_path))
    runs = ["--runs", str(tmp_path / "runs")]
    done = CliRunner().invoke(main, [*runs, "run", recipe, "--executor", "ray", "--gpus", "0"])
    assert done.exit_code == 2 and "--gpus picks this machine's GPUs" in done.output
    pytest.importorskip("ray")
    nowhere = f"127.0.0.1:{free_port()}"
    done = CliRunner().invoke(main, [*runs, "run", recipe, "--executor", "ray", "--address", nowhere])
    assert done.exit_code == 2 and done.output.startswith("Error: no Ray cluster at 127.0.0.1:")
    assert Registry(tmp_path / "runs" / "registry.db").runs() == []


def test_the_dashboard_stops_a_ray_run_through_its_cluster_not_by_pid(tmp_path):
    from tui.data import kill_run

    pytest.importorskip("ray")
    registry = Registry(tmp_path / "registry.db")
    run_id = registry.create_run(name="r", stage="search", config={}, executor="ray")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        registry.start_run(run_id, pid=bystander.pid, host="gpu-node", device="cpu", node="gpu-node")
        (tmp_path / "ray.json").write_text(json.dumps({"address": f"127.0.0.1:{free_port()}"}))
        result = kill_run(tmp_path, run_id)
        assert not result.ok and result.message.startswith("no Ray cluster at 127.0.0.1:")
        assert bystander.poll() is None and registry.get_run(run_id)["status"] == "running"
    finally:
        bystander.kill()
        bystander.wait()


def by_stage_and_seed(rows: list[dict]) -> dict[tuple[str, int], dict]:
    return {(row["stage"], row["seed"]): row for row in rows}


def test_a_sweep_on_ray_lands_on_the_head_and_matches_local_runs(cluster, tmp_path):
    recipe = tiny_recipe(tmp_path, stage="pipeline", extra="\n[sweep]\nseed = [0, 1]\n")
    runs, local = tmp_path / "runs", tmp_path / "local"
    ssnas(runs, "run", str(recipe), "--executor", "ray", "--address", cluster.address, check=True)
    ssnas(local, "run", str(recipe), "--set", "sweep.seed=[0]", check=True)
    rows = by_stage_and_seed(runs_json(runs))
    assert len(rows) == 6 and {r["status"] for r in rows.values()} == {"finished"}
    assert {r["executor"] for r in rows.values()} == {"ray"}
    assert {r["node"] for r in rows.values()} <= {"head", "second"}
    registry, reference = Registry(runs / "registry.db"), Registry(local / "registry.db")
    for (stage, seed), row in rows.items():
        folder = runs / row["id"]
        for name in ["checkpoint.pt", "log.txt", *STAGE_FILES[stage]]:
            assert (folder / name).is_file(), f"{stage} seed {seed}: {name} is not on the head"
        [tb] = (folder / "tb").iterdir()  # tb/NAME-SHORTID
        events = EventAccumulator(str(tb), size_guidance={"scalars": 0})
        events.Reload()
        losses = registry.metrics(row["id"], key="loss", split="train")
        assert losses and [(e.step, e.value) for e in events.Scalars("loss/train")] == [
            (m["step"], pytest.approx(m["value"], rel=1e-6)) for m in losses]
    for (stage, _), twin in by_stage_and_seed(runs_json(local)).items():
        ray_run = rows[(stage, 0)]
        assert [(m["key"], m["split"], m["step"], m["value"]) for m in registry.metrics(ray_run["id"])] == [
            (m["key"], m["split"], m["step"], m["value"]) for m in reference.metrics(twin["id"])], stage
        for name in STAGE_FILES[stage]:
            if name.endswith(".json"):
                ours, theirs = (json.loads((root / run_id / name).read_text()) for root, run_id in
                                ((runs, ray_run["id"]), (local, twin["id"])))
                assert {**ours, "seconds": 0} == {**theirs, "seconds": 0}, f"{stage}: {name}"


def running_with_steps(runs: Path, run_id: str, steps: int):
    registry = Registry(runs / "registry.db", create=False)

    def check():
        run = registry.get_run(run_id)
        return run if run["status"] == "running" and len(registry.metrics(run_id, key="loss")) >= steps else None
    return check


def ended(runs: Path, run_id: str, status: str):
    registry = Registry(runs / "registry.db", create=False)
    return lambda: registry.get_run(run_id) if registry.get_run(run_id)["status"] == status else None


def test_ssnas_kill_stops_a_ray_run_and_resume_finishes_it(cluster, tmp_path):
    runs = tmp_path / "runs"
    ssnas(runs, "run", str(tiny_recipe(tmp_path, epochs=150)), "--executor", "ray", "--address", cluster.address,
          "--detach", check=True)
    [run] = runs_json(runs)
    wait_for(running_with_steps(runs, run["id"], 10))
    assert "asked to stop" in ssnas(runs, "kill", run["id"][:8], check=True).stdout  # the cluster: from runs/ray.json
    killed = wait_for(ended(runs, run["id"], "killed"), timeout=60)
    assert "stopped on request" in killed["error"] and (runs / run["id"] / "checkpoint.pt").is_file()
    registry = Registry(runs / "registry.db")
    assert 10 <= len(registry.metrics(run["id"], key="loss")) < 450

    ssnas(runs, "resume", run["id"][:8], check=True)
    resumed = registry.get_run(run["id"])
    assert resumed["status"] == "finished" and resumed["executor"] == "ray"
    assert [m["step"] for m in registry.metrics(run["id"], key="loss")] == list(range(1, 451))
    log = (runs / run["id"] / "log.txt").read_text()
    assert "stopped on request" in log and "resuming from step" in log  # one log over both attempts


@pytest.mark.slow  # about 40 s: it starts and kills a second node
def test_a_dead_node_loses_only_its_run_and_rerun_failed_finishes_it(cluster, tmp_path):
    runs = tmp_path / "runs"
    recipe = str(tiny_recipe(tmp_path, epochs=100))
    ray_args = ("--executor", "ray", "--address", cluster.address, "--detach")
    ssnas(runs, "run", recipe, "--set", "search.epochs=20", *ray_args, "--ray-resource", "head=1", check=True)
    [survivor] = runs_json(runs)
    ssnas(runs, "run", recipe, *ray_args, "--ray-resource", "second=1", check=True)
    doomed = next(r for r in runs_json(runs) if r["id"] != survivor["id"])
    assert wait_for(running_with_steps(runs, doomed["id"], 6))["node"] == "second"  # a checkpoint shipped

    cluster.kill("second")
    lost = wait_for(ended(runs, doomed["id"], "lost"), timeout=60)
    assert lost["ended_at"] is not None and (runs / doomed["id"] / "checkpoint.pt").is_file()  # shipped as it went
    assert wait_for(ended(runs, survivor["id"], "finished"), timeout=120)["node"] == "head"

    done = ssnas(runs, "rerun", "--failed", check=True)
    assert "1 run(s) queued again" in done.stdout
    rows = runs_json(runs)
    assert sorted(r["status"] for r in rows) == ["finished", "finished", "lost"]
    [rerun] = [r for r in rows if f"rerun-of:{doomed['id'][:8]}" in r["tags"]]
    assert rerun["status"] == "finished" and rerun["executor"] == "ray" and rerun["node"] == "head"
