"""`ssnas run` end to end: real worker processes, a real SQLite registry, real TensorBoard files."""

import json
import os
import signal

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ssnas.exit_status import NOT_DONE
from ssnas.registry import Registry
from tests.e2e import RECIPES, runs_json, ssnas, tiny_recipe, wait_for


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"


def test_a_search_run_fills_registry_and_tensorboard_alike(tmp_path, runs):
    done = ssnas(runs, "run", str(tiny_recipe(tmp_path)), check=True)
    assert "finished" in done.stdout
    [run] = runs_json(runs)
    assert run["status"] == "finished" and run["stage"] == "search" and run["objective"] == "ssl"
    registry = Registry(runs / "registry.db", create=False)
    full = registry.get_run(run["id"])
    assert full["config"]["search"]["epochs"] == 2 and full["versions"]["torch"] and full["pid"]
    losses = registry.metrics(run["id"], key="loss", split="train")
    assert len(losses) == 2 * 3  # 2 epochs of 3 steps (96 training rows per half, batch 32)
    tb = runs / run["id"] / "tb" / f"tiny-{run['id'][:8]}"  # TensorBoard names the run by its folder
    events = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    events.Reload()
    tb_losses = [(e.step, e.value) for e in events.Scalars("loss/train")]
    assert tb_losses == [(row["step"], pytest.approx(row["value"], rel=1e-6)) for row in losses]
    tb_arch = events.Scalars("arch/step_op/cell0/step0/sum")
    db_arch = [r for r in registry.arch_weights(run["id"]) if r["kind"] == "step_op" and r["cell"] == 0
               and r["choice"] == "sum"]
    assert [pytest.approx(r["weight"], rel=1e-6) for r in db_arch] == [e.value for e in tb_arch]
    assert len(registry.genotypes(run["id"])) == 2  # one per epoch
    # hyperparameters once, in the run's own folder (not a sub-run as add_hparams would make)
    assert set(events.PluginTagToContent("hparams")) == {"_hparams_/session_start_info", "_hparams_/session_end_info"}
    assert [p.name for p in (runs / run["id"] / "tb").iterdir()] == [tb.name]
    assert [p.name for p in tb.iterdir() if p.is_dir()] == []
    assert (runs / run["id"] / "genotype.json").exists() and (runs / run["id"] / "checkpoint.pt").exists()
    assert "checkpoint after epoch 1" in (runs / run["id"] / "log.txt").read_text()


def test_a_pipeline_links_its_stages_and_diffs_against_the_baseline(tmp_path, runs):
    ssnas(runs, "run", str(tiny_recipe(tmp_path, stage="pipeline")), check=True)
    by_stage = {r["stage"]: r for r in runs_json(runs)}
    assert set(by_stage) == {"search", "pretrain", "finetune"}
    assert by_stage["search"]["parent_id"] is None
    assert by_stage["pretrain"]["parent_id"] == by_stage["search"]["id"]
    assert by_stage["finetune"]["parent_id"] == by_stage["pretrain"]["id"]
    assert len({r["group_id"] for r in by_stage.values()}) == 1
    assert all(r["status"] == "finished" for r in by_stage.values())
    # pretrain got ready while the search ran (whether finetune could too depends on timing)
    log = (runs / by_stage["pretrain"]["id"] / "log.txt").read_text()
    assert f"waiting for run {by_stage['search']['id']}" in log
    searched = json.loads((runs / by_stage["search"]["id"] / "genotype.json").read_text())
    trained = json.loads((runs / by_stage["finetune"]["id"] / "genotype.json").read_text())
    assert searched == trained
    results = json.loads((runs / by_stage["finetune"]["id"] / "results.json").read_text())
    assert results["pretrained"] is True and 0 <= results["test"]["weighted"] <= 1
    assert by_stage["finetune"]["test_f1"] == pytest.approx(results["test"]["weighted"])
    diff = ssnas(runs, "diff", by_stage["search"]["id"][:6], "--baseline", "bmnas-mmimdb", check=True).stdout
    assert "similarity" in diff


def test_eager_runs_the_plain_path_and_says_so_in_the_config(tmp_path, runs):
    ssnas(runs, "run", str(tiny_recipe(tmp_path)), "--eager", check=True)
    [run] = runs_json(runs)
    config = Registry(runs / "registry.db", create=False).get_run(run["id"])["config"]
    assert run["status"] == "finished" and config["run"]["eager"] is True


def test_a_sweep_makes_sibling_runs_in_one_group_four_at_once(tmp_path, runs):
    recipe = tiny_recipe(tmp_path, extra='\n[sweep]\nlabel_ratio = [0.1, 1.0]\nseed = [0, 1, 2, 3]\n')
    ssnas(runs, "run", str(recipe), "--max-parallel", "4", check=True)
    rows = runs_json(runs)
    # an SSL search reads no labels: one run per seed serves both label ratios (ssnas.stage_key)
    assert len(rows) == 4 and len({r["group_id"] for r in rows}) == 1
    assert sorted(r["seed"] for r in rows) == [0, 1, 2, 3] and {r["label_ratio"] for r in rows} == {None}
    assert {r["name"] for r in rows} == {f"tiny[label_ratio=*,seed={seed}]" for seed in range(4)}
    registry = Registry(runs / "registry.db", create=False)
    for row in rows:  # four workers wrote at once: no row lost
        assert row["status"] == "finished"
        assert len(registry.metrics(row["id"], key="loss", split="train")) == 6
        assert len(registry.genotypes(row["id"])) == 2
    series = [[m["value"] for m in registry.metrics(r["id"], key="loss")] for r in rows]
    assert len({tuple(s) for s in series}) == 4  # the seeds differ


def _running_with_steps(runs, run_id, steps):
    registry = Registry(runs / "registry.db", create=False)

    def check():
        run = registry.get_run(run_id)
        return run if run["status"] == "running" and len(registry.metrics(run_id, key="loss")) >= steps else None
    return check


def test_sigterm_checkpoints_and_resume_matches_an_uninterrupted_run(tmp_path, runs):
    recipe = tiny_recipe(tmp_path, epochs=40)
    reference_runs = tmp_path / "reference"
    ssnas(reference_runs, "run", str(recipe), check=True)
    [reference] = runs_json(reference_runs)
    expected = [m["value"] for m in Registry(reference_runs / "registry.db").metrics(reference["id"], key="loss")]

    ssnas(runs, "run", str(recipe), "--detach", check=True)
    [run] = runs_json(runs)
    wait_for(_running_with_steps(runs, run["id"], 10))
    assert "asked to stop" in ssnas(runs, "kill", run["id"][:8], check=True).stdout
    registry = Registry(runs / "registry.db", create=False)
    stopped = wait_for(lambda: registry.get_run(run["id"]) if registry.get_run(run["id"])["status"] == "killed" else None)
    assert "stopped on request" in stopped["error"]
    assert (runs / run["id"] / "checkpoint.pt").exists()
    steps_before = len(registry.metrics(run["id"], key="loss"))
    assert 10 <= steps_before < len(expected)

    ssnas(runs, "resume", run["id"][:8], check=True)
    resumed = registry.get_run(run["id"])
    assert resumed["status"] == "finished" and resumed["id"] == run["id"]
    losses = registry.metrics(run["id"], key="loss")
    assert [m["step"] for m in losses] == list(range(1, len(expected) + 1))
    assert [m["value"] for m in losses] == expected


def test_kill_dash_nine_of_a_worker_is_reconciled_to_lost_and_rerun_finishes_it(tmp_path, runs):
    ssnas(runs, "run", str(tiny_recipe(tmp_path, epochs=40)), "--detach", check=True)
    [run] = runs_json(runs)
    running = wait_for(_running_with_steps(runs, run["id"], 3))
    os.kill(running["pid"], signal.SIGKILL)
    registry = Registry(runs / "registry.db", create=False)
    lost = wait_for(lambda: registry.get_run(run["id"]) if registry.get_run(run["id"])["status"] == "lost" else None,
                    timeout=90)
    assert lost["ended_at"] is not None
    done = ssnas(runs, "rerun", "--failed", check=True, timeout=600)
    assert "1 run(s) queued again" in done.stdout
    rows = runs_json(runs)
    assert sorted(r["status"] for r in rows) == ["finished", "lost"]


BAD_RECIPES = [
    ("[search]\nepochs = -1\n", "search.epochs: -1 is out of range"),
    ("[search]\nepoch = 3\n", "search.epoch: unknown key (did you mean epochs?)"),
    ("[space]\nprimitives = ['sum', 'conv']\n", "space.primitives"),
    ("[data]\nlabel_ratio = 0\n", "data.label_ratio"),
    ("[run]\ndevice = 'tpu'\n", "run.device"),
    ("[views]\npolicy = 'both'\n", "views.policy"),
    ("[sweep]\nlabel_ratio = []\n", "label_ratio: needs at least one value"),
    ("[search\n", "TOML syntax error"),
]


@pytest.mark.parametrize(("body", "message"), BAD_RECIPES)
def test_a_bad_recipe_is_one_line_exit_2_and_no_run(tmp_path, runs, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(f'extends = "{tmp_path / "tiny_search.toml"}"\n' + body)
    tiny_recipe(tmp_path)
    done = ssnas(runs, "run", str(path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0] and "bad.toml" in lines[0]
    assert not (runs / "registry.db").exists() or not Registry(runs / "registry.db").runs()


def test_a_bad_override_names_it(tmp_path, runs):
    done = ssnas(runs, "run", str(tiny_recipe(tmp_path)), "--set", "search.epochs=abc")
    assert done.returncode == 2 and "--set search.epochs=abc" in done.stderr


def test_a_run_that_diverges_ends_failed_with_its_reason(tmp_path, runs):
    from ssnas.data.features import write_features
    from ssnas.data.pyramids import FeatureSet
    from ssnas.data.synthetic import make_synthetic
    from tests.conftest import TINY_DATA

    data = make_synthetic(TINY_DATA)
    levels = [list(pyramid) for pyramid in data.levels]
    levels[0][0] = levels[0][0].clone().mul_(3e37)  # finite (preflight refuses NaN), but products overflow
    broken = FeatureSet(data.modalities, levels, data.splits, labels=data.labels, label_names=data.label_names)
    path = write_features(broken, tmp_path / "broken.h5", dtype="float32")
    recipe = tmp_path / "on_features.toml"
    recipe.write_text(f'extends = "{RECIPES / "base.toml"}"\n[run]\nstage = "search"\n'
                      f'[data]\ndataset = "features"\npath = "{path}"\nbatch_size = 32\nstandardize = false\n'
                      '[space]\nchannels = 8\npositions = 4\n')
    done = ssnas(runs, "run", str(recipe))
    [run] = runs_json(runs)
    assert done.returncode == NOT_DONE and "did not finish" in done.stderr
    assert run["status"] == "failed" and run["error"].startswith("NonFiniteLoss: search: loss became ")


def test_a_registry_that_is_not_one_is_a_one_line_error(tmp_path, runs):
    runs.mkdir()
    (runs / "registry.db").write_bytes(b"not a database at all" * 10)
    for command in (["runs"], ["run", str(tiny_recipe(tmp_path))]):
        done = ssnas(runs, *command)
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            f"Error: {runs / 'registry.db'}: not an ssnas registry (not an SQLite database)"]
    assert (runs / "registry.db").read_bytes() == b"not a database at all" * 10  # left as it was
