"""`ssnas report` on a miniature paper sweep run end to end: 4 arms x 2 label ratios x 1 seed, real workers."""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ssnas.cli import main
from ssnas.commands import report as report_commands
from ssnas.registry import Registry
from tests.e2e import RECIPES, TINY, ssnas

ARMS = ("ssl", "supervised", "bmnas", "random")
RATIOS = (0.5, 1.0)
MINI_PAPER = """
[sweep]
label_ratio = [0.5, 1.0]
seed = [0]

[arms.ssl]

[arms.supervised]
"search.objective" = "supervised"
"run.stages" = ["search", "finetune"]

[arms.bmnas]
"run.stages" = ["finetune"]
"run.genotype" = "baseline:bmnas-mmimdb"

[arms.random]
"run.stages" = ["pretrain", "finetune"]
"run.genotype" = "random"
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The sweep's runs folder and group id; then two chains that did not finish, added by hand."""
    folder = tmp_path_factory.mktemp("report")
    recipe = folder / "mini_paper.toml"
    recipe.write_text(TINY.format(base=RECIPES / "base.toml", stage="pipeline", epochs=2).replace(
        '[run]\nname = "tiny"', '[run]\nname = "mini_paper"\ntags = ["mini"]') + MINI_PAPER)
    runs = folder / "runs"
    done = ssnas(runs, "run", str(recipe), "--max-parallel", "2", check=True)
    group = done.stdout.split()[1].rstrip(":")
    with Registry(runs / "registry.db", create=False) as registry:
        config = registry.runs(group=group, stage="finetune", config=True, limit=1)[0]["config"]
        for arm, status in (("ssl", None), ("random", "failed")):  # seed 1 at r = 0.5: queued, and failed
            run_id = registry.create_run(name=f"mini_paper[arm={arm},label_ratio=0.5,seed=1]", stage="finetune",
                                         config=config, label_ratio=0.5, seed=1, group_id=group,
                                         tags=["mini", f"arm:{arm}"], dataset="synthetic")
            if status:
                registry.finish_run(run_id, status, error="made up")
    return runs, group


def report(runs: Path, *args: str):
    return CliRunner().invoke(main, ["--runs", str(runs), "report", *args])


def report_json(runs: Path, *args: str) -> dict:
    result = report(runs, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_report_agrees_with_the_registry(sweep):
    runs, group = sweep
    data = report_json(runs, group)
    assert (data["kind"], data["groups"], data["datasets"]) == ("group", [group], ["synthetic"])
    rows = {(row["arm"], row["label_ratio"]): row for row in data["rows"]}
    assert list(dict.fromkeys(arm for arm, _ in rows)) == list(ARMS) and len(rows) == 8
    registry = Registry(runs / "registry.db", create=False)
    finetunes = registry.runs(group=group, stage="finetune")
    for arm in ARMS:
        for ratio in RATIOS:
            mine = [r for r in finetunes if f"arm:{arm}" in r["tags"] and r["label_ratio"] == ratio]
            done = [r for r in mine if r["status"] == "finished"]
            row = rows[(arm, ratio)]
            assert row["chains"] == len(mine) and row["statuses"].get("finished") == len(done) == 1
            assert row["f1_weighted"]["mean"] == pytest.approx(statistics.fmean(r["test_f1"] for r in done))
            assert row["f1_weighted"]["n"] == 1 and row["f1_weighted"]["std"] is None
            macro = [registry.metrics(r["id"], key="f1_macro", split="test")[-1]["value"] for r in done]
            assert row["f1_macro"]["mean"] == pytest.approx(statistics.fmean(macro))
            searched = arm in ("ssl", "supervised")
            assert (row["search_seconds"] is not None) == searched
            assert 0 <= row["similarity"]["mean"] <= 1 and 0 <= row["recovery"]["mean"] <= 1
    # the chains that did not finish are counted, not dropped
    assert rows[("ssl", 0.5)]["statuses"] == {"finished": 1, "queued": 1} and rows[("ssl", 0.5)]["chains"] == 2
    assert rows[("random", 0.5)]["statuses"] == {"finished": 1, "failed": 1}
    assert data["statuses"]["queued"] == 1 and data["statuses"]["failed"] == 1
    # BM-NAS's genotype is itself, and fuses the planted nodes of the synthetic data (image[2], text[0])
    bmnas = [a for a in data["arms"] if a["arm"] == "bmnas"][0]
    assert bmnas["similarity"]["mean"] == 1.0 and bmnas["recovery"]["mean"] == 1.0
    assert bmnas["search_seconds"] is None and rows[("bmnas", 1.0)]["similarity"]["mean"] == 1.0


def test_search_cost_is_the_search_runs_wall_time(sweep):
    runs, group = sweep
    data = report_json(runs, group)
    registry = Registry(runs / "registry.db", create=False)
    searches = {r["id"]: r for r in registry.runs(group=group, stage="search")}
    chains = [c for c in data["chains"] if c["search_id"]]
    assert {c["arm"] for c in chains} == {"ssl", "supervised"} and len(chains) == 4
    for chain in chains:
        search = searches[chain["search_id"]]
        assert chain["search_seconds"] == pytest.approx(search["ended_at"] - search["started_at"])
        assert chain["device"] == search["device"] == "cpu"
    supervised = [a for a in data["arms"] if a["arm"] == "supervised"][0]
    assert supervised["search_seconds"]["n"] == 2 and supervised["devices"] == ["cpu"]


def test_a_group_prefix_or_a_tag_selects_runs(sweep):
    runs, group = sweep
    assert report_json(runs, group[:5])["rows"] == report_json(runs, group)["rows"]
    tagged = report_json(runs, "arm:bmnas")
    assert tagged["kind"] == "tag" and [row["arm"] for row in tagged["rows"]] == ["bmnas", "bmnas"]
    assert report_json(runs, "mini")["rows"] == report_json(runs, group)["rows"]


def test_the_table_the_markdown_and_the_plots(sweep, tmp_path):
    runs, group = sweep
    table = report(runs, group)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0] == f"group {group}: 10 chains on synthetic"
    assert lines[2].split() == ["arm", "r", "n", "F1", "weighted", "F1", "macro", "similarity", "recovery", "search",
                                "not", "finished"]
    ssl_half = next(line for line in lines if line.startswith("ssl ") and " 0.5 " in line)
    assert " 1/2 " in ssl_half and ssl_half.endswith("1 queued")
    assert any(line.startswith("bmnas ") and " 1.00 " in line for line in lines)
    markdown = report(runs, group, "--md").output
    assert "| arm | r | n | F1 weighted | F1 macro | similarity | recovery | search | not finished |" in markdown
    assert "| --- | --- |" in markdown and "| random | 0.5 | 1/2 |" in markdown
    out = tmp_path / "plots" / "f1.png"
    result = report(runs, group, "--png", str(out), "--plot")
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and result.output.endswith(f"plot: {out}\n")
    assert "label ratio r (log)" in result.output
    default = report(runs, group[:6], "--png")
    assert default.exit_code == 0 and (runs / f"report-{group}.png").read_bytes()[:4] == b"\x89PNG"
    with_json = CliRunner().invoke(main, ["--runs", str(runs), "report", group, "--json", "--png", str(out)])
    assert json.loads(with_json.stdout)["groups"] == [group]  # the file's path goes to stderr


def test_problems_are_one_line(sweep, tmp_path):
    runs, group = sweep
    result = report(runs, "nope")
    assert result.exit_code == 2
    assert result.output.splitlines() == [f"Error: no group or tag matches 'nope' in {runs / 'registry.db'}"]
    result = report(runs, group, "--md", "--json")
    assert result.exit_code == 2 and "choose one of --md and --json" in result.output
    result = report(tmp_path / "empty", group)
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {tmp_path / 'empty' / 'registry.db'}: no such registry"
    with Registry(runs / "registry.db", create=False) as registry:  # a group without finetune runs
        registry.create_run(name="lonely", stage="search", config={}, group_id="gsearchonly", tags=["lonely"])
    result = report(runs, "gsearchonly")
    assert result.output.strip() == "Error: group 'gsearchonly' has no finetune runs to report (1 run(s): 1 queued)"


def test_report_imports_no_torch(sweep):
    runs, group = sweep
    code = (
        "import sys\nfrom ssnas.cli import main\n"
        f"try:\n    main(['--runs', {str(runs)!r}, 'report', {group!r}, '--md'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('torch', 'torchvision', 'transformers', 'tensorboard', 'matplotlib') if m in sys.modules],"
        " file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "| ssl |" in done.stdout and done.stderr.strip() == "[]"


def test_the_torch_free_mirrors_match_the_originals():
    import random

    from ssnas.data.synthetic import planted_recovery
    from ssnas.demo import used_input_nodes
    from ssnas.nas.genotype import random_genotype
    from ssnas.report import planted_recovery as mirror_recovery
    from ssnas.report import used_input_nodes as mirror_used

    names = ("image[0]", "image[1]", "image[2]", "image[3]", "text[0]", "text[1]")
    rng = random.Random(0)
    for _ in range(50):
        genotype = random_genotype(names, 2, 1, ["sum", "attention", "concat_fc"], 2, rng)
        used = used_input_nodes(genotype)
        assert mirror_used(genotype) == used
        assert mirror_recovery(used, ("image[2]", "text[0]")) == planted_recovery(used, ("image[2]", "text[0]"))


def test_the_report_command_is_documented():
    docs = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    command = report_commands.report
    assert command.help and "## `ssnas report`" in docs
    for option in command.params:
        if isinstance(option, click.Option):
            assert option.opts[0] in docs, option.opts[0]


# -- columns that mean nothing for the data are left out, with a note ---------------------------------


def views_group(runs: Path, with_bmnas: bool) -> str:
    """Finished finetune chains on data whose input nodes are pix, fou and zer levels (no planted architecture,
    none of BM-NAS's nodes): two random genotypes drawn on them, and optionally BM-NAS's genotype mapped onto them."""
    import random

    from ssnas.baselines import load_baseline
    from ssnas.nas.binding import bind
    from ssnas.nas.genotype import random_genotype
    from tests.conftest import VIEW_NODES

    mapping = {"image[2]": "pix[0]", "text[0]": "fou[0]"}
    chains = [("random", random_genotype(VIEW_NODES, 2, 1, ["sum", "concat_fc"], 2, random.Random(seed)), None)
              for seed in (0, 1)]
    if with_bmnas:
        chains.append(("bmnas", bind(load_baseline("bmnas-mmimdb"), VIEW_NODES, mapping), mapping))
    with Registry(runs / "registry.db") as registry:
        for seed, (arm, genotype, nodes) in enumerate(chains):
            config = {"run": {"genotype_nodes": nodes}, "data": {"dataset": "features", "path": "views.h5"}}
            run_id = registry.create_run(name=f"views[{arm}]", stage="finetune", config=config, dataset="features",
                                         label_ratio=1.0, seed=seed, group_id="gviews", tags=[f"arm:{arm}"])
            registry.update_run(run_id, run_dir=str(runs / run_id))
            registry.add_metrics([(run_id, 9, None, "test", key, 0.5, 0.0) for key in ("f1_weighted", "f1_macro")])
            registry.finish_run(run_id, "finished")
            (runs / run_id).mkdir(parents=True)
            genotype.save(runs / run_id / "genotype.json")
    return "gviews"


def test_similarity_and_recovery_are_left_out_where_the_data_has_neither(tmp_path):
    runs = tmp_path / "runs"
    group = views_group(runs, with_bmnas=False)
    lines = report(runs, group).output.splitlines()
    assert lines[2].split() == ["arm", "r", "n", "F1", "weighted", "F1", "macro", "search", "not", "finished"]
    assert "similarity" not in "\n".join(lines[:-6]) and "recovery" not in "\n".join(lines[:-6])
    assert "similarity to bmnas-mmimdb: left out, the data lacks input nodes bmnas-mmimdb reads (image[2], text[0])" \
        in lines
    assert "planted recovery: left out, features data has no planted architecture (only synthetic data has one)" \
        in lines
    markdown = report(runs, group, "--md").output
    assert "| arm | r | n | F1 weighted | F1 macro | search | not finished |" in markdown
    assert "- similarity to bmnas-mmimdb: left out, the data lacks" in markdown
    data = report_json(runs, group)
    assert data["baseline_nodes"] == ["image[2]", "text[0]"]
    assert [(c["similarity"], c["lacks_baseline"], c["recovery"]) for c in data["chains"]] == [(None, True, None)] * 2


def test_a_chain_that_mapped_the_baseline_onto_its_nodes_keeps_the_similarity_column(tmp_path):
    runs = tmp_path / "runs"
    group = views_group(runs, with_bmnas=True)
    lines = report(runs, group).output.splitlines()
    assert lines[2].split()[:7] == ["arm", "r", "n", "F1", "weighted", "F1", "macro"] and "similarity" in lines[2]
    assert "recovery" not in lines[2]
    assert any(line.startswith("random  2       -  ") for line in lines)  # the per-arm table
    assert any(line.startswith("bmnas   1       1.00  ") for line in lines)
    assert ("similarity: '-' for chains where the data lacks input nodes bmnas-mmimdb reads (image[2], text[0])"
            in lines)
