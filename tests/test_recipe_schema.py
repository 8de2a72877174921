"""A recipe's keys are the fields of the config dataclasses (ssnas/recipe/schema.py, kinds.py): every field
is a key that takes its default, a field added to a dataclass is a key with no other change, and loading
any recipe imports no torch."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ssnas.config.data import MMIMDBOptions, SyntheticConfig
from ssnas.config.kinds import FilePath, GenotypeRef
from ssnas.config.runtime import Runtime
from ssnas.config.stages import FinetuneConfig, PretrainConfig, SearchConfig
from ssnas.config.views import ViewConfig
from ssnas.nas.space import SpaceConfig
from ssnas.recipe import LEAVES, DataSection, RunSection, load_recipe
from ssnas.recipe.kinds import coerce, kind_of
from ssnas.recipe.messages import Invalid

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "torchvision", "transformers")

# Each config dataclass and the recipe table that holds its fields (a stage config's batch_size and
# label_ratio are [data]'s, shared by every stage).
TABLES = [(RunSection, "run"), (Runtime, "run"), (DataSection, "data"), (SpaceConfig, "space"),
          (SearchConfig, "search"), (ViewConfig, "views"), (PretrainConfig, "pretrain"),
          (FinetuneConfig, "finetune"), (SyntheticConfig, "data.synthetic"), (MMIMDBOptions, "data.mmimdb")]
DATA_KEYS = {f.name for f in dataclasses.fields(DataSection)}


def field_keys():
    for cls, table in TABLES:
        for f in dataclasses.fields(cls):
            if "table" in f.metadata:  # DataSection.synthetic / .mmimdb: the subtables, walked on their own
                continue
            shared = cls in (SearchConfig, PretrainConfig, FinetuneConfig) and f.name in DATA_KEYS
            yield pytest.param(f"data.{f.name}" if shared else f"{table}.{f.name}", f,
                               id=f"{cls.__name__}.{f.name}")


@pytest.mark.parametrize("key, field", field_keys())
def test_every_config_field_is_a_recipe_key_that_takes_its_default(tmp_path, monkeypatch, key, field):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.h5").write_text("")
    mmimdb = key.startswith("data.mmimdb.")
    (tmp_path / "r.toml").write_text('[data]\ndataset = "mmimdb"\npath = "m.h5"\n' if mmimdb else "")
    assert key in LEAVES
    default = field.default
    if default is dataclasses.MISSING:  # run.name: the file's name unless set
        assert load_recipe("r.toml", [f'{key}="chosen"']).run.name == "chosen"
        return
    plain = list(default) if isinstance(default, tuple) else default
    resolved = load_recipe("r.toml", [] if default is None else [f"{key}={json.dumps(plain)}"]).to_dict()
    table, _, name = key.rpartition(".")
    for part in table.split("."):
        resolved = resolved[part]
    assert resolved[name] == plain


# A field added to one dataclass, in a fresh interpreter: the subclass stands in for the class before the
# recipe modules import it. Runtime's fields reach [run] through RunSection, which extends it.
ADDED = [("ssnas.config.views", "ViewConfig", "views"), ("ssnas.config.runtime", "Runtime", "run"),
         ("ssnas.config.data", "SyntheticConfig", "data.synthetic"), ("ssnas.config.stages", "SearchConfig", "search")]


@pytest.mark.parametrize("module, name, table", ADDED, ids=[a[1] for a in ADDED])
def test_a_field_added_to_a_config_dataclass_is_a_recipe_key(tmp_path, module, name, table):
    code = (
        "import dataclasses, sys, importlib\n"
        f"module = importlib.import_module({module!r})\n"
        f"base = module.{name}\n"
        f"module.{name} = dataclasses.make_dataclass({name!r}, [('added_knob', float, 0.5)], bases=(base,),\n"
        "                                              frozen=True)\n"
        "from ssnas.recipe import format_recipe, load_recipe\n"
        "open('r.toml', 'w').write('')\n"
        "shown = format_recipe(load_recipe('r.toml'))\n"
        f"assert '[{table}]' in shown and 'added_knob = 0.5' in shown, shown\n"
        f"recipe = load_recipe('r.toml', ['{table}.added_knob=2'])\n"
        "print(recipe.to_dict()" + "".join(f"[{part!r}]" for part in table.split(".")) + "['added_knob'])\n"
        f"load_recipe('r.toml', ['{table}.added_knob=\"x\"'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.stdout.strip() == "2.0", done.stderr
    assert done.stderr.strip().endswith(f"RecipeError: --set {table}.added_knob=\"x\": expected a number, got 'x'")


def test_loading_every_shipped_recipe_and_building_its_configs_imports_no_torch(tmp_path):
    from ssnas.data.features import write_features
    from ssnas.data.synthetic import make_synthetic

    data = SyntheticConfig(train=32, dev=16, test=16, image_channels=8, image_side=2, text_dims=(6, 10), classes=5)
    features = write_features(make_synthetic(data), tmp_path / "features.h5")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import ssnas.recipe as r\n"
        "from ssnas.config.data import MMIMDBOptions, SyntheticConfig\n"
        "for path in sorted(Path(sys.argv[1]).glob('*.toml')):\n"
        "    placeholder = path.name in ('paper_mmimdb.toml', 'paper_real.toml')  # data.path names no shipped file\n"
        "    overrides = [f'data.path={sys.argv[2]}'] if placeholder else []\n"
        "    recipe = r.load_recipe(path, overrides)\n"
        "    r.format_recipe(recipe)\n"
        "    for run in r.expand_sweep(recipe):\n"
        "        run.space_config(), run.search_config(), run.pretrain_config(), run.finetune_config()\n"
        "        run.views_config(), run.runtime_config()\n"
        "        options = {'synthetic': SyntheticConfig, 'mmimdb': MMIMDBOptions}.get(run.data.dataset)\n"
        "        options and options(**run.data.options)\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(ROOT / "recipes"), str(features)],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------
# Kinds: what a key takes, from its field's type hint.


@pytest.mark.parametrize("hint, text", [
    (int, "an integer"), (float, "a number"), (bool, "true or false"), (str | None, "a string"),
    (tuple[str, ...], "a list of strings"), (tuple[int, int] | None, "a list of two integers"),
    (FilePath | None, "a string (a file path)"),
    (GenotypeRef, "a string (a genotype JSON path, 'baseline:NAME' or 'random')"),
])
def test_a_kind_says_what_it_takes(hint, text):
    assert kind_of(hint).text() == text


@pytest.mark.parametrize("hint", [list[int], set[str], int | str, dict[str, int], tuple[int, str], object])
def test_a_field_of_a_type_no_recipe_can_write_is_refused_when_the_schema_is_built(hint):
    with pytest.raises(TypeError, match="recipe key"):
        kind_of(hint)


def test_coerce_keeps_the_json_form_and_names_the_key():
    assert coerce(kind_of(float), 3, "k") == 3.0
    assert coerce(kind_of(tuple[int, ...]), (1, 2), "k") == [1, 2]
    assert coerce(kind_of(int | None), None, "k") is None
    with pytest.raises(Invalid, match=r"^k: expected an integer, got true$"):
        coerce(kind_of(int), True, "k")
    with pytest.raises(Invalid, match=r"^k: needs a value \(a list of strings\)$"):
        coerce(kind_of(tuple[str, ...]), None, "k")

