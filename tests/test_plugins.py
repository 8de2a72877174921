"""Plugins through entry points (ssnas.plugins; docs/plugins.md), with a toy plugin package written into a
folder on sys.path / PYTHONPATH: its modules beside a `*.dist-info` folder, as `pip install` would leave them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from ssnas import plugins
from ssnas.cli import main
from ssnas.errors import RecipeError
from tests.e2e import runs_json, ssnas

HEAVY = ("torch", "torchvision", "transformers", "tensorboard", "textual", "ray")

TOY_OPS = '''
"""Torch-side objects: a primitive, a loss and a view policy."""
import torch
import torch.nn.functional as F
from torch import nn


class GatedSum(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(channels))

    def forward(self, x, y):
        return x + torch.sigmoid(self.gate) * y


def gated_sum(channels, positions, dropout):
    return GatedSum(channels)


def neg_cosine(z_a, z_b, temperature):
    """Minus the views' cosine similarity, shifted by -10 so that a test can tell it from NT-Xent's (> 0)."""
    return -F.cosine_similarity(z_a, z_b).mean() - 10.0


def jitter(nodes, node_modality, config, generator):
    def view():
        return [x + config.noise * torch.randn(x.shape, generator=generator).to(x) for x in nodes]
    return view(), view()
'''

TOY_DATA = '''
"""The toy dataset: torch is imported only by `load`, so naming its nodes stays light."""


class ToyData:
    @staticmethod
    def node_names(path, options):
        return ("audio[0]", "audio[1]", "video[0]")

    @staticmethod
    def check(path, options, needs):
        rows = options.get("rows", 96)
        if rows * 0.6 < needs.min_rows.get("train", 0):
            from ssnas.errors import DatasetError
            raise DatasetError(f"toy: rows: {rows} is too few")
        return [f"toy: {rows} random rows"]

    @staticmethod
    def load(path, options):
        import torch

        from ssnas.data.pyramids import FeatureSet

        n = options.get("rows", 96)
        g = torch.Generator().manual_seed(0)
        shared = torch.randn(n, 4, generator=g)
        audio = [torch.cat([shared, torch.randn(n, 4, generator=g)], 1), torch.randn(n, 6, generator=g)]
        video = [torch.cat([shared, torch.randn(n, 2, generator=g)], 1)[:, :, None, None].expand(n, 6, 2, 2)]
        order = torch.randperm(n, generator=g)
        train, dev = int(0.6 * n), int(0.8 * n)
        splits = {"train": order[:train], "dev": order[train:dev], "test": order[dev:]}
        labels = (shared[:, :3] > 0).float()
        return FeatureSet(("audio", "video"), [audio, video], splits, labels=labels, source="toy")
'''

TOY_SINK = '''
"""A tracking sink that appends what it is given to a JSON-lines file in the run's folder."""
import json


class JsonlSink:
    def __init__(self, run_id, run_dir, config):
        self.file = open(run_dir / "toy_sink.jsonl", "a")
        self.file.write(json.dumps({"opened": run_id, "name": config["run"]["name"]}) + "\\n")

    def add_metrics(self, rows):
        for row in rows:
            self.file.write(json.dumps({"metric": row.key, "split": row.split, "step": row.step, "value": row.value})
                            + "\\n")

    def add_events(self, rows):
        for row in rows:
            self.file.write(json.dumps({"event": row.message, "level": row.level}) + "\\n")

    def close(self):
        self.file.write(json.dumps({"closed": True}) + "\\n")
        self.file.close()
'''

TOY_ENTRY_POINTS = """
[ssnas.primitives]
gated_sum = toy_plugin.ops:gated_sum

[ssnas.datasets]
toy = toy_plugin.data:ToyData

[ssnas.objectives]
neg_cosine = toy_plugin.ops:neg_cosine

[ssnas.view_policies]
jitter = toy_plugin.ops:jitter

[ssnas.tracking_sinks]
jsonl = toy_plugin.sink:JsonlSink
"""

TOY_RECIPE = """
[run]
name = "toy"
stage = "{stage}"
device = "cpu"
sinks = ["jsonl"]

[data]
dataset = "toy"
batch_size = 24

[data.toy]
rows = 120

[space]
channels = 8
positions = 4
primitives = ["zero", "gated_sum"]

[search]
epochs = 1
min_steps = 0
ssl_loss = "neg_cosine"

[views]
policy = "jitter"

[pretrain]
epochs = 1
min_steps = 0
ssl_loss = "neg_cosine"

[finetune]
epochs = 1
min_steps = 0
mode = "full"
"""


def write_distribution(site: Path, name: str, entry_points: str, modules: dict[str, str]) -> None:
    """What `pip install` leaves in site-packages: the modules, and NAME-VERSION.dist-info with the metadata."""
    for module, source in modules.items():
        path = site / module
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def on_path(monkeypatch):
    """Puts a folder on sys.path and PYTHONPATH (so that subprocesses, workers among them, see it too); the
    plugin cache is emptied then and at the end, and the modules imported from the folder are forgotten."""
    folders = []

    def put(folder: Path) -> Path:
        monkeypatch.syspath_prepend(str(folder))
        monkeypatch.setenv("PYTHONPATH", str(folder))
        plugins.rescan()
        folders.append(str(folder))
        return folder

    yield put
    plugins.rescan()
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None)).startswith(tuple(folders)):
            del sys.modules[name]


@pytest.fixture
def site(tmp_path, on_path):
    """A folder on the path holding the toy plugin, installed."""
    folder = tmp_path / "site"
    folder.mkdir()
    write_distribution(folder, "ssnas-toy-plugin", TOY_ENTRY_POINTS, {
        "toy_plugin/__init__.py": "", "toy_plugin/ops.py": TOY_OPS, "toy_plugin/data.py": TOY_DATA,
        "toy_plugin/sink.py": TOY_SINK})
    return on_path(folder)


def recipe_file(folder: Path, stage: str = "search", extra: str = "") -> Path:
    path = folder / f"toy_{stage}.toml"
    path.write_text(TOY_RECIPE.format(stage=stage) + extra)
    return path


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_plugins_lists_every_group_from_metadata_without_importing_a_plugin(site, tmp_path):
    done = ssnas(tmp_path / "runs", "plugins", "--json", check=True)
    rows = {(row["group"], row["name"]): row for row in json.loads(done.stdout)}
    assert set(rows) == {("ssnas.primitives", "gated_sum"), ("ssnas.datasets", "toy"),
                         ("ssnas.objectives", "neg_cosine"), ("ssnas.view_policies", "jitter"),
                         ("ssnas.tracking_sinks", "jsonl")}
    assert rows[("ssnas.datasets", "toy")] == {"group": "ssnas.datasets", "name": "toy",
                                               "distribution": "ssnas-toy-plugin", "version": "0.1",
                                               "object": "toy_plugin.data:ToyData"}
    table = ssnas(tmp_path / "runs", "plugins", check=True).stdout.splitlines()
    assert table[0].split() == ["group", "name", "distribution", "version", "object"]
    assert table[1].split() == ["ssnas.primitives", "gated_sum", "ssnas-toy-plugin", "0.1", "toy_plugin.ops:gated_sum"]
    listed = run_python("import sys\nfrom ssnas.cli import main\ntry:\n    main(['plugins'])\nexcept SystemExit:\n"
                        "    pass\nprint([m for m in sys.modules if m.startswith('toy_plugin') or m in "
                        f"{HEAVY!r}], file=sys.stderr)")
    assert listed.stderr.strip() == "[]"
    checked = ssnas(tmp_path / "runs", "plugins", "--check", "--csv", check=True).stdout.splitlines()
    assert checked[0] == "group,name,distribution,version,object,check"
    assert all(line.endswith(",ok") for line in checked[1:]) and len(checked) == 6


def test_a_recipe_naming_plugins_validates_without_torch_or_the_plugin(site, tmp_path):
    recipe = recipe_file(tmp_path)
    code = (f"import sys\nfrom ssnas.recipe import load_recipe\nr = load_recipe({str(recipe)!r})\n"
            "print(r.space['primitives'], r.data.dataset, r.data.options, r.search['ssl_loss'], r.views['policy'], "
            "list(r.run.sinks))\n"
            f"print([m for m in sys.modules if m.startswith('toy_plugin') or m in {HEAVY!r}])")
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["['zero', 'gated_sum'] toy {'rows': 120} neg_cosine jitter ['jsonl']", "[]"]


def test_the_resolved_recipe_keeps_the_plugin_datasets_table(site, tmp_path):
    from ssnas.recipe import load_recipe, recipe_from_dict

    recipe = load_recipe(recipe_file(tmp_path))
    stored = json.loads(json.dumps(recipe.to_dict()))
    assert stored["data"]["toy"] == {"rows": 120} and "plugin_options" not in stored["data"]
    assert recipe_from_dict(stored, recipe.path) == recipe
    path = recipe_file(tmp_path, extra="\n[data.synthetic]\ntrain = 10\n")
    with pytest.raises(RecipeError, match=r"data.synthetic: options of the synthetic dataset, but data.dataset "
                                          r"is 'toy'"):
        load_recipe(path)
    path.write_text(TOY_RECIPE.format(stage="search").replace("rows = 120", "rows = 1979-05-27"))
    with pytest.raises(RecipeError, match=r"data.toy.rows: .* is not a string, number, boolean, list or table"):
        load_recipe(path)


def test_unknown_names_are_refused_with_the_plugins_among_the_known(site, tmp_path):
    from ssnas.recipe import load_recipe

    recipe = recipe_file(tmp_path)
    cases = {
        "space.primitives=['zero', 'gated_sun']": "unknown ['gated_sun'] (known: zero, sum, attention, linear_glu, "
                                                  "concat_fc, concat_conv_mish, product, gated_sum)",
        "data.dataset=toys": "'toys' is not one of synthetic, mmimdb, features, toy",
        "search.ssl_loss=cosine": "'cosine' is not one of nt_xent, neg_cosine",
        "pretrain.ssl_loss=cosine": "'cosine' is not one of nt_xent, neg_cosine",
        "views.policy=jiter": "'jiter' is not one of cross_modal, instance, jitter",
        "run.sinks=['wandb']": "'wandb' is not a tracking sink (installed: jsonl)",
        "run.sinks=['jsonl', 'jsonl']": "'jsonl' repeats",
    }
    for override, problem in cases.items():
        with pytest.raises(RecipeError) as caught:
            load_recipe(recipe, [override])
        assert str(caught.value) == f"--set {override}: {problem}"


def test_a_pipeline_runs_the_plugins_end_to_end_in_its_workers(site, tmp_path):
    """The workers (subprocesses of the runs folder's scheduler) find the plugins through the same metadata:
    the plugin's data, views and loss drive the search and the pretraining, the derived genotype fuses with
    the plugin's primitive, and every stage's metrics and events reach the plugin's sink."""
    from ssnas.registry import Registry

    runs = tmp_path / "runs"
    done = ssnas(runs, "run", str(recipe_file(tmp_path, stage="pipeline")), check=True)
    assert "toy: 120 random rows" in done.stdout + done.stderr  # the dataset's own preflight check
    by_stage = {run["stage"]: run for run in runs_json(runs)}
    assert {run["status"] for run in by_stage.values()} == {"finished"} and len(by_stage) == 3
    genotype = json.loads((runs / by_stage["search"]["id"] / "genotype.json").read_text())
    assert genotype["input_names"] == ["audio[0]", "audio[1]", "video[0]"]
    assert {step["primitive"] for cell in genotype["cells"] for step in cell["steps"]} == {"gated_sum"}
    registry = Registry(runs / "registry.db")
    for stage in ("search", "pretrain"):
        losses = [m["value"] for m in registry.metrics(by_stage[stage]["id"], key="loss", split="train")]
        assert losses and max(losses) < -8, stage  # neg_cosine, not NT-Xent
    for stage, run in by_stage.items():
        lines = [json.loads(line) for line in (runs / run["id"] / "toy_sink.jsonl").read_text().splitlines()]
        assert lines[0] == {"opened": run["id"], "name": "toy"} and lines[-1] == {"closed": True}, stage
        assert {"metric": "loss", "split": "train"}.items() <= next(r for r in lines if "metric" in r).items()
        assert any("event" in r for r in lines), stage


def test_a_plugin_name_taken_twice_names_both_distributions(site, tmp_path):
    from ssnas.recipe import load_recipe

    write_distribution(site, "other-plugin", "[ssnas.primitives]\ngated_sum = other:op\n", {})
    plugins.rescan()
    with pytest.raises(plugins.PluginError) as caught:
        load_recipe(recipe_file(tmp_path))
    later, earlier = sorted(["other-plugin", "ssnas-toy-plugin"], key=str(caught.value).index)  # metadata order
    assert str(caught.value) == (f"ssnas.primitives: plugin 'gated_sum' of {later} 0.1 collides with 'gated_sum' "
                                 f"of {earlier} 0.1; uninstall one of them")
    done = ssnas(tmp_path / "runs", "plugins")
    assert done.returncode == 2 and "collides with 'gated_sum'" in done.stderr


def test_a_plugin_named_like_a_built_in_is_refused(site):
    write_distribution(site, "shadow", "[ssnas.datasets]\nsynthetic = shadow:Data\n", {})
    plugins.rescan()
    with pytest.raises(plugins.PluginError, match=r"^ssnas.datasets: plugin 'synthetic' of shadow 0.1 collides "
                                                  r"with 'synthetic' of ssnas \(built in\)"):
        plugins.known_names(plugins.DATASETS_GROUP)


def test_a_plugin_that_fails_to_import_is_one_line_naming_it(site, tmp_path):
    write_distribution(site, "broken-plugin", "[ssnas.objectives]\nbroken = toy_broken:loss\n",
                       {"toy_broken.py": "import a_module_nobody_installed\n"})
    plugins.rescan()
    done = ssnas(tmp_path / "runs", "plugins", "--check")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "ssnas.objectives: plugin 'broken' of broken-plugin 0.1 failed to load (toy_broken:loss): "
        "ModuleNotFoundError: No module named 'a_module_nobody_installed'",
        "Error: 1 of 6 plugins failed to load"]
    assert ["ssnas.objectives", "broken", "broken-plugin", "0.1", "toy_broken:loss", "failed"] in [
        line.split() for line in done.stdout.splitlines()]
    with pytest.raises(plugins.PluginError, match="failed to load"):
        from ssnas.objectives import ssl_loss

        ssl_loss("broken")


def test_a_primitive_plugin_must_build_a_module(site):
    from ssnas.nas.primitives import build_primitive

    write_distribution(site, "odd-plugin", "[ssnas.primitives]\nnot_a_module = odd:make\nnot_callable = odd:N\n",
                       {"odd.py": "N = 3\ndef make(channels, positions, dropout):\n    return 'x'\n"})
    plugins.rescan()
    with pytest.raises(plugins.PluginError, match=r"plugin 'not_a_module' of odd-plugin 0.1 built a str, not a "
                                                  r"torch.nn.Module"):
        build_primitive("not_a_module", 8, 4)
    with pytest.raises(plugins.PluginError, match=r"plugin 'not_callable' of odd-plugin 0.1 is a int, not a factory"):
        build_primitive("not_callable", 8, 4)
    assert build_primitive("gated_sum", 8, 4).gate.shape == (8,)


def test_a_dataset_whose_load_disagrees_with_its_node_names_is_refused(site):
    from ssnas.data.dataset_nodes import dataset_node_names
    from ssnas.data.datasets import load_dataset

    assert dataset_node_names("toy", None, {}) == ("audio[0]", "audio[1]", "video[0]")
    assert load_dataset("toy", None, {"rows": 30}).node_names == ("audio[0]", "audio[1]", "video[0]")
    source = TOY_DATA.replace('return ("audio[0]", "audio[1]", "video[0]")', 'return ("audio[0]", "video[0]")')
    write_distribution(site, "liar", "[ssnas.datasets]\nliar = toy_liar:ToyData\n", {"toy_liar.py": source})
    plugins.rescan()
    with pytest.raises(plugins.PluginError, match=r"plugin 'liar' of liar 0.1 load gave the nodes \['audio\[0\]', "
                                                  r"'audio\[1\]', 'video\[0\]'\], but node_names says"):
        load_dataset("liar", None, {})


def test_preflight_refuses_what_the_datasets_check_refuses(site, tmp_path):
    path = recipe_file(tmp_path)
    path.write_text(TOY_RECIPE.format(stage="search").replace("rows = 120", "rows = 4"))
    done = CliRunner().invoke(main, ["--runs", str(tmp_path / "runs"), "run", str(path)])
    assert done.exit_code == 2
    assert done.output.strip() == f"Error: {path}: toy: rows: 4 is too few"
    assert not (tmp_path / "runs" / "registry.db").exists() or runs_json(tmp_path / "runs") == []


def test_the_example_package_of_the_docs_installs_and_works(tmp_path, on_path):
    """docs/plugins.md's example package, written from its code blocks, installed with pip (offline) into a
    folder, and used by its own recipe."""
    import numpy as np
    import torch

    from ssnas.data.datasets import load_dataset
    from ssnas.nas.primitives import build_primitive
    from ssnas.objectives import ssl_loss
    from ssnas.preflight import StageRun, check_stages
    from ssnas.recipe import load_recipe

    text = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    files = dict(re.findall(r"```\w+\n# ((?:my_plugin/)?[\w/.]+)\n(.*?)```", text, re.S))
    assert {"my_plugin/pyproject.toml", "my_plugin/ssnas_example/ops.py", "my_plugin/ssnas_example/data.py",
            "gated.toml"} <= set(files)
    for name, body in {**files, "my_plugin/ssnas_example/__init__.py": ""}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(tmp_path / "site"), str(tmp_path / "my_plugin")],
                   check=True, capture_output=True, timeout=300)
    on_path(tmp_path / "site")
    assert ssnas(tmp_path / "runs", "plugins", "--check").returncode == 0

    rng = np.random.default_rng(0)
    arrays = {"audio_0": rng.normal(size=(40, 5)), "audio_1": rng.normal(size=(40, 3, 4)),
              "video_0": rng.normal(size=(40, 4, 2, 2)), "text_0": rng.normal(size=(40, 6)),
              "train": np.arange(24), "dev": np.arange(24, 32), "test": np.arange(32, 40)}
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "my_views.npz", **{k: v.astype("float32") if v.ndim > 1 else v
                                                   for k, v in arrays.items()})
    recipe = load_recipe(tmp_path / "gated.toml", ["space.channels=8", "space.positions=4"])
    assert check_stages([StageRun(recipe, "search")]) == []
    features = load_dataset(recipe.data.dataset, recipe.data.path, recipe.data.options)
    assert features.node_names == ("audio[0]", "audio[1]", "video[0]")  # data.npz.modalities leaves text out
    fused = build_primitive("gated_sum", 8, 4)(torch.ones(2, 4, 8), torch.ones(2, 4, 8))
    assert torch.allclose(fused, torch.full((2, 4, 8), 1.5))
    z = torch.randn(16, 4, requires_grad=True)
    ssl_loss(recipe.search_config().ssl_loss)(z, z + 0.1, 0.1).backward()
    assert z.grad is not None
    (tmp_path / "no_path.toml").write_text(files["gated.toml"].replace('path = "data/my_views.npz"', ""))
    with pytest.raises(RecipeError, match=r"no_path.toml: data.path: the npz dataset \(ssnas-example 0.1\) needs a "
                                          r"path$"):
        check_stages([StageRun(load_recipe(tmp_path / "no_path.toml"), "search")])


@pytest.mark.slow
def test_a_ray_worker_finds_the_plugins_installed_on_its_node(site, tmp_path):
    """A one-node Ray cluster started with the plugin on its PYTHONPATH (as an installed plugin would be on
    every node): the run's worker on the node builds the plugin's primitive, data, views and loss, and its
    sink's file reaches the head with the run's other files."""
    pytest.importorskip("ray")
    from tests.test_ray_executor import Cluster, free_port

    temp = Path(tempfile.mkdtemp(prefix="ssnas-ray-"))  # short: Ray's socket paths live under it
    port = free_port()
    cluster = Cluster(f"127.0.0.1:{port}", {}, temp)
    try:
        cluster.start("head", "--head", "--port", str(port), "--num-cpus", "1", "--temp-dir", str(temp),
                      "--include-dashboard=false", "--dashboard-port", str(free_port()),
                      "--ray-client-server-port", str(free_port()))
        runs = tmp_path / "runs"
        ssnas(runs, "run", str(recipe_file(tmp_path)), "--executor", "ray", "--address", cluster.address, check=True)
        (run,) = runs_json(runs)
        assert run["status"] == "finished" and run["executor"] == "ray" and run["node"] == "head"
        genotype = json.loads((runs / run["id"] / "genotype.json").read_text())
        assert {step["primitive"] for cell in genotype["cells"] for step in cell["steps"]} == {"gated_sum"}
        sink = (runs / run["id"] / "toy_sink.jsonl").read_text().splitlines()
        assert json.loads(sink[-1]) == {"closed": True}
    finally:
        for name in list(cluster.nodes):
            cluster.kill(name)
        shutil.rmtree(temp, ignore_errors=True)
