"""Preflight and all-or-nothing submission: what a run needs is checked before it exists, and a submission
either records every run with its folder or nothing."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from ssnas.cli import main
from ssnas.errors import DatasetError, RegistryError, SsnasError
from ssnas.preflight import rows_for, split_needs
from ssnas.recipe import load_recipe
from ssnas.registry import NewRun, Registry
from ssnas.runs import launching
from ssnas.submit import plan_recipe, queue_plan
from tests.test_bad_inputs import PIPELINE, TINY_SYNTHETIC, features_recipe, valid_features


@pytest.mark.parametrize(("labeled", "ratio", "rows"), [(2, 1.0, 2), (2, 0.5, 3), (2, 0.1, 11), (4, 0.25, 13),
                                                       (1, 0.01, 1), (2, 0.3, 4)])
def test_rows_for_is_the_fewest_rows_whose_labeled_subset_is_large_enough(labeled, ratio, rows):
    import math

    assert max(1, math.ceil(ratio * rows)) >= labeled
    assert rows == 1 or max(1, math.ceil(ratio * (rows - 1))) < labeled
    assert rows_for(labeled, ratio) == rows


def test_split_needs_follow_the_stages(tmp_path):
    recipe_file = tmp_path / "r.toml"
    recipe_file.write_text(features_recipe(valid_features(tmp_path / "d.h5"), extra="label_ratio = 0.5\n"))
    recipe = load_recipe(str(recipe_file))
    ssl = split_needs(recipe, ["search"])
    assert dict(ssl.min_rows) == {"train": 4} and not ssl.labeled  # an SSL search reads no label
    supervised = split_needs(load_recipe(str(recipe_file), ["search.objective=supervised"]), ["search"])
    assert dict(supervised.min_rows) == {"train": 7} and supervised.labeled == {"train"}
    everything = split_needs(recipe, ["search", "pretrain", "finetune"])
    assert dict(everything.min_rows) == {"train": 4, "dev": 1, "test": 1}
    assert everything.labeled == {"train", "dev", "test"}


def test_a_degenerate_label_column_is_a_warning_and_the_runs_are_queued(tmp_path):
    data = valid_features(tmp_path / "d.h5")
    with h5py.File(data, "a") as f:
        labels = f["labels"][()]
        labels[:24, 2] = 0  # class z: no positive in train
        f["labels"][...] = labels
    recipe = tmp_path / "r.toml"
    recipe.write_text(features_recipe(data, '[run]\nname = "w"\nstage = "search"\n', "[search]\nepochs = 1\n"))
    launched = launching.submit(tmp_path / "runs", str(recipe))
    assert len(launched.run_ids) == 1
    assert len(launched.warnings) == 1 and "'z'" in launched.warnings[0] and "no positive" in launched.warnings[0]
    launching.cancel(tmp_path / "runs", launched.run_ids)


def test_the_dashboards_launch_shows_warnings_and_refusals(tmp_path):
    from tui.data import launch_recipe

    data = valid_features(tmp_path / "d.h5")
    with h5py.File(data, "a") as f:
        labels = f["labels"][()]
        labels[:24, 1] = 0
        f["labels"][...] = labels
    recipe = tmp_path / "r.toml"
    recipe.write_text(features_recipe(data, '[run]\nname = "w"\nstage = "search"\n', "[search]\nepochs = 1\n"))
    done = launch_recipe(tmp_path / "runs", recipe, [])
    assert done.ok and done.message.splitlines()[1].startswith("warning: ") and "'y'" in done.message
    launching.cancel(tmp_path / "runs", [r.id for r in Registry(tmp_path / "runs" / "registry.db").runs()])
    refused = launch_recipe(tmp_path / "runs", recipe, ["data.label_ratio=0.01", "run.stage=finetune",
                                                         "run.genotype=random"])
    assert not refused.ok and "/splits/train: has 24 rows; needs at least 101" in refused.message


def test_the_cli_prints_warnings_on_stderr(tmp_path):
    data = valid_features(tmp_path / "d.h5")
    with h5py.File(data, "a") as f:
        labels = f["labels"][()]
        labels[:24, 2] = 1  # class z: positive in every train row
        f["labels"][...] = labels
    recipe = tmp_path / "r.toml"
    recipe.write_text(features_recipe(data, '[run]\nname = "w"\nstage = "search"\n', "[search]\nepochs = 1\n"))
    result = CliRunner().invoke(main, ["--runs", str(tmp_path / "runs"), "run", str(recipe), "--detach"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: ") and "every train row" in result.stderr
    launching.cancel(tmp_path / "runs", [r.id for r in Registry(tmp_path / "runs" / "registry.db").runs()])


def test_a_batch_of_runs_is_recorded_all_or_nothing(tmp_path):
    registry = Registry(tmp_path / "registry.db")
    first = NewRun(name="a", stage="search", config={}, run_id="same-id")
    with pytest.raises(RegistryError, match="already taken"):
        registry.create_runs([first, NewRun(name="b", stage="pretrain", config={}, parent=0, run_id="same-id")])
    assert registry.runs() == []

    def fail(ids: list[str]) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        registry.create_runs([NewRun(name="a", stage="search", config={})], before_commit=fail)
    assert registry.runs() == []
    ids = registry.create_runs([NewRun(name="a", stage="search", config={}),
                                NewRun(name="b", stage="pretrain", config={}, parent=0)], tmp_path)
    assert [r.parent_id for r in registry.runs(sort="created_at")] == [None, ids[0]]
    assert registry.get_run(ids[1]).run_dir == str(tmp_path / ids[1])


def test_a_submission_whose_folders_cannot_be_made_leaves_nothing(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(TINY_SYNTHETIC.replace('stage = "search"', 'stage = "pipeline"\nstages = ["search", "pretrain"]'))
    registry = Registry(tmp_path / "registry.db")
    blocked = tmp_path / "a-file"
    blocked.write_text("the run folders would go under this file\n")
    with pytest.raises(OSError):
        queue_plan(registry, blocked, plan_recipe(str(recipe)))
    assert registry.runs() == []
    runs = tmp_path / "runs"
    done = queue_plan(registry, runs, plan_recipe(str(recipe)))
    assert len(done.queued) == 2 and all((runs / run_id).is_dir() for run_id in done.queued)
    assert {r.status for r in registry.runs()} == {"queued"}


def test_resume_and_rerun_check_the_data_again(tmp_path):
    data = valid_features(tmp_path / "d.h5")
    recipe = tmp_path / "r.toml"
    recipe.write_text(features_recipe(data, PIPELINE, "[search]\nepochs = 1\n"))
    runs = tmp_path / "runs"
    launched = launching.submit(runs, str(recipe))
    launching.cancel(runs, launched.run_ids)
    with h5py.File(data, "a") as f:
        f["modalities/a/level_0"][0, 0] = np.nan
    search = launched.run_ids[0]
    for again in (lambda: launching.resume(runs, search), lambda: launching.rerun(runs, [search])):
        with pytest.raises(DatasetError, match=r"d\.h5: /modalities/a/level_0: .*row 0"):
            again()
    registry = Registry(runs / "registry.db", readonly=True)
    assert len(registry.runs()) == 3 and {r.status for r in registry.runs()} == {"killed"}


def test_a_run_whose_parent_output_is_gone_is_not_queued_again(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(TINY_SYNTHETIC)
    runs = tmp_path / "runs"
    registry = Registry(runs / "registry.db")
    plan = plan_recipe(str(recipe))
    [parent] = queue_plan(registry, runs, plan).queued
    registry.start_run(parent, pid=1, host="h", device="cpu")
    registry.finish_run(parent, "finished")  # its genotype.json was never written
    child = registry.create_run(name="c", stage="pretrain", config=registry.get_run(parent).config or {},
                                parent_id=parent, run_dir=str(runs / "c"))
    registry.finish_run(child, "failed", error="boom")
    with pytest.raises(SsnasError, match="genotype.json: missing"):
        launching.resume(runs, child)
    assert registry.get_run(child).status == "failed"


def test_runs_whose_scheduler_cannot_start_are_taken_off_the_queue(tmp_path, monkeypatch):
    def cannot_spawn(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(launching, "ensure_scheduler", cannot_spawn)  # a fork that fails: no process to run them
    recipe = tmp_path / "r.toml"
    recipe.write_text(TINY_SYNTHETIC)
    with pytest.raises(OSError):
        launching.submit(tmp_path / "runs", str(recipe))
    [run] = Registry(tmp_path / "runs" / "registry.db", readonly=True).runs()
    assert run.status == "killed" and "scheduler could not start" in (run.error or "")


def test_an_mmimdb_limit_below_what_the_stages_need_is_refused(tmp_path):
    from ssnas.preflight import StageRun, check_stages
    from tests.test_mmimdb import make_mmimdb

    data = make_mmimdb(tmp_path / "mmimdb.h5")
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[run]\nname = "m"\nstage = "search"\n[data]\ndataset = "mmimdb"\npath = "{data}"\n'
                      "[data.mmimdb]\nlimit = 3\n")
    with pytest.raises(SsnasError, match=r"r\.toml: data\.mmimdb\.limit: 3 rows per split, .* at least 4 in the train"):
        check_stages([StageRun(load_recipe(str(recipe)), "search")])
    warnings = check_stages([StageRun(load_recipe(str(recipe), ["data.mmimdb.limit=4"]), "search")])
    assert all("no positive label" in warning for warning in warnings)  # the tiny file's rare genres
