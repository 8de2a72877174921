"""Shared label-free stages: the stage key, how a submission shares and reuses runs, what the report counts,
and that a self-supervised search and a pretraining really compute the same thing at every label ratio."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ssnas.recipe import load_recipe
from ssnas.registry import Registry
from ssnas.report import build_report
from ssnas.stage_key import chain_keys, stage_key
from ssnas.submit import OUTPUT_FILES, submit, submit_recipe
from tests.e2e import tiny_recipe

SWEEP = """
[sweep]
label_ratio = [0.1, 0.5, 1.0]
seed = [0, 1]
"""


@pytest.fixture
def recipe(tmp_path) -> Path:
    return tiny_recipe(tmp_path, stage="pipeline", extra=SWEEP)


@pytest.fixture
def registry(tmp_path):
    with Registry(tmp_path / "runs" / "registry.db") as registry:
        yield registry


def queued(registry: Registry, recipe: Path, *overrides: str, **options) -> list:
    group, ids = submit_recipe(registry, registry.path.parent, str(recipe), overrides, **options)
    runs = registry.runs(group=group, sort="created_at", config=True)
    assert [run.id for run in runs] == ids
    return runs


def by_stage(runs: list, stage: str) -> list:
    return [run for run in runs if run.stage == stage]


# -- the key ---------------------------------------------------------------------------------------


def test_the_key_leaves_out_what_a_label_free_stage_does_not_read(recipe):
    base = load_recipe(recipe, ["sweep.label_ratio=[0.1]", "sweep.seed=[0]"])
    same = [["data.label_ratio=0.5"], ["finetune.epochs=7", "finetune.mode=\"probe\""], ["run.name=\"other\""],
            ["run.tags=[\"x\"]"], ["run.stages=[\"search\", \"pretrain\"]"], ["pretrain.epochs=4"]]
    for overrides in same:
        other = load_recipe(recipe, ["sweep.label_ratio=[0.1]", "sweep.seed=[0]", *overrides])
        assert stage_key(other, "search") == stage_key(base, "search"), overrides
    for overrides in (["search.epochs=3"], ["run.seed=1"], ["data.synthetic.seed=4"], ["views.noise=0.2"],
                      ["space.channels=16"], ["data.batch_size=16"], ["run.bf16=true"]):
        other = load_recipe(recipe, ["sweep.label_ratio=[0.1]", "sweep.seed=[0]", *overrides])
        assert stage_key(other, "search") != stage_key(base, "search"), overrides
    # a pretraining reads its parent's genotype: its key follows the parent's, and its own section
    search = stage_key(base, "search")
    assert stage_key(base, "pretrain", search) != stage_key(base, "pretrain", "another search")
    assert stage_key(dataclasses.replace(base, pretrain={**base.pretrain, "epochs": 4}), "pretrain", search) != \
        stage_key(base, "pretrain", search)


def test_stages_that_read_labels_have_no_key_nor_does_anything_after_them(recipe):
    ssl = load_recipe(recipe)
    assert [key is not None for key in chain_keys(ssl)] == [True, True, False]  # the fine-tune reads labels
    for objective in ("supervised", "ssl+supervised"):
        labeled = load_recipe(recipe, [f'search.objective="{objective}"'])
        assert chain_keys(labeled) == [None, None, None]


# -- within a submission ---------------------------------------------------------------------------


def test_a_label_ratio_sweep_queues_one_search_and_pretrain_per_seed(registry, recipe):
    runs = queued(registry, recipe)
    searches, pretrains, finetunes = (by_stage(runs, stage) for stage in ("search", "pretrain", "finetune"))
    assert (len(searches), len(pretrains), len(finetunes)) == (2, 2, 6)
    for seed in (0, 1):
        [search] = [run for run in searches if run.seed == seed]
        [pretrain] = [run for run in pretrains if run.seed == seed]
        assert pretrain.parent_id == search.id and search.parent_id is None
        mine = [run for run in finetunes if run.seed == seed]
        assert {run.parent_id for run in mine} == {pretrain.id} and {run.label_ratio for run in mine} == {0.1, 0.5, 1.0}
        assert [run.id for run in registry.children(pretrain.id)] == [run.id for run in mine]
        # said to be shared: the label ratio it did not read is `*` in its name and NULL in its column
        assert search.name == f"tiny[label_ratio=*,seed={seed}]/search" and search.label_ratio is None
        assert pretrain.name == f"tiny[label_ratio=*,seed={seed}]/pretrain" and pretrain.label_ratio is None
        assert {run.name for run in mine} == {f"tiny[label_ratio={r},seed={seed}]/finetune" for r in (0.1, 0.5, 1.0)}
    assert runs[0].stage == "search" and runs.index(pretrains[0]) < runs.index(finetunes[0])


@pytest.mark.parametrize("objective", ["supervised", "ssl+supervised"])
def test_a_search_that_reads_labels_is_never_shared(registry, recipe, objective):
    runs = queued(registry, recipe, f'search.objective="{objective}"')
    assert len(runs) == 18 and len(by_stage(runs, "search")) == 6
    assert all(run.label_ratio is not None and "*" not in run.name for run in runs)
    assert len({run.parent_id for run in runs if run.parent_id}) == 12  # every run the parent of one


def test_without_sharing_every_chain_is_its_own(registry, recipe):
    runs = queued(registry, recipe, share=False)
    assert len(runs) == 18
    chains = [runs[i:i + 3] for i in range(0, 18, 3)]
    points = [(r, s) for r in (0.1, 0.5, 1.0) for s in (0, 1)]
    for (search, pretrain, finetune), (ratio, seed) in zip(chains, points, strict=True):
        assert [run.stage for run in (search, pretrain, finetune)] == ["search", "pretrain", "finetune"]
        assert pretrain.parent_id == search.id and finetune.parent_id == pretrain.id
        assert {run.label_ratio for run in (search, pretrain, finetune)} == {ratio}
        assert search.name == f"tiny[label_ratio={ratio},seed={seed}]/search"


def test_arms_share_what_they_agree_on(registry, tmp_path):
    recipe = tiny_recipe(tmp_path, stage="pipeline", extra="""
[sweep]
label_ratio = [0.1, 1.0]

[arms.probe]
"finetune.mode" = "probe"

[arms.full]
"finetune.mode" = "full"

[arms.random]
"run.stages" = ["pretrain", "finetune"]
"run.genotype" = "random"
""")
    recipe.write_text(recipe.read_text().replace('name = "tiny"', 'name = "tiny"\ntags = ["study"]'))
    runs = queued(registry, recipe)
    [search] = by_stage(runs, "search")
    pretrains = by_stage(runs, "pretrain")
    assert search.name == "tiny[arm=*,label_ratio=*]/search" and search.tags == ["study", "arm:probe", "arm:full"]
    assert len(pretrains) == 2  # one after the search, one of the random genotype
    random = next(run for run in pretrains if run.parent_id is None)
    assert random.name == "tiny[arm=random,label_ratio=*]/pretrain" and random.tags == ["study", "arm:random"]
    assert len(by_stage(runs, "finetune")) == 6


# -- across the runs folder ----------------------------------------------------------------------


def finish(registry: Registry, run, output: bool = True) -> None:
    registry.start_run(run.id, pid=1, host="test", device="cpu")
    registry.finish_run(run.id, "finished")
    folder = Path(run.run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if output:
        (folder / OUTPUT_FILES[run.stage]).write_text("{}")


def test_reuse_links_to_an_earlier_finished_run(registry, recipe):
    first = queued(registry, recipe, "sweep.seed=[0]", "sweep.label_ratio=[0.1]")
    search, pretrain = by_stage(first, "search")[0], by_stage(first, "pretrain")[0]
    finish(registry, search)
    finish(registry, pretrain)
    done = submit(registry, registry.path.parent, str(recipe), ["sweep.seed=[0, 1]"], reuse=True)
    assert done.reused == [search.id, pretrain.id]
    new = [registry.get_run(run_id) for run_id in done.queued]
    # seed 0: only its fine-tunes, after the earlier pretraining; seed 1: a chain of its own
    assert [run.stage for run in new if run.seed == 0] == ["finetune"] * 3
    assert {run.parent_id for run in new if run.seed == 0} == {pretrain.id}
    assert sorted(run.stage for run in new if run.seed == 1) == ["finetune"] * 3 + ["pretrain", "search"]
    # without --reuse, or when the earlier run did not finish or left no output, nothing is reused
    assert submit(registry, registry.path.parent, str(recipe), reuse=False).reused == []
    assert submit(registry, registry.path.parent, str(recipe), ["search.epochs=3"], reuse=True).reused == []
    again = queued(registry, recipe, "sweep.seed=[2]", "sweep.label_ratio=[0.1]")
    finish(registry, by_stage(again, "search")[0], output=False)
    reused = submit(registry, registry.path.parent, str(recipe), ["sweep.seed=[2]"], reuse=True).reused
    assert reused == []


# -- the report ----------------------------------------------------------------------------------


def test_the_report_counts_a_shared_search_once(registry, recipe):
    runs = queued(registry, recipe, "sweep.seed=[0]")
    [search] = by_stage(runs, "search")
    for run in runs:
        finish(registry, run, output=run.stage != "finetune")
    registry.update_run(search.id, started_at=100.0, ended_at=130.0, worked_seconds=30.0)
    report = build_report(registry, runs[0].group_id)
    assert [(row.label_ratio, row.chains) for row in report.rows] == [(0.1, 1), (0.5, 1), (1.0, 1)]
    assert {c.search_id for c in report.chains} == {search.id}
    assert report.search_seconds.n == 1 and report.search_seconds.mean == 30.0
    [arm] = report.arms
    assert arm.search_seconds.n == 1 and arm.chains == 3
    assert "searches: 1 finished, 30.0s of wall time in all" in report.format_table()


# -- what the stages read ------------------------------------------------------------------------


def test_an_ssl_search_and_a_pretraining_compute_the_same_at_every_label_ratio(tmp_path):
    """The claim the key rests on: same genotype, same losses, same weights, whatever data.label_ratio says."""
    import torch

    from ssnas.execution import GENOTYPE_FILE, PRETRAINED_FILE, run_stage
    from ssnas.reporting import InMemoryReporter

    path = tiny_recipe(tmp_path, stage="pipeline", epochs=1)
    outcomes = []
    for ratio in (0.05, 1.0):
        recipe = load_recipe(path, [f"data.label_ratio={ratio}", "run.device=\"cpu\""])
        searched, pretrained = tmp_path / f"search-{ratio}", tmp_path / f"pretrain-{ratio}"
        reporters = InMemoryReporter(), InMemoryReporter()
        for folder in (searched, pretrained):
            folder.mkdir()
        run_stage("search", recipe, searched, None, reporters[0])
        run_stage("pretrain", recipe, pretrained, searched, reporters[1])
        network = torch.load(pretrained / PRETRAINED_FILE, weights_only=True)["network"]
        outcomes.append(((searched / GENOTYPE_FILE).read_text(),
                         [[(m.key, m.value, m.step, m.epoch, m.split) for m in r.metrics] for r in reporters],
                         network))
    (genotype_a, metrics_a, network_a), (genotype_b, metrics_b, network_b) = outcomes
    assert genotype_a == genotype_b
    assert metrics_a == metrics_b and all(metrics_a)
    assert network_a.keys() == network_b.keys()
    assert all(torch.equal(network_a[name], network_b[name]) for name in network_a)


@pytest.mark.parametrize("module", ["ssnas.stage_key", "ssnas.submit"])
def test_planning_imports_no_torch(module):
    """`ssnas run` keys and plans its runs before anything heavy is imported."""
    import subprocess
    import sys

    code = f"import sys, {module}; print(','.join(m for m in ('torch', 'textual') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
