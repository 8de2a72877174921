import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ssnas.errors import RecipeError
from ssnas.recipe import (
    LEAVES,
    Recipe,
    expand_sweep,
    format_recipe,
    load_recipe,
    pipeline_stages,
    recipe_from_dict,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "recipes").glob("*.toml"))
GENOTYPE = (ROOT / "ssnas/baselines/bmnas-mmimdb.json").read_text()
PAPER_ARMS = ["ssl", "supervised", "bmnas", "ssl+supervised", "random", "linear", "mlp", "late_fusion"]


@pytest.fixture(scope="module")
def features_file(tmp_path_factory):
    """A tiny real ssnas-features/1 file, for recipes that read one (paper_mmimdb.toml)."""
    from ssnas.config.data import SyntheticConfig
    from ssnas.data.features import write_features
    from ssnas.data.synthetic import make_synthetic

    data = SyntheticConfig(train=32, dev=16, test=16, image_channels=8, image_side=2, text_dims=(6, 10), classes=5)
    return write_features(make_synthetic(data), tmp_path_factory.mktemp("features") / "mmimdb-features.h5")


def load_shipped(path: Path, features_file: Path) -> Recipe:
    """A shipped recipe as it loads once its data exists (paper_mmimdb.toml names a placeholder file)."""
    overrides = [f"data.path={features_file}"] if path.name in ("paper_mmimdb.toml", "paper_real.toml") else []
    return load_recipe(path, overrides)


def write(folder: Path, files: dict[str, str | bytes]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Work in tmp_path, so that messages show short relative paths."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --------------------------------------------------------------------------------------------
# Shipped recipes.


def test_every_recipe_is_shipped():
    assert [p.name for p in SHIPPED] == [
        "base.toml", "finetune.toml", "paper_mmimdb.toml", "paper_real.toml", "paper_synthetic.toml",
        "paper_synthetic_ablation.toml",
        "pipeline.toml", "pretrain.toml",
        "ssl_search.toml", "supervised_search.toml",
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_recipe_loads_and_round_trips(path, features_file):
    recipe = load_shipped(path, features_file)
    assert recipe.run.name == path.stem
    assert recipe_from_dict(recipe.to_dict(), recipe.path) == recipe
    if not path.name.startswith("paper_"):
        assert expand_sweep(recipe) == [recipe]
    # The dict form survives JSON, as the registry stores it.
    assert recipe_from_dict(json.loads(json.dumps(recipe.to_dict())), recipe.path) == recipe


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_recipe_says_what_it_does_and_how_to_run_it(path):
    text = path.read_text()
    assert text.startswith(f"# {path.name}: ")
    assert f"ssnas run recipes/{path.name}" in text
    if path.name == "paper_mmimdb.toml":
        assert tomllib.loads(text)["extends"] == "paper_synthetic.toml"  # the same arms and sweep
    elif path.name != "base.toml":
        assert tomllib.loads(text)["extends"] == "base.toml"


def test_shipped_recipes_run_the_intended_stages(features_file):
    loaded = {p.stem: load_shipped(p, features_file) for p in SHIPPED}
    assert {name: pipeline_stages(r) for name, r in loaded.items()} == {
        "base": ["search", "pretrain", "finetune"],
        "paper_synthetic": ["search", "pretrain", "finetune"],
        "paper_synthetic_ablation": ["search", "pretrain", "finetune"],
        "paper_mmimdb": ["search", "pretrain", "finetune"],
        "paper_real": ["search", "pretrain", "finetune"],
        "pipeline": ["search", "pretrain", "finetune"],
        "ssl_search": ["search"],
        "supervised_search": ["search"],
        "pretrain": ["pretrain"],
        "finetune": ["finetune"],
    }
    assert loaded["ssl_search"].search["objective"] == "ssl"
    assert loaded["supervised_search"].search["objective"] == "supervised"
    assert loaded["pretrain"].run.genotype == loaded["finetune"].run.genotype == "baseline:bmnas-mmimdb"
    assert loaded["finetune"].run.checkpoint is None


def test_base_recipe_has_the_demo_settings():
    from ssnas.demo import demo_config

    demo, demo_data = demo_config(label_ratio=0.1, seed=0, device="auto")
    r = load_recipe(ROOT / "recipes" / "base.toml")
    assert r.space_config() == demo.space
    assert r.search_config() == dataclasses.replace(demo.search, batch_size=64, label_ratio=0.1)
    assert r.pretrain_config() == dataclasses.replace(demo.pretrain, batch_size=64)
    assert r.finetune_config() == dataclasses.replace(demo.finetune, batch_size=64)
    assert r.data.dataset == "synthetic" and r.data.label_ratio == 0.1


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_worker_can_build_every_config(path, features_file):
    from ssnas.config.data import SyntheticConfig
    from ssnas.config.runtime import Runtime
    from ssnas.config.views import ViewConfig

    for r in expand_sweep(load_shipped(path, features_file)):
        r.space_config(), r.search_config(), r.pretrain_config(), r.finetune_config()
        assert ViewConfig(**r.views).policy == "cross_modal"
        assert Runtime(**r.run.runtime).seed in (0, 1, 2)
        if r.data.dataset == "synthetic":
            assert SyntheticConfig(**r.data.options) == SyntheticConfig()


def test_paper_synthetic_sweeps_eight_arms_at_the_base_sizes():
    base, paper = load_recipe(ROOT / "recipes/base.toml"), load_recipe(ROOT / "recipes/paper_synthetic.toml")
    assert list(paper.arms) == PAPER_ARMS
    assert paper.sweep == {"data.label_ratio": [0.05, 0.1, 0.3, 0.5, 1.0], "run.seed": [0, 1, 2]}
    assert (paper.space, paper.search["epochs"], paper.pretrain, paper.finetune, paper.data.synthetic) == (
        base.space, base.search["epochs"], base.pretrain, base.finetune, base.data.synthetic)
    runs = expand_sweep(paper)
    assert len(runs) == 120 and len({r.run.name for r in runs}) == 120
    by_arm = {arm: [r for r in runs if f"arm:{arm}" in r.run.tags] for arm in PAPER_ARMS}
    assert {arm: len(rs) for arm, rs in by_arm.items()} == dict.fromkeys(PAPER_ARMS, 15)
    first = {arm: rs[0] for arm, rs in by_arm.items()}
    assert {arm: (pipeline_stages(r), r.search["objective"], r.run.genotype) for arm, r in first.items()} == {
        "ssl": (["search", "pretrain", "finetune"], "ssl", None),
        "supervised": (["search", "finetune"], "supervised", None),
        "bmnas": (["finetune"], "ssl", "baseline:bmnas-mmimdb"),
        "ssl+supervised": (["search", "pretrain", "finetune"], "ssl+supervised", None),
        "random": (["pretrain", "finetune"], "ssl", "random"),
        "linear": (["finetune"], "ssl", None),
        "mlp": (["finetune"], "ssl", None),
        "late_fusion": (["finetune"], "ssl", None),
    }
    assert {arm: first[arm].finetune["model"] for arm in ("ssl", "linear", "mlp", "late_fusion")} == {
        "ssl": "nas", "linear": "linear", "mlp": "mlp", "late_fusion": "late_fusion"}
    assert first["supervised"].run.name == "paper_synthetic[arm=supervised,label_ratio=0.05,seed=0]"
    assert all({"paper", "paper-synthetic"} <= set(r.run.tags) for r in runs)


def test_paper_mmimdb_needs_its_features_file_then_loads_at_the_paper_sizes(in_tmp, features_file):
    path = ROOT / "recipes/paper_mmimdb.toml"
    with pytest.raises(RecipeError, match=r"paper_mmimdb\.toml: data\.path: .*mmimdb-features\.h5: file not found$"):
        load_recipe(path)
    recipe = load_recipe(path, [f"data.path={features_file}"])
    assert (recipe.data.dataset, recipe.data.path, recipe.data.batch_size) == ("features", str(features_file), 96)
    assert (recipe.space["channels"], recipe.space["positions"], recipe.space["cells"]) == (192, 16, 2)
    assert (recipe.search["epochs"], recipe.pretrain["epochs"], recipe.finetune["epochs"]) == (12, 30, 30)
    runs = expand_sweep(recipe)
    assert len(runs) == 120 and list(recipe.arms) == PAPER_ARMS
    assert all(r.data.path == str(features_file) and "paper-mmimdb" in r.run.tags for r in runs)
    from ssnas.data.datasets import load_dataset

    data = load_dataset(recipe.data.dataset, recipe.data.path, recipe.data.options)
    assert data.has_labels and len(data.node_names) == 6


def test_format_recipe_is_toml_that_loads_back(in_tmp):
    write(in_tmp, {"g.json": GENOTYPE,
                   "r.toml": '[run]\nstage = "finetune"\ngenotype = "g.json"\ntags = ["x"]\n[sweep]\nseed = [0, 1]\n'})
    recipe = load_recipe("r.toml")
    text = format_recipe(recipe)
    assert text.startswith("# r.toml, resolved")
    assert f'genotype = "{in_tmp / "g.json"}"' in text
    assert "# checkpoint is not set" in text
    assert '"run.seed" = [0, 1]' in text
    (in_tmp / "shown.toml").write_text(text)
    assert load_recipe("shown.toml").to_dict() == recipe.to_dict()


# --------------------------------------------------------------------------------------------
# Defaults, extends, --set.


def test_empty_recipe_is_every_default(in_tmp):
    write(in_tmp, {"empty.toml": ""})
    d = load_recipe("empty.toml").to_dict()
    assert d["run"] == {"name": "empty", "stage": "pipeline", "seed": 0, "device": "auto", "bf16": False,
                        "eager": False, "compile": False, "tags": [],
                        "executor": "local", "genotype": None, "genotype_nodes": None, "checkpoint": None,
                        "stages": ["search", "pretrain", "finetune"], "sinks": []}
    assert d["data"]["dataset"] == "synthetic" and d["data"]["path"] is None
    assert d["data"]["synthetic"]["text_dims"] == [64, 128]
    assert d["space"]["primitives"] == ["zero", "sum", "attention", "linear_glu", "concat_fc"]
    assert d["search"]["epochs"] == 12 and "batch_size" not in d["search"] and "label_ratio" not in d["search"]
    assert d["sweep"] == {}


def test_extends_merges_tables_child_wins_lists_replace(in_tmp):
    write(in_tmp, {
        "shared/grand.toml": '[run]\ntags = ["a", "b"]\nseed = 3\n[search]\nepochs = 4\nlr = 0.01\n',
        "shared/parent.toml": 'extends = "grand.toml"\n[search]\nepochs = 5\n[views]\nnoise = 0.2\n',
        "child.toml": 'extends = "shared/parent.toml"\n[run]\ntags = ["c"]\n[search]\ntemperature = 0.5\n',
    })
    r = load_recipe("child.toml")
    assert r.run.tags == ("c",) and r.run.seed == 3 and r.run.name == "child"
    assert (r.search["epochs"], r.search["lr"], r.search["temperature"]) == (5, 0.01, 0.5)
    assert r.views["noise"] == 0.2


def test_relative_paths_resolve_against_the_file_that_names_them(in_tmp, features_file):
    write(in_tmp, {"lab/genotypes/g.json": GENOTYPE, "lab/data/f.h5": features_file.read_bytes(),
                   "lab/base.toml": '[run]\ngenotype = "genotypes/g.json"\n'
                                    '[data]\ndataset = "features"\npath = "data/f.h5"\n',
                   "mine.toml": 'extends = "lab/base.toml"\n[run]\nstage = "finetune"\n'})
    r = load_recipe("mine.toml")
    assert r.run.genotype == str(in_tmp / "lab/genotypes/g.json")
    assert r.data.path == str(in_tmp / "lab/data/f.h5")
    assert r.data.options == {}


def test_set_overrides_with_toml_values(in_tmp):
    write(in_tmp, {"r.toml": "[data.synthetic]\ntrain = 64\n", "g.json": GENOTYPE})
    r = load_recipe("r.toml", [
        "search.epochs=5", "search.lr=1", "data.label_ratio=0.25", "run.bf16=true", 'run.tags=["a", "b"]',
        "run.device=cuda:1", 'run.name="quoted"', "data.synthetic.train=100", "data.synthetic.text_dims=[4, 8]",
        "space.primitives=[\"sum\", \"product\"]", " views.noise = 0 ", "run.stage=pretrain", "run.genotype=g.json",
    ])
    assert r.search["epochs"] == 5
    assert r.search["lr"] == 1.0 and isinstance(r.search["lr"], float)
    assert r.data.label_ratio == 0.25 and r.run.bf16 is True and r.run.tags == ("a", "b")
    assert r.run.device == "cuda:1" and r.run.name == "quoted"
    assert r.data.synthetic["train"] == 100 and r.data.synthetic["text_dims"] == [4, 8]
    assert r.space["primitives"] == ["sum", "product"] and r.views["noise"] == 0.0
    assert r.run.genotype == str(in_tmp / "g.json")


def test_set_takes_bare_text_for_string_keys(in_tmp):
    write(in_tmp, {"r.toml": ""})
    assert load_recipe("r.toml", ["run.name=true"]).run.name == "true"
    assert load_recipe("r.toml", ["run.name=1e3"]).run.name == "1e3"
    assert load_recipe("r.toml", ["run.device=cpu"]).run.device == "cpu"


def test_later_set_wins(in_tmp):
    write(in_tmp, {"r.toml": "[search]\nepochs = 3\n"})
    assert load_recipe("r.toml", ["search.epochs=4", "search.epochs=6"]).search["epochs"] == 6


# --------------------------------------------------------------------------------------------
# Sweeps.


def test_sweep_expands_the_product_into_named_siblings(in_tmp):
    write(in_tmp, {"ssl_search.toml": '[run]\nstage = "search"\n[sweep]\nlabel_ratio = [0.1, 0.5]\nseed = [0, 1, 2]\n'
                                      '"search.temperature" = [0.2]\n'})
    recipe = load_recipe("ssl_search.toml")
    assert recipe.sweep == {"data.label_ratio": [0.1, 0.5], "run.seed": [0, 1, 2], "search.temperature": [0.2]}
    runs = expand_sweep(recipe)
    assert len(runs) == 6
    assert runs[0].run.name == "ssl_search[label_ratio=0.1,seed=0,search.temperature=0.2]"
    assert [(r.data.label_ratio, r.run.seed) for r in runs] == [
        (0.1, 0), (0.1, 1), (0.1, 2), (0.5, 0), (0.5, 1), (0.5, 2)]
    assert all(r.sweep == {} and r.search["temperature"] == 0.2 for r in runs)
    assert runs[4].to_dict() == load_recipe("ssl_search.toml", [
        "sweep.label_ratio=[0.1]", "sweep.seed=[0]", "sweep.search.temperature=[0.1]", "data.label_ratio=0.5",
        "run.seed=1", "search.temperature=0.2", "run.name=ssl_search[label_ratio=0.5,seed=1,search.temperature=0.2]",
    ]).to_dict() | {"sweep": {}}


def test_sweep_accepts_dotted_toml_keys_and_list_values(in_tmp):
    write(in_tmp, {"r.toml": '[sweep]\nsearch.temperature = [0.1, 0.2]\n"run.tags" = [["a"], ["b", "c"]]\n'})
    runs = expand_sweep(load_recipe("r.toml"))
    assert [r.run.name for r in runs] == [
        "r[search.temperature=0.1,run.tags=[a]]", "r[search.temperature=0.1,run.tags=[b,c]]",
        "r[search.temperature=0.2,run.tags=[a]]", "r[search.temperature=0.2,run.tags=[b,c]]"]
    assert runs[3].run.tags == ("b", "c")


def test_sweep_from_set_and_merged_from_parent(in_tmp):
    write(in_tmp, {"base.toml": "[sweep]\nseed = [0, 1]\n",
                   "r.toml": 'extends = "base.toml"\n[sweep]\nlabel_ratio = [0.5]\n'})
    assert len(expand_sweep(load_recipe("r.toml"))) == 2
    assert len(expand_sweep(load_recipe("r.toml", ["sweep.seed=[0, 1, 2]"]))) == 3
    write(in_tmp, {"r2.toml": 'extends = "base.toml"\n[sweep]\n"run.seed" = [5]\n'})  # child wins, by canonical key
    assert [r.run.seed for r in expand_sweep(load_recipe("r2.toml"))] == [5]


def test_sweep_over_synthetic_data_and_baseline_genotypes(in_tmp):
    write(in_tmp, {"r.toml": '[run]\nstage = "finetune"\ngenotype = "random"\n'
                             '[sweep]\n"run.genotype" = ["random", "baseline:bmnas-mmimdb"]\n'
                             '"data.synthetic.seed" = [1, 2]\n'})
    runs = expand_sweep(load_recipe("r.toml"))
    assert runs[1].run.name == "r[run.genotype=random,data.synthetic.seed=2]"
    assert [(r.run.genotype, r.data.synthetic["seed"]) for r in runs][-1] == ("baseline:bmnas-mmimdb", 2)


# --------------------------------------------------------------------------------------------
# Arms.

ARMS = """\
[run]
tags = ["exp"]
[sweep]
label_ratio = [0.1, 1.0]
seed = [0, 1]
[arms.ssl]
[arms.supervised]
"search.objective" = "supervised"
"run.stages" = ["search", "finetune"]
[arms.bmnas]
run.stages = ["finetune"]
run.genotype = "baseline:bmnas-mmimdb"
[arms."ssl+supervised"]
search.objective = "ssl+supervised"
"""


def test_arms_expand_arm_by_arm_over_the_sweep(in_tmp):
    write(in_tmp, {"exp.toml": ARMS})
    recipe = load_recipe("exp.toml")
    assert recipe.arms == {"ssl": {},
                           "supervised": {"search.objective": "supervised", "run.stages": ["search", "finetune"]},
                           "bmnas": {"run.stages": ["finetune"], "run.genotype": "baseline:bmnas-mmimdb"},
                           "ssl+supervised": {"search.objective": "ssl+supervised"}}
    runs = expand_sweep(recipe)
    assert len(runs) == 4 * 4
    assert [r.run.name for r in runs[:5]] == [
        "exp[arm=ssl,label_ratio=0.1,seed=0]", "exp[arm=ssl,label_ratio=0.1,seed=1]",
        "exp[arm=ssl,label_ratio=1.0,seed=0]", "exp[arm=ssl,label_ratio=1.0,seed=1]",
        "exp[arm=supervised,label_ratio=0.1,seed=0]"]
    assert runs[-1].run.name == "exp[arm=ssl+supervised,label_ratio=1.0,seed=1]"
    assert [r.run.tags for r in runs[::4]] == [("exp", "arm:ssl"), ("exp", "arm:supervised"), ("exp", "arm:bmnas"),
                                              ("exp", "arm:ssl+supervised")]
    supervised, bmnas = runs[6], runs[8]
    assert (supervised.search["objective"], pipeline_stages(supervised)) == ("supervised", ["search", "finetune"])
    assert (supervised.data.label_ratio, supervised.run.seed) == (1.0, 0)
    assert (pipeline_stages(bmnas), bmnas.run.genotype, bmnas.search["objective"]) == (
        ["finetune"], "baseline:bmnas-mmimdb", "ssl")
    assert all(r.arms == {} and r.sweep == {} for r in runs)
    assert recipe_from_dict(json.loads(json.dumps(recipe.to_dict())), recipe.path) == recipe


def test_arms_without_a_sweep_and_a_sweep_without_arms(in_tmp):
    write(in_tmp, {"a.toml": '[arms.one]\n[arms.two]\n"search.epochs" = 3\n', "s.toml": "[sweep]\nseed = [0, 1]\n"})
    assert [(r.run.name, r.search["epochs"], r.run.tags) for r in expand_sweep(load_recipe("a.toml"))] == [
        ("a[arm=one]", 12, ("arm:one",)), ("a[arm=two]", 3, ("arm:two",))]
    assert [r.run.tags for r in expand_sweep(load_recipe("s.toml"))] == [(), ()]


def test_arm_values_resolve_paths_against_their_file_and_take_their_stage_chain(in_tmp):
    write(in_tmp, {"lab/g.json": GENOTYPE, "lab/base.toml": '[arms.fixed]\n"run.stage" = "finetune"\n'
                                                          '"run.genotype" = "g.json"\n',
                   "mine.toml": 'extends = "lab/base.toml"\n[arms.fixed]\n"finetune.epochs" = 3\n[arms.other]\n'})
    recipe = load_recipe("mine.toml")
    assert list(recipe.arms) == ["fixed", "other"]  # a child's arm merges into its parent's, key by key
    fixed, other = expand_sweep(recipe)
    assert (fixed.run.stage, pipeline_stages(fixed), fixed.run.genotype, fixed.finetune["epochs"]) == (
        "finetune", ["finetune"], str(in_tmp / "lab/g.json"), 3)
    assert pipeline_stages(other) == ["search", "pretrain", "finetune"]


def test_set_adds_arms_and_arm_keys(in_tmp):
    write(in_tmp, {"exp.toml": ARMS})
    recipe = load_recipe("exp.toml", ["arms.ssl.search.epochs=2", 'arms.random.run.stages=["pretrain", "finetune"]',
                                      "arms.random.run.genotype=random", "sweep.seed=[0]"])
    assert recipe.arms["ssl"] == {"search.epochs": 2}
    assert list(recipe.arms)[-1] == "random" and len(expand_sweep(recipe)) == 5 * 2


def test_format_recipe_writes_arms_that_load_back(in_tmp):
    write(in_tmp, {"exp.toml": ARMS})
    recipe = load_recipe("exp.toml")
    text = format_recipe(recipe)
    assert '[arms."ssl+supervised"]\n"search.objective" = "ssl+supervised"' in text
    (in_tmp / "shown.toml").write_text(text)
    shown = load_recipe("shown.toml")
    assert shown.arms == recipe.arms
    assert [r.to_dict() for r in expand_sweep(shown)] == [r.to_dict() for r in expand_sweep(recipe)]


ARM_BAD = [
    ("arm unknown key", '[arms.a]\n"search.objectiv" = "ssl"\n', [],
     "bad.toml: arms.a.search.objectiv: unknown key (did you mean search.objective?)"),
    ("arm unknown nested key", "[arms.a]\nsearch.epoch = 3\n", [],
     "bad.toml: arms.a.search.epoch: unknown key (did you mean search.epochs?)"),
    ("arm wrong type", '[arms.a]\n"search.epochs" = "many"\n', [],
     "bad.toml: arms.a.search.epochs: expected an integer, got 'many'"),
    ("arm out of range", '[arms.a]\n"search.epochs" = 0\n', [],
     "bad.toml: arms.a.search.epochs: 0 is out of range (> 0)"),
    ("arm value not a choice", '[arms.a]\n"search.objective" = "labels"\n', [],
     "bad.toml: arms.a.search.objective: 'labels' is not one of ssl, supervised, ssl+supervised"),
    ("arm renames its runs", '[arms.a]\n"run.name" = "x"\n', [],
     "bad.toml: arms.a.run.name: an arm cannot rename its runs (they are named after the recipe and the arm)"),
    ("arm changes the executor", '[arms.a]\n"run.executor" = "ray"\n', [],
     "bad.toml: arms.a.run.executor: an arm cannot change the executor (the runs of one recipe start together)"),
    ("arm sets a swept key", '[sweep]\nseed = [0, 1]\n[arms.a]\n"run.seed" = 3\n', [],
     "bad.toml: arms.a.run.seed: also swept (sweep.run.seed): the sweep would override the arm"),
    ("arm name", '[arms."a b"]\n', [],
     "bad.toml: arms.a b: 'a b' is not an arm name (letters, digits, _, + and -: it goes into run names and the "
     "tag arm:NAME)"),
    ("arm not a table", "[arms]\na = 1\n", [],
     "bad.toml: arms.a: expected a table ([arms.a]) of dotted keys, got 1"),
    ("arms not a table", "arms = 1\n", [],
     "bad.toml: arms: expected tables ([arms.NAME]) of dotted keys, got 1"),
    ("arm key given twice", '[arms.a]\n"search.epochs" = 1\nsearch.epochs = 2\n', [],
     "bad.toml: arms.a.search.epochs: given twice"),
    ("arm makes an invalid recipe", '[arms.ok]\n[arms.random]\n"run.stages" = ["pretrain", "finetune"]\n', [],
     "bad.toml: arms.random: run.genotype: needed when the run starts with pretrain (a genotype JSON file, "
     "'baseline:NAME' or 'random')"),
    ("arm breaks a cross-key rule", '[arms.a]\n"space.cells" = 1\n', [],
     "bad.toml: arms.a: space.cell_multiplier: 2 is out of range (1..1)"),
    ("arm gives a searching run a genotype", '[arms.a]\n"run.genotype" = "random"\n', [],
     "bad.toml: arms.a.run.genotype: a run that starts with search finds its own genotype (remove it, or set "
     "run.stage to pretrain or finetune)"),
    ("arm breaks only at a sweep point",
     '[sweep]\n"space.cell_multiplier" = [1, 2]\n[space]\ncell_multiplier = 1\n[arms.a]\n"space.cells" = 1\n', [],
     "bad.toml: arms.a: at sweep point [space.cell_multiplier=2]: space.cell_multiplier: 2 is out of range (1..1)"),
    ("set arm unknown key", "[arms.a]\n", ["arms.a.search.epoch=3"],
     "--set arms.a.search.epoch=3: unknown key (did you mean search.epochs?)"),
    ("set arm wrong type", "[arms.a]\n", ["arms.a.search.epochs=abc"],
     "--set arms.a.search.epochs=abc: expected an integer, got 'abc'"),
    ("set arm without a key", "", ["arms.a=1"],
     "--set arms.a=1: expected arms.NAME.KEY=VALUE (e.g. arms.ssl.search.epochs=5)"),
]


@pytest.mark.parametrize("text, overrides, message", [case[1:] for case in ARM_BAD], ids=[case[0] for case in ARM_BAD])
def test_bad_arms(in_tmp, text, overrides, message):
    write(in_tmp, {"bad.toml": text})
    with pytest.raises(RecipeError) as caught:
        load_recipe("bad.toml", overrides)
    assert str(caught.value) == message


def test_bad_arm_messages_are_one_line():
    assert all("\n" not in message for *_, message in ARM_BAD)


# --------------------------------------------------------------------------------------------
# Bad recipes: every one is a RecipeError of one line naming the file (or --set) and the key.

FEATURES = '[data]\ndataset = "features"\npath = "f.h5"\n'
MMIMDB = '[data]\ndataset = "mmimdb"\npath = "m.h5"\n'
NEEDS_GENOTYPE = ("bad.toml: run.genotype: needed when the run starts with pretrain "
                  "(a genotype JSON file, 'baseline:NAME' or 'random')")

BAD = [
    # (id, files (bad.toml is loaded), overrides, message)
    ("unknown section", {"bad.toml": "[serch]\nepochs = 3\n"}, [],
     "bad.toml: serch: unknown section (did you mean search?)"),
    ("unknown key", {"bad.toml": "[search]\nepoch = 3\n"}, [],
     "bad.toml: search.epoch: unknown key (did you mean epochs?)"),
    ("unknown key far from any", {"bad.toml": "[views]\nfoo = 1\n"}, [],
     "bad.toml: views.foo: unknown key (known: policy, noise, channel_dropout, position_mask, modality_dropout, "
     "level_mix)"),
    ("paper's name for a key", {"bad.toml": "[space]\nC = 64\n"}, [],
     "bad.toml: space.C: unknown key (did you mean channels?)"),
    ("shared key in a stage", {"bad.toml": "[finetune]\nlabel_ratio = 0.5\n"}, [],
     "bad.toml: finetune.label_ratio: set data.label_ratio instead (one value feeds every stage)"),
    ("string for int", {"bad.toml": '[search]\nepochs = "5"\n'}, [],
     "bad.toml: search.epochs: expected an integer, got '5'"),
    ("bool for int", {"bad.toml": "[run]\nseed = true\n"}, [],
     "bad.toml: run.seed: expected an integer, got true"),
    ("float for int", {"bad.toml": "[search]\nepochs = 1.5\n"}, [],
     "bad.toml: search.epochs: expected an integer, got 1.5"),
    ("bool for float", {"bad.toml": "[search]\nlr = false\n"}, [],
     "bad.toml: search.lr: expected a number, got false"),
    ("nan", {"bad.toml": "[search]\nlr = nan\n"}, [],
     "bad.toml: search.lr: nan is not a finite number"),
    ("string for list", {"bad.toml": '[run]\ntags = "a"\n'}, [],
     "bad.toml: run.tags: expected a list of strings, got 'a'"),
    ("mixed list", {"bad.toml": '[space]\nprimitives = ["sum", 1]\n'}, [],
     "bad.toml: space.primitives: expected a list of strings, got ['sum', 1]"),
    ("section not a table", {"bad.toml": "search = 5\n"}, [],
     "bad.toml: search: expected a table ([search]), got 5"),
    ("out of range", {"bad.toml": "[search]\nepochs = -1\n"}, [],
     "bad.toml: search.epochs: -1 is out of range (> 0)"),
    ("label ratio zero", {"bad.toml": "[data]\nlabel_ratio = 0\n"}, [],
     "bad.toml: data.label_ratio: 0.0 is out of range (0, 1]"),
    ("batch size zero", {"bad.toml": "[data]\nbatch_size = 0\n"}, [],
     "bad.toml: data.batch_size: 0 is out of range (>= 1)"),
    ("positions not square", {"bad.toml": "[space]\npositions = 15\n"}, [],
     "bad.toml: space.positions: 15 is not a square number (maps pool to sqrt(L) x sqrt(L))"),
    ("cross-key range", {"bad.toml": "[space]\ncells = 1\n"}, [],
     "bad.toml: space.cell_multiplier: 2 is out of range (1..1)"),
    ("unknown primitive", {"bad.toml": '[space]\nprimitives = ["sum", "conv"]\n'}, [],
     "bad.toml: space.primitives: unknown ['conv'] (known: zero, sum, attention, linear_glu, concat_fc, "
     "concat_conv_mish, product)"),
    ("objective", {"bad.toml": '[search]\nobjective = "contrastive"\n'}, [],
     "bad.toml: search.objective: 'contrastive' is not one of ssl, supervised, ssl+supervised"),
    ("stage", {"bad.toml": '[run]\nstage = "train"\n'}, [],
     "bad.toml: run.stage: 'train' is not one of search, pretrain, finetune, pipeline"),
    ("device", {"bad.toml": '[run]\ndevice = "gpu"\n'}, [],
     "bad.toml: run.device: 'gpu' is not auto, cpu, cuda or cuda:N"),
    ("device index", {"bad.toml": '[run]\ndevice = "cuda:x"\n'}, [],
     "bad.toml: run.device: 'cuda:x' is not auto, cpu, cuda or cuda:N"),
    ("executor", {"bad.toml": '[run]\nexecutor = "mpi"\n'}, [],
     "bad.toml: run.executor: 'mpi' is not one of local, ray, slurm"),
    ("negative seed", {"bad.toml": "[run]\nseed = -1\n"}, [],
     "bad.toml: run.seed: -1 is out of range (>= 0)"),
    ("empty name", {"bad.toml": '[run]\nname = " "\n'}, [],
     "bad.toml: run.name: must not be empty"),
    ("view policy", {"bad.toml": '[views]\npolicy = "x"\n'}, [],
     "bad.toml: views.policy: 'x' is not one of cross_modal, instance"),
    ("view dropout", {"bad.toml": "[views]\nchannel_dropout = 1\n"}, [],
     "bad.toml: views.channel_dropout: 1.0 is out of range ([0, 1))"),
    ("modality dropout with cross-modal views", {"bad.toml": "[views]\nmodality_dropout = 0.2\n"}, [],
     "bad.toml: views.modality_dropout: 0.2 applies to policy 'instance' only; 'cross_modal' already hides "
     "modalities (set it to 0)"),
    ("synthetic level", {"bad.toml": "[data.synthetic]\nimage_levels = 2\n"}, [],
     "bad.toml: data.synthetic.planted_image: 2 is not a level (0..1)"),
    ("synthetic unknown key", {"bad.toml": "[data.synthetic]\nsamples = 2\n"}, [],
     "bad.toml: data.synthetic.samples: unknown key (known: train, dev, test, image_levels, image_channels, "
     "image_side, text_dims, shared_dim, specific_dim, classes, planted_image, planted_text, noise, cross_noise, "
     "leak, seed)"),
    ("unknown dataset", {"bad.toml": '[data]\ndataset = "imdb"\n'}, [],
     "bad.toml: data.dataset: 'imdb' is not one of synthetic, mmimdb, features"),
    ("options of another dataset", {"f.h5": "", "bad.toml": FEATURES + "[data.synthetic]\ntrain = 5\n"}, [],
     "bad.toml: data.synthetic: options of the synthetic dataset, but data.dataset is 'features'"),
    ("features options", {"f.h5": "", "bad.toml": FEATURES + "[data.features]\nx = 1\n"},
     [], "bad.toml: data.features: a features file takes no options"),
    ("mmimdb option", {"m.h5": "", "bad.toml": MMIMDB + "[data.mmimdb]\nmap_sid = 3\n"},
     [], "bad.toml: data.mmimdb.map_sid: unknown key (did you mean map_side?)"),
    ("mmimdb weights missing", {"m.h5": "", "bad.toml": MMIMDB + '[data.mmimdb]\nimage_weights = "vgg.pt"\n'}, [],
     "bad.toml: data.mmimdb.image_weights: vgg.pt: file not found"),
    ("mmimdb pixels", {"m.h5": "", "bad.toml": MMIMDB + '[data.mmimdb]\npixels = "bgr"\n'},
     [], "bad.toml: data.mmimdb.pixels: 'bgr' is not one of auto, rgb, caffe_bgr"),
    ("dataset without path", {"bad.toml": '[data]\ndataset = "features"\n'}, [],
     "bad.toml: data.path: the features dataset needs a file path"),
    ("dataset file missing", {"bad.toml": '[data]\ndataset = "mmimdb"\npath = "mmimdb.h5"\n'}, [],
     "bad.toml: data.path: mmimdb.h5: file not found"),
    ("dataset path is a folder", {"d/x": "", "bad.toml": '[data]\ndataset = "features"\npath = "d"\n'}, [],
     "bad.toml: data.path: d: not a file"),
    ("path for synthetic data", {"bad.toml": '[data]\npath = "x.h5"\n'}, [],
     "bad.toml: data.path: the synthetic dataset is generated; it reads no file"),
    ("toml syntax", {"bad.toml": "[search]\nepochs = = 3\n"}, [],
     "bad.toml: TOML syntax error: Invalid value (at line 2, column 10)"),
    ("not utf-8", {"bad.toml": b"[run]\nname = '\xff'\n"}, [],
     "bad.toml: not UTF-8 text"),
    ("extends not a string", {"bad.toml": "extends = 3\n"}, [],
     "bad.toml: extends: expected a string (a recipe path), got 3"),
    ("extends missing", {"bad.toml": 'extends = "nope.toml"\n'}, [],
     "bad.toml: extends: nope.toml: file not found"),
    ("extends cycle", {"bad.toml": 'extends = "a.toml"\n', "a.toml": 'extends = "bad.toml"\n'}, [],
     "a.toml: extends: cycle bad.toml -> a.toml -> bad.toml"),
    ("extends itself", {"bad.toml": 'extends = "bad.toml"\n'}, [],
     "bad.toml: extends: cycle bad.toml -> bad.toml"),
    ("error named in the parent", {"base.toml": "[search]\nepochs = 0\n", "bad.toml": 'extends = "base.toml"\n'}, [],
     "base.toml: search.epochs: 0 is out of range (> 0)"),
    ("syntax error in the parent", {"base.toml": "[search\n", "bad.toml": 'extends = "base.toml"\n'}, [],
     "base.toml: TOML syntax error: Expected ']' at the end of a table declaration (at line 1, column 8)"),
    ("sweep unknown key", {"bad.toml": '[sweep]\n"search.temprature" = [0.1]\n'}, [],
     "bad.toml: sweep.search.temprature: unknown key (did you mean search.temperature?)"),
    ("sweep empty list", {"bad.toml": "[sweep]\nseed = []\n"}, [],
     "bad.toml: sweep.run.seed: needs at least one value (an empty list makes no runs)"),
    ("sweep not a list", {"bad.toml": "[sweep]\nseed = 3\n"}, [],
     "bad.toml: sweep.run.seed: expected a list of values, got 3"),
    ("sweep value type", {"bad.toml": '[sweep]\nlabel_ratio = [0.1, "a"]\n'}, [],
     "bad.toml: sweep.data.label_ratio[1]: expected a number, got 'a'"),
    ("sweep value range", {"bad.toml": "[sweep]\nlabel_ratio = [0.1, 0]\n"}, [],
     "bad.toml: sweep.data.label_ratio: 0.0 is out of range (0, 1]"),
    ("sweep point breaks another key", {"bad.toml": '[sweep]\n"space.cells" = [2, 1]\n'}, [],
     "bad.toml: sweep point [space.cells=1]: space.cell_multiplier: 2 is out of range (1..1)"),
    ("sweep over the stage", {"bad.toml": '[sweep]\n"run.stage" = ["search"]\n'}, [],
     "bad.toml: sweep.run.stage: cannot be swept (the runs of one sweep share it)"),
    ("sweep key twice", {"bad.toml": '[sweep]\nseed = [0]\n"run.seed" = [1]\n'}, [],
     "bad.toml: sweep.run.seed: given twice (as seed and run.seed)"),
    ("sweep value twice", {"bad.toml": "[sweep]\nseed = [1, 1]\n"}, [],
     "bad.toml: sweep.run.seed: 1 repeats"),
    ("sweep not a table", {"bad.toml": "sweep = [1]\n"}, [],
     "bad.toml: sweep: expected a table ([sweep]) of lists, got [1]"),
    ("pretrain without genotype", {"bad.toml": '[run]\nstage = "pretrain"\n'}, [],
     NEEDS_GENOTYPE),
    ("pipeline without search needs a genotype", {"bad.toml": '[run]\nstages = ["pretrain", "finetune"]\n'}, [],
     NEEDS_GENOTYPE),
    ("genotype file missing", {"bad.toml": '[run]\nstage = "finetune"\ngenotype = "g.json"\n'}, [],
     "bad.toml: run.genotype: g.json: file not found"),
    ("genotype file invalid", {"g.json": "{", "bad.toml": '[run]\nstage = "finetune"\ngenotype = "g.json"\n'}, [],
     "bad.toml: run.genotype: g.json: not valid JSON (line 1 column 2: Expecting property name enclosed in double "
     "quotes)"),
    ("unknown baseline", {"bad.toml": '[run]\nstage = "finetune"\ngenotype = "baseline:darts"\n'}, [],
     "bad.toml: run.genotype: unknown baseline 'darts' (known: bmnas-mmimdb)"),
    ("genotype for a search", {"bad.toml": '[run]\nstage = "search"\ngenotype = "random"\n'}, [],
     "bad.toml: run.genotype: a run that starts with search finds its own genotype (remove it, or set run.stage to "
     "pretrain or finetune)"),
    ("checkpoint for pretrain",
     {"c.pt": "", "bad.toml": '[run]\nstage = "pretrain"\ngenotype = "random"\ncheckpoint = "c.pt"\n'},
     [], "bad.toml: run.checkpoint: only a finetune run starts from a checkpoint (stages: pretrain)"),
    ("checkpoint missing", {"bad.toml": '[run]\nstage = "finetune"\ngenotype = "random"\ncheckpoint = "c.pt"\n'}, [],
     "bad.toml: run.checkpoint: c.pt: file not found"),
    ("stages out of order", {"bad.toml": '[run]\nstages = ["finetune", "search"]\n'}, [],
     "bad.toml: run.stages: ['finetune', 'search'] is not a chain of search, pretrain, finetune (each at most once, "
     "in that order)"),
    ("stages empty", {"bad.toml": "[run]\nstages = []\n"}, [],
     "bad.toml: run.stages: [] is not a chain of search, pretrain, finetune (each at most once, in that order)"),
    ("unknown stage in chain", {"bad.toml": '[run]\nstages = ["search", "eval"]\n'}, [],
     "bad.toml: run.stages: 'eval' is not one of search, pretrain, finetune"),
    ("stages for one stage", {"bad.toml": '[run]\nstage = "search"\nstages = ["search", "finetune"]\n'}, [],
     "bad.toml: run.stages: only a pipeline run lists stages (stage is 'search')"),
    ("set without =", {"bad.toml": ""}, ["search.epochs"],
     "--set search.epochs: expected KEY=VALUE (e.g. search.epochs=5)"),
    ("set unknown key", {"bad.toml": ""}, ["search.epoch=5"],
     "--set search.epoch=5: unknown key search.epoch (did you mean search.epochs?)"),
    ("set unparsable value", {"bad.toml": ""}, ["search.epochs=abc"],
     "--set search.epochs=abc: expected an integer, got 'abc'"),
    ("set wrong type", {"bad.toml": ""}, ["run.tags=3"],
     "--set run.tags=3: expected a list of strings, got 3"),
    ("set broken list", {"bad.toml": ""}, ['run.tags=["a"'],
     "--set run.tags=[\"a\": expected a list of strings, got '[\"a\"'"),
    ("set bool as int", {"bad.toml": ""}, ["run.seed=true"],
     "--set run.seed=true: expected an integer, got true"),
    ("set out of range", {"bad.toml": ""}, ["search.epochs=0"],
     "--set search.epochs=0: 0 is out of range (> 0)"),
    ("set sweep unknown key", {"bad.toml": ""}, ["sweep.sed=[1]"],
     "--set sweep.sed=[1]: unknown key (did you mean seed?)"),
    ("baseline after a search", {"bad.toml": '[finetune]\nmodel = "linear"\n'}, [],
     "bad.toml: finetune.model: 'linear' is a no-search baseline: it needs no search or pretraining (set "
     'run.stage = "finetune")'),
    ("baseline with a genotype",
     {"bad.toml": '[run]\nstage = "finetune"\ngenotype = "random"\n[finetune]\nmodel = "mlp"\n'}, [],
     "bad.toml: run.genotype: finetune.model 'mlp' is a no-search baseline and reads no genotype or checkpoint "
     "(remove it)"),
    ("unknown baseline model", {"bad.toml": '[run]\nstage = "finetune"\n[finetune]\nmodel = "svm"\n'}, [],
     "bad.toml: finetune.model: 'svm' is not one of nas, linear, mlp, late_fusion"),
    ("finetune needs a genotype", {"bad.toml": '[run]\nstage = "finetune"\n'}, [],
     "bad.toml: run.genotype: needed when the run starts with finetune (a genotype JSON file, 'baseline:NAME' or "
     "'random')"),
    ("freeze_encoder is gone", {"bad.toml": "[finetune]\nfreeze_encoder = true\n"}, [],
     'bad.toml: finetune.freeze_encoder: unknown key (replaced by finetune.mode = "probe", "full" or "auto")'),
    ("set a second line", {"bad.toml": ""}, ["search.epochs=5\nlr = 3"],
     "--set search.epochs=5\\nlr = 3: expected an integer, got '5\\nlr = 3'"),
]


@pytest.mark.parametrize("files, overrides, message", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_recipe(in_tmp, files, overrides, message):
    write(in_tmp, files)
    with pytest.raises(RecipeError) as caught:
        load_recipe("bad.toml", overrides)
    assert str(caught.value) == message


def test_bad_recipe_messages_are_one_line():
    assert all("\n" not in message for *_, message in BAD)


def test_missing_recipe_file(in_tmp):
    with pytest.raises(RecipeError, match=r"^nope\.toml: file not found$"):
        load_recipe("nope.toml")


def test_from_dict_checks_like_a_file():
    d = load_recipe(ROOT / "recipes" / "base.toml").to_dict()
    d["search"]["epochs"] = -1
    with pytest.raises(RecipeError, match=r"^<registry>: search\.epochs: -1 is out of range \(> 0\)$"):
        recipe_from_dict(d)
    del d["run"]["name"]
    with pytest.raises(RecipeError, match=r"^<registry>: run\.name: needs a value \(a string\)$"):
        recipe_from_dict(d)
    with pytest.raises(RecipeError, match=r"^<registry>: expected a table of sections, got \[\]$"):
        recipe_from_dict([])


def test_from_dict_does_not_recheck_files(in_tmp):
    write(in_tmp, {"f.h5": "", "r.toml": '[data]\ndataset = "features"\npath = "f.h5"\n'})
    d = load_recipe("r.toml").to_dict()
    (in_tmp / "f.h5").unlink()
    assert recipe_from_dict(d).data.path == str(in_tmp / "f.h5")


# --------------------------------------------------------------------------------------------
# The config dataclasses' own checks, as a recipe reports them.


@pytest.mark.parametrize("values", [
    {"policy": "x"}, {"noise": -0.5}, {"channel_dropout": 1.0}, {"position_mask": -0.1},
    {"policy": "instance", "modality_dropout": 1.0}, {"level_mix": 1.5}, {"modality_dropout": 0.1},
])
def test_view_checks_match_view_config(in_tmp, values):
    from ssnas.config.views import ViewConfig
    from ssnas.errors import ConfigError

    with pytest.raises(ConfigError) as real:
        ViewConfig(**values)
    toml = "\n".join(f"{k} = {v!r}" for k, v in values.items()).replace("'", '"')
    write(in_tmp, {"v.toml": f"[views]\n{toml}\n"})
    with pytest.raises(RecipeError) as ours:
        load_recipe("v.toml")
    assert str(ours.value) == f"v.toml: {real.value}"


@pytest.mark.parametrize("values", [
    {"train": 0}, {"classes": 0}, {"shared_dim": 3}, {"text_dims": []}, {"text_dims": [4, 0]},
    {"planted_image": 4}, {"planted_text": -1}, {"noise": -1.0}, {"leak": -0.5},
])
def test_synthetic_checks_match_synthetic_config(in_tmp, values):
    from ssnas.config.data import SyntheticConfig
    from ssnas.errors import ConfigError

    with pytest.raises(ConfigError) as real:
        SyntheticConfig(**values)
    toml = "\n".join(f"{k} = {v!r}" for k, v in values.items())
    write(in_tmp, {"s.toml": f"[data.synthetic]\n{toml}\n"})
    with pytest.raises(RecipeError) as ours:
        load_recipe("s.toml")
    assert str(ours.value) == f"s.toml: {real.value}"


def test_device_check_matches_runtime(in_tmp):
    from ssnas.config.runtime import Runtime
    from ssnas.errors import ConfigError

    with pytest.raises(ConfigError) as real:
        Runtime(device="tpu")
    with pytest.raises(RecipeError) as ours:
        load_recipe(ROOT / "recipes/base.toml", ["run.device=tpu"])
    assert str(ours.value) == f"--set run.device=tpu: {str(real.value).removeprefix('run.device: ')}"


# --------------------------------------------------------------------------------------------
# Documentation and import cost.


def test_docs_describe_every_key():
    text = (ROOT / "docs" / "recipes.md").read_text()
    missing = [key for key in LEAVES if f"`{key.rsplit('.', 1)[1]}`" not in text]
    assert missing == []
    for table in ("[run]", "[data]", "[data.synthetic]", "[data.mmimdb]", "[space]", "[search]", "[views]",
                  "[pretrain]", "[finetune]", "[sweep]", "extends", "--set"):
        assert table in text


def test_docs_examples_load(in_tmp, features_file):
    shutil.copytree(ROOT / "recipes", in_tmp / "recipes")
    write(in_tmp, {"runs/12/genotype.json": GENOTYPE, "runs/14/checkpoint.pt": "",
                   "data/mmimdb-features.h5": features_file.read_bytes()})
    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / "docs" / "recipes.md").read_text(), re.S)
    assert len(blocks) >= 6
    for i, block in enumerate(blocks):
        if 'extends = "recipes/' in block:
            (in_tmp / f"example{i}.toml").write_text(block)
            assert load_recipe(f"example{i}.toml").run.name == f"example{i}"


def test_recipe_module_imports_no_torch():
    code = ("import sys, ssnas.recipe as r; r.load_recipe(sys.argv[1]); "
            "print([m for m in ('torch', 'torchvision', 'transformers', 'h5py', 'numpy') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code, str(ROOT / "recipes" / "pretrain.toml")],
                          capture_output=True, text=True, check=True, cwd=os.getcwd())
    assert done.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------
# Genotypes bound to the dataset's input nodes by name (run.genotype_nodes).

VIEW_NAMES = "pix[0], pix[1], fou[0], fou[1], zer[0], zer[1]"
ON_VIEWS = ('[run]\nstage = "finetune"\ngenotype = "baseline:bmnas-mmimdb"\n'
            '[data]\ndataset = "features"\npath = "views.h5"\n')
MAPPED = 'genotype_nodes = { "image[2]" = "pix[0]", "text[0]" = "fou[0]" }\n'


@pytest.fixture
def views(in_tmp, views_file):
    """views.h5 (six views: pix, fou, zer) in the working folder, so that messages name it briefly."""
    shutil.copy(views_file, in_tmp / "views.h5")
    return in_tmp


def test_a_genotype_whose_nodes_the_dataset_lacks_is_refused_at_load(views):
    write(views, {"r.toml": ON_VIEWS})
    with pytest.raises(RecipeError) as refused:
        load_recipe("r.toml")
    assert str(refused.value) == (
        "r.toml: run.genotype: genotype bmnas-mmimdb reads input nodes image[2], text[0], which views.h5 does not "
        f'have (its nodes: {VIEW_NAMES}); map them with run.genotype_nodes = {{"image[2]" = "...", "text[0]" = "..."}}')
    write(views, {"s.toml": '[run]\nstage = "pretrain"\ngenotype = "baseline:bmnas-mmimdb"\n'
                            "[data.synthetic]\nimage_levels = 2\nplanted_image = 0\n"})
    with pytest.raises(RecipeError, match=r"^s\.toml: run\.genotype: genotype bmnas-mmimdb reads input nodes "
                                          r"image\[2\], which the synthetic data does not have \(its nodes: "
                                          r"image\[0\], image\[1\], text\[0\], text\[1\]\); map them with"):
        load_recipe("s.toml")
    assert load_recipe("s.toml", ["data.synthetic.image_levels=3"]).run.genotype == "baseline:bmnas-mmimdb"


def test_genotype_nodes_bind_it_and_show_and_round_trip(views):
    write(views, {"r.toml": ON_VIEWS.replace("[data]", MAPPED + "[data]")})
    recipe = load_recipe("r.toml")
    assert recipe.run.genotype_nodes == {"image[2]": "pix[0]", "text[0]": "fou[0]"}
    assert recipe_from_dict(json.loads(json.dumps(recipe.to_dict())), recipe.path) == recipe
    text = format_recipe(recipe)
    assert 'genotype_nodes = {"image[2]" = "pix[0]", "text[0]" = "fou[0]"}' in text
    (views / "shown.toml").write_text(text)
    assert load_recipe("shown.toml").to_dict() == recipe.to_dict()
    set_there = load_recipe("r.toml", ['run.genotype_nodes={"image[2]" = "zer[1]", "text[0]" = "fou[1]"}'])
    assert set_there.run.genotype_nodes == {"image[2]": "zer[1]", "text[0]": "fou[1]"}


def test_genotype_nodes_in_an_arm_and_a_sweep(views):
    write(views, {"r.toml": ON_VIEWS.replace('[run]\nstage = "finetune"\ngenotype = "baseline:bmnas-mmimdb"\n', "")
                  + '[arms.ssl]\n'
                  + '[arms.bmnas]\n"run.stages" = ["finetune"]\n"run.genotype" = "baseline:bmnas-mmimdb"\n'
                  + '"run.genotype_nodes" = { "image[2]" = "pix[0]", "text[0]" = "fou[0]" }\n'
                  + '[sweep]\n"data.label_ratio" = [0.5, 1.0]\n'})
    ssl, _, bmnas, _ = expand_sweep(load_recipe("r.toml"))
    assert ssl.run.genotype_nodes is None and bmnas.run.genotype_nodes == MAPPING_TABLE
    write(views, {"s.toml": ON_VIEWS.replace("[data]", MAPPED + "[data]")
                  + '[sweep]\n"run.genotype_nodes" = [{ "image[2]" = "pix[0]", "text[0]" = "fou[0]" },'
                    ' { "image[2]" = "pix[1]", "text[0]" = "zer[0]" }]\n'})
    runs = expand_sweep(load_recipe("s.toml"))
    assert runs[1].run.name == "s[run.genotype_nodes={image[2]:pix[1],text[0]:zer[0]}]"


MAPPING_TABLE = {"image[2]": "pix[0]", "text[0]": "fou[0]"}
BAD_MAPPINGS = [
    ("unknown genotype node", 'genotype_nodes = { "image[9]" = "pix[0]" }\n',
     "r.toml: run.genotype_nodes: 'image[9]' is not an input node of genotype bmnas-mmimdb (its nodes: image[0], "
     "image[1], image[2], image[3], text[0], text[1])"),
    ("unknown dataset node", 'genotype_nodes = { "image[2]" = "pix[7]", "text[0]" = "fou[0]" }\n',
     f"r.toml: run.genotype_nodes: 'pix[7]' is not an input node of views.h5 (its nodes: {VIEW_NAMES})"),
    ("two onto one", 'genotype_nodes = { "image[2]" = "pix[0]", "text[0]" = "pix[0]" }\n',
     "r.toml: run.genotype_nodes: image[2] and text[0] both map onto pix[0]"),
    ("not a table", 'genotype_nodes = "pix[0]"\n',
     "r.toml: run.genotype_nodes: expected a table of node names (genotype node = dataset node, e.g. "
     "{\"image[2]\" = \"pix[0]\"}), got 'pix[0]'"),
    ("a table of numbers", 'genotype_nodes = { "image[2]" = 0 }\n',
     "r.toml: run.genotype_nodes: expected a table of node names (genotype node = dataset node, e.g. "
     "{\"image[2]\" = \"pix[0]\"}), got a table"),
    ("partial", 'genotype_nodes = { "image[2]" = "pix[0]" }\n',
     "r.toml: run.genotype: genotype bmnas-mmimdb reads input nodes text[0], which views.h5 does not have "
     f'(its nodes: {VIEW_NAMES}); map them with run.genotype_nodes = {{"text[0]" = "..."}}'),
]


@pytest.mark.parametrize("mapping, message", [case[1:] for case in BAD_MAPPINGS], ids=[c[0] for c in BAD_MAPPINGS])
def test_bad_genotype_nodes_are_one_line_naming_the_key(views, mapping, message):
    write(views, {"r.toml": ON_VIEWS.replace("[data]", mapping + "[data]")})
    with pytest.raises(RecipeError) as refused:
        load_recipe("r.toml")
    assert str(refused.value) == message


def test_genotype_nodes_need_a_genotype_file_or_baseline(views):
    write(views, {"r.toml": ON_VIEWS.replace("baseline:bmnas-mmimdb", "random").replace("[data]", MAPPED + "[data]"),
                  "s.toml": ON_VIEWS.replace('stage = "finetune"\ngenotype = "baseline:bmnas-mmimdb"\n', MAPPED)})
    with pytest.raises(RecipeError, match=r"^r\.toml: run\.genotype_nodes: maps the nodes of a genotype file or "
                                          r"baseline to the dataset's; a random genotype is drawn on the dataset's "
                                          r"own nodes$"):
        load_recipe("r.toml")
    with pytest.raises(RecipeError, match=r"^s\.toml: run\.genotype_nodes: .*; this run has no run\.genotype$"):
        load_recipe("s.toml")
    assert load_recipe("r.toml", ["run.genotype_nodes={}"]).run.genotype == "random"


def test_a_features_file_that_cannot_name_its_nodes_is_refused_when_a_genotype_needs_them(in_tmp):
    write(in_tmp, {"views.h5": "", "r.toml": ON_VIEWS})
    with pytest.raises(RecipeError, match=r"^r\.toml: data\.path: views\.h5: not an HDF5 file$"):
        load_recipe("r.toml")
    assert load_recipe("r.toml", ["run.genotype=random"]).run.genotype == "random"  # drawn on the nodes it finds


def test_binding_a_genotype_to_a_features_file_at_load_imports_no_torch(views):
    write(views, {"r.toml": ON_VIEWS.replace("[data]", MAPPED + "[data]")})
    code = ("import sys, ssnas.recipe as r; r.load_recipe('r.toml'); "
            "print([m for m in ('torch', 'torchvision', 'transformers') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=views)
    assert done.stdout.strip() == "[]"


def test_a_config_stored_before_finetune_mode_reads_as_the_same_run():
    stored = load_recipe(ROOT / "recipes/finetune.toml").to_dict()
    for frozen, mode in ((True, "probe"), (False, "full")):
        old = json.loads(json.dumps(stored))
        del old["finetune"]["mode"]
        old["finetune"]["freeze_encoder"] = frozen
        assert recipe_from_dict(old).finetune["mode"] == mode
