"""`ssnas report` on a miniature paper sweep run end to end (5 arms x 2 label ratios x 1 seed, real workers), then
on registries written by hand for what needs seeds: gaps to baselines, paired differences, agreement, decisiveness."""

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
from tests.e2e import RECIPES, TINY, scheduler_pid, ssnas, wait_for

ARMS = ("ssl", "supervised", "bmnas", "random", "linear")
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

[arms.linear]
"run.stages" = ["finetune"]
"finetune.model" = "linear"
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
    wait_for(lambda: scheduler_pid(runs) is None)  # else it would start the queued run added below
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
    assert list(dict.fromkeys(arm for arm, _ in rows)) == list(ARMS) and len(rows) == 10
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
            assert (row["search_seconds"] is not None) == searched == (row["decided"] is not None)
            assert row["kind"] == ("baseline" if arm == "linear" else "nas")
            if arm == "linear":  # no genotype: nothing to compare
                assert row["similarity"] is row["recovery"] is row["agreement"] is None
                assert row["gap"] == 0.0  # the only baseline is the best one
                continue
            assert 0 <= row["similarity"]["mean"] <= 1 and 0 <= row["recovery"]["mean"] <= 1
            assert row["gap"] == pytest.approx(100 * (row["f1_weighted"]["mean"] - rows[("linear", ratio)]
                                                      ["f1_weighted"]["mean"]))
    # the chains that did not finish are counted, not dropped
    assert rows[("ssl", 0.5)]["statuses"] == {"finished": 1, "queued": 1} and rows[("ssl", 0.5)]["chains"] == 2
    assert rows[("random", 0.5)]["statuses"] == {"finished": 1, "failed": 1}
    assert data["statuses"]["queued"] == 1 and data["statuses"]["failed"] == 1
    # BM-NAS's genotype is itself, and fuses the planted nodes of the synthetic data (image[2], text[0])
    bmnas = [a for a in data["arms"] if a["arm"] == "bmnas"][0]
    assert bmnas["similarity"]["mean"] == 1.0 and bmnas["recovery"]["mean"] == 1.0
    assert bmnas["search_seconds"] is None and rows[("bmnas", 1.0)]["similarity"]["mean"] == 1.0
    # what the workers leave for the report: the search's certainty, the fine-tune's results.json
    assert rows[("ssl", 1.0)]["decided"]["searches"] == 1 and rows[("ssl", 1.0)]["decided"]["top_ratio"] > 1
    linear = [c for c in data["chains"] if c["arm"] == "linear"]
    assert {(c["model"], c["kind"], c["mode"]) for c in linear} == {("linear", "baseline", "full")}
    assert all(c["steps"] > 0 for c in linear)
    # one seed: ssl - random has one pair per r, too few for an interval
    assert [(p["pairs"], p["verdict"]) for p in data["paired"]] == [(1, "too few pairs")] * 2


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
    assert tagged["paired"] == [] and tagged["best_baselines"] == []
    assert report_json(runs, "mini")["rows"] == report_json(runs, group)["rows"]


def test_the_table_the_markdown_and_the_plots(sweep, tmp_path):
    runs, group = sweep
    table = report(runs, group)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0] == f"group {group}: 12 chains on synthetic"
    assert lines[2:4] == ["test F1 by arm and label ratio", lines[3]]
    assert lines[3].split() == ["arm", "kind", "r", "n", "F1", "weighted", "F1", "macro", "gap", "not", "finished"]
    ssl_half = next(line for line in lines if line.startswith("ssl ") and " 0.5 " in line)
    assert " 1/2 " in ssl_half and ssl_half.endswith("1 queued")
    assert any(line.startswith("bmnas ") and " 1.00 " in line for line in lines)
    assert any(line.split()[:3] == ["linear", "baseline", "1.0"] and " +0.0 " in line for line in lines)
    at = lines.index("architectures and search by arm and label ratio")
    assert lines[at + 1].split() == ["arm", "r", "similarity", "recovery", "agreement", "decided", "search"]
    assert lines.index("by arm") > at and lines.index("ssl - random (paired by seed)") > at
    footer = next(i for i, line in enumerate(lines) if line.startswith("runs: "))
    assert max(len(line) for line in lines[:footer]) <= 100  # the tables fit a terminal
    markdown = report(runs, group, "--md").output
    assert "| arm | kind | r | n | F1 weighted | F1 macro | gap | not finished |" in markdown
    assert "| arm | r | similarity | recovery | agreement | decided | search |" in markdown
    assert "| --- | --- |" in markdown and "| random | nas | 0.5 | 1/2 |" in markdown
    assert "#### ssl - random (paired by seed)" in markdown
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
    assert lines[3].split() == ["arm", "kind", "r", "n", "F1", "weighted", "F1", "macro", "not", "finished"]
    at = lines.index("architectures and search by arm and label ratio")
    assert lines[at + 1].split() == ["arm", "r", "agreement", "decided", "search"]
    tables = "\n".join(lines[:next(i for i, line in enumerate(lines) if line.startswith("runs: "))])
    assert "similarity" not in tables and "recovery" not in tables
    assert "similarity to bmnas-mmimdb: left out, the data lacks input nodes bmnas-mmimdb reads (image[2], text[0])" \
        in lines
    assert "planted recovery: left out, features data has no planted architecture (only synthetic data has one)" \
        in lines
    markdown = report(runs, group, "--md").output
    assert "| arm | kind | r | n | F1 weighted | F1 macro | not finished |" in markdown
    assert "| arm | r | agreement | decided | search |" in markdown
    assert "- similarity to bmnas-mmimdb: left out, the data lacks" in markdown
    data = report_json(runs, group)
    assert data["baseline_nodes"] == ["image[2]", "text[0]"]
    assert [(c["similarity"], c["lacks_baseline"], c["recovery"]) for c in data["chains"]] == [(None, True, None)] * 2


def test_a_chain_that_mapped_the_baseline_onto_its_nodes_keeps_the_similarity_column(tmp_path):
    runs = tmp_path / "runs"
    group = views_group(runs, with_bmnas=True)
    lines = report(runs, group).output.splitlines()
    at = lines.index("architectures and search by arm and label ratio")
    assert lines[at + 1].split() == ["arm", "r", "similarity", "agreement", "decided", "search"]
    assert any(line.split()[:4] == ["random", "nas", "2", "-"] for line in lines)  # the per-arm table
    assert any(line.split()[:4] == ["bmnas", "nas", "1", "1.00"] for line in lines)
    assert ("similarity: '-' for chains where the data lacks input nodes bmnas-mmimdb reads (image[2], text[0])"
            in lines)


# -- gaps, paired differences, agreement, decisiveness: registries written by hand -------------------------

SYNTHETIC_NODES = ("image[0]", "image[1]", "image[2]", "image[3]", "text[0]", "text[1]")
SYNTHETIC_CONFIG = {"dataset": "synthetic", "synthetic": {"planted_image": 2, "planted_text": 0}}


def random_genotypes(count: int):
    import random

    from ssnas.nas.genotype import random_genotype

    return [random_genotype(SYNTHETIC_NODES, 2, 1, ["sum", "attention", "concat_fc"], 2, random.Random(seed))
            for seed in range(count)]


def add_chain(registry: Registry, runs: Path, arm: str, ratio: float, seed: int, f1: float | None, *,
              model: str = "nas", genotype=None, top_ratios: tuple[float, ...] = (), search_status: str = "finished",
              group: str = "gpaper", status: str = "finished") -> str:
    """One chain as a worker would leave it: a search (when top_ratios are given, one per epoch, logged with
    split "arch") and a finetune run with its test F1, results.json and genotype.json. Returns the finetune id."""
    tags = ["paper", f"arm:{arm}"]
    parent = None
    if top_ratios:
        parent = registry.create_run(name=f"search[{arm},{ratio},{seed}]", stage="search", config={}, seed=seed,
                                     label_ratio=ratio, group_id=group, tags=tags, dataset="synthetic")
        registry.start_run(parent, pid=1, host="here", device="cpu")
        registry.add_metrics([(parent, epoch, epoch, "arch", key, value, 0.0) for epoch, top in enumerate(top_ratios)
                              for key, value in (("arch_top_ratio", top), ("arch_entropy", 1 / top))])
        registry.finish_run(parent, search_status)
    config = {"finetune": {"model": model}, "data": SYNTHETIC_CONFIG, "run": {}}
    run_id = registry.create_run(name=f"paper[{arm},{ratio},{seed}]", stage="finetune", config=config, seed=seed,
                                 label_ratio=ratio, group_id=group, tags=tags, dataset="synthetic", parent_id=parent)
    folder = runs / run_id
    folder.mkdir(parents=True)
    registry.update_run(run_id, run_dir=str(folder))
    if genotype is not None:
        genotype.save(folder / "genotype.json")
    if status == "finished":
        registry.add_metrics([(run_id, 9, None, "test", key, value, 0.0)
                              for key, value in (("f1_weighted", f1), ("f1_macro", f1 - 0.1))])
        (folder / "results.json").write_text(json.dumps({"model": model, "mode": "probe", "steps": 40}))
    if status != "queued":
        registry.finish_run(run_id, status, error=None if status == "finished" else "made up")
    return run_id


def rows_of(data: dict) -> dict:
    return {(row["arm"], row["label_ratio"]): row for row in data["rows"]}


@pytest.fixture
def paper(tmp_path):
    """Two label ratios: ssl (searched, 3 seeds), random (3 seeds), linear and mlp (no search, 1 seed); ssl also at
    r = 0.3, where no baseline ran. ssl's F1 beats random's by 5, 6, 7 points at r = 0.5 and 5, 2, 7 at 1.0."""
    runs = tmp_path / "runs"
    genotypes = random_genotypes(3)
    same = genotypes[0]
    f1 = {("ssl", 0.5): (0.65, 0.66, 0.67), ("random", 0.5): (0.60, 0.60, 0.60),
          ("ssl", 1.0): (0.70, 0.72, 0.65), ("random", 1.0): (0.65, 0.70, 0.58)}
    finals = {0: (1.1, 1.8), 1: (1.0, 1.2), 2: (1.3, 1.6)}  # per seed, arch_top_ratio per epoch
    with Registry(runs / "registry.db") as registry:
        for ratio in (0.5, 1.0):
            for seed in range(3):
                add_chain(registry, runs, "ssl", ratio, seed, f1[("ssl", ratio)][seed], genotype=same,
                          top_ratios=finals[seed])
                add_chain(registry, runs, "random", ratio, seed, f1[("random", ratio)][seed],
                          genotype=genotypes[seed])
            add_chain(registry, runs, "linear", ratio, 0, {0.5: 0.62, 1.0: 0.69}[ratio], model="linear")
            add_chain(registry, runs, "mlp", ratio, 0, {0.5: 0.64, 1.0: 0.66}[ratio], model="mlp")
        add_chain(registry, runs, "ssl", 0.3, 0, 0.55, genotype=same, top_ratios=(1.7,))
        add_chain(registry, runs, "ssl", 0.5, 3, 0.70, genotype=same, top_ratios=(1.9,))  # no random seed 3
        add_chain(registry, runs, "random", 0.5, 2, None, genotype=genotypes[0], status="failed")  # a failed rerun
    return runs, genotypes


def test_every_row_gets_its_gap_to_the_best_baseline_at_its_r(paper):
    runs, _ = paper
    data = report_json(runs, "gpaper")
    rows = rows_of(data)
    assert [(b["label_ratio"], b["arm"]) for b in data["best_baselines"]] == [(0.5, "mlp"), (1.0, "linear")]
    assert [a["kind"] for a in data["arms"]] == ["nas", "nas", "baseline", "baseline"]
    assert rows[("ssl", 0.5)]["gap"] == pytest.approx(100 * (statistics.fmean([0.65, 0.66, 0.67, 0.70]) - 0.64))
    assert rows[("random", 1.0)]["gap"] == pytest.approx(100 * (statistics.fmean([0.65, 0.70, 0.58]) - 0.69))
    assert rows[("linear", 0.5)]["gap"] == pytest.approx(-2.0) and rows[("mlp", 0.5)]["gap"] == 0.0
    assert rows[("ssl", 0.3)]["gap"] is None  # no baseline ran at 0.3
    lines = report(runs, "gpaper").output.splitlines()
    assert lines[3].split() == ["arm", "kind", "r", "n", "F1", "weighted", "F1", "macro", "gap", "not", "finished"]
    assert next(line for line in lines if line.startswith("linear ")).split()[:7] == \
        ["linear", "baseline", "0.5", "1/1", "0.6200", "0.5200", "-2.0"]
    assert next(line for line in lines if line.startswith("ssl ")).split()[:7] == \
        ["ssl", "nas", "0.3", "1/1", "0.5500", "0.4500", "-"]
    assert "best baseline (of linear, mlp): r=0.5 mlp, r=1.0 linear" in lines
    assert "gap: F1 weighted minus the best no-search baseline's at that r, in points (x 100)" in lines
    chain = next(c for c in data["chains"] if c["arm"] == "mlp")
    assert (chain["model"], chain["kind"], chain["mode"], chain["steps"], chain["genotype"]) == \
        ("mlp", "baseline", "probe", 40, None)


def test_ssl_minus_random_is_paired_by_seed_with_a_t_interval(paper):
    runs, _ = paper
    data = report_json(runs, "gpaper")
    paired = {p["label_ratio"]: p for p in data["paired"]}
    assert data["paired_arms"] == ["ssl", "random"] and list(paired) == [0.3, 0.5, 1.0]
    # r = 0.5: differences 5, 6, 7 points (seed 3 has no random chain; random's failed rerun of seed 2 is
    # left out): mean 6, sd 1,
    # half width t(0.975, 2) * 1 / sqrt(3) = 4.3027 / 1.7321 = 2.4841
    half = paired[0.5]
    assert (half["seeds"], half["pairs"], half["verdict"]) == ([0, 1, 2], 3, "better")
    assert half["mean"] == pytest.approx(6.0)
    assert (half["low"], half["high"]) == (pytest.approx(3.5159, abs=1e-4), pytest.approx(8.4841, abs=1e-4))
    # r = 1.0: differences 5, 2, 7: mean 4.6667, sd sqrt(19/3) = 2.5166, half width 4.3027 * 2.5166 / 1.7321
    full = paired[1.0]
    assert full["mean"] == pytest.approx(14 / 3) and full["verdict"] == "no difference shown"
    assert (full["low"], full["high"]) == (pytest.approx(-1.5851, abs=1e-4), pytest.approx(10.9184, abs=1e-4))
    assert paired[0.3] == {"label_ratio": 0.3, "seeds": [], "pairs": 0, "mean": None, "low": None, "high": None,
                           "verdict": "too few pairs"}
    lines = report(runs, "gpaper").output.splitlines()
    at = lines.index("ssl - random (paired by seed)")
    assert lines[at + 1].split() == ["r", "pairs", "mean", "diff", "95%", "CI", "verdict"]
    assert lines[at + 3].split() == ["0.5", "3", "+6.0", "[+3.5,", "+8.5]", "better"]
    assert lines[at + 4].split() == ["1.0", "3", "+4.7", "[-1.6,", "+10.9]", "no", "difference", "shown"]
    assert "#### ssl - random (paired by seed)" in report(runs, "gpaper", "--md").output


def test_the_t_quantiles():
    from ssnas.report import paired_interval, t_quantile_975

    assert (t_quantile_975(1), t_quantile_975(2), t_quantile_975(30), t_quantile_975(31)) == (12.7062, 4.3027,
                                                                                             2.0423, 1.96)
    assert paired_interval([1.0]) is None and paired_interval([2.0, 2.0]) == (2.0, 2.0)
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_agreement_compares_the_genotypes_of_different_seeds(paper):
    from ssnas.nas.genotype import diff

    runs, genotypes = paper
    rows = rows_of(report_json(runs, "gpaper"))
    assert rows[("ssl", 0.5)]["agreement"] == {"mean": 1.0, "std": 0.0, "n": 6}  # 4 seeds, one genotype
    expected = [diff(a, b).similarity for a, b in ((genotypes[0], genotypes[1]), (genotypes[0], genotypes[2]),
                                                   (genotypes[1], genotypes[2]))]
    assert rows[("random", 1.0)]["agreement"]["mean"] == pytest.approx(statistics.fmean(expected))
    assert rows[("random", 0.5)]["agreement"] == rows[("random", 1.0)]["agreement"]  # one genotype per seed
    assert rows[("ssl", 0.3)]["agreement"] is None and rows[("mlp", 1.0)]["agreement"] is None


def test_decisiveness_reads_the_last_arch_metrics_of_finished_searches(paper):
    runs, _ = paper
    with Registry(runs / "registry.db", create=False) as registry:  # an unfinished search does not count
        add_chain(registry, runs, "ssl", 1.0, 5, None, genotype=None, top_ratios=(3.0,), search_status="killed",
                  status="queued")
    data = report_json(runs, "gpaper")
    rows = rows_of(data)
    assert rows[("ssl", 1.0)]["decided"] == {"searches": 3, "decided": 2, "top_ratio": pytest.approx(4.6 / 3),
                                             "entropy": pytest.approx((1 / 1.8 + 1 / 1.2 + 1 / 1.6) / 3)}
    assert rows[("ssl", 0.3)]["decided"]["decided"] == 1 and rows[("random", 0.5)]["decided"] is None
    ssl = next(a for a in data["arms"] if a["arm"] == "ssl")
    assert (ssl["decided"]["searches"], ssl["decided"]["decided"]) == (8, 6)
    lines = report(runs, "gpaper").output.splitlines()
    at = lines.index("architectures and search by arm and label ratio")
    assert lines[at + 1].split() == ["arm", "r", "similarity", "recovery", "agreement", "decided", "search"]
    table = lines[at + 2:lines.index("by arm") - 1]
    assert [line.split()[:2] for line in table] == [["ssl", "0.3"], ["ssl", "0.5"], ["ssl", "1.0"],
                                                    ["random", "0.5"], ["random", "1.0"]]  # no baselines
    assert table[2].split()[5:7] == ["2/3", "(1.5x)"] and table[3].split()[5:] == ["-", "-"]


def test_missing_baselines_and_paired_arms_are_noted(tmp_path):
    runs = tmp_path / "runs"
    genotype = random_genotypes(1)[0]
    with Registry(runs / "registry.db") as registry:
        for seed in range(2):
            add_chain(registry, runs, "ssl", 1.0, seed, 0.6 + seed / 100, genotype=genotype, top_ratios=(2.0,))
            add_chain(registry, runs, "supervised", 1.0, seed, 0.6, genotype=genotype, top_ratios=(1.2,))
    data = report_json(runs, "gpaper")
    assert data["paired"] == [] and data["best_baselines"] == [] and data["rows"][0]["gap"] is None
    lines = report(runs, "gpaper").output.splitlines()
    assert lines[3].split() == ["arm", "kind", "r", "n", "F1", "weighted", "F1", "macro", "not", "finished"]
    assert "ssl - random (paired by seed)" not in lines
    assert "ssl - random (paired by seed): left out, no random arm here" in lines
    assert ("gap to the no-search baselines: left out, no arm here is one (finetune.model linear, mlp or "
            "late_fusion)") in lines
    markdown = report(runs, "gpaper", "--md").output
    assert "- ssl - random (paired by seed): left out, no random arm here" in markdown


def test_a_baseline_only_report_and_its_plot(tmp_path):
    runs = tmp_path / "runs"
    with Registry(runs / "registry.db") as registry:
        for ratio in (0.1, 1.0):
            add_chain(registry, runs, "linear", ratio, 0, 0.5 + ratio / 10, model="linear")
    lines = report(runs, "gpaper").output.splitlines()
    assert "architectures and search by arm and label ratio" not in lines
    assert "ssl - random (paired by seed): left out, no ssl or random arm here" in lines
    assert not any(word in "\n".join(lines) for word in ("agreement", "similarity", "recovery"))  # nothing to score
    assert "best baseline (of linear): r=0.1 linear, r=1.0 linear" in lines
    out = tmp_path / "f1.png"
    assert report(runs, "gpaper", "--png", str(out)).exit_code == 0 and out.read_bytes()[:4] == b"\x89PNG"
