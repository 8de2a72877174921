"""The read-only commands (runs, show, metrics, arch, diff, compare, export) on a registry built here."""

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ssnas.baselines import load_baseline
from ssnas.cli import main
from ssnas.commands import inspect as inspect_commands
from ssnas.nas.derive import ArchWeights
from ssnas.nas.genotype import Genotype
from ssnas.nas.vocabulary import DEFAULT_PRIMITIVES
from ssnas.registry import Registry, this_host
from ssnas.runs.table import DEFAULT_COLUMNS
from tests.example_registry import INPUTS, T0, build, create, peaked, recipe, searched_genotype

IDS = ("aaaa1111aaaa", "aaaa2222bbbb", "cccc3333cccc", "dddd4444dddd")
A, B, C, D = IDS


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def runs_dir(tmp_path, utc):
    """tests/example_registry.py's four runs: A an SSL search (finished, tagged, files on disk), B a supervised
    search (failed), C a finetune child of A (finished, F1s), D a running search whose worker is gone (read: lost)."""
    runs = tmp_path / "runs"
    build(runs, IDS)
    return runs


def invoke(runs_dir, *args):
    return CliRunner().invoke(main, ["--runs", str(runs_dir), *args])


def ids_in(result):
    return [row["id"] for row in json.loads(result.stdout)]


# -- runs


def test_runs_table_is_exact(runs_dir):
    result = invoke(runs_dir, "runs", "--status", "finished", "--status", "failed")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "id        name                 stage     objective   dataset    r     seed  status    progress  elapsed  "
        "loss  dev F1  test F1  created",
        "cccc3333  ssl_search/finetune  finetune  ssl         synthetic  0.1   0     finished  100%      1h02m    "
        "0.5   0.550   0.512    11-14 22:15",
        "aaaa2222  supervised_search    search    supervised  synthetic  0.01  1     failed    40%       1m23s    "
        "0.75  -       -        11-14 22:14",
        "aaaa1111  ssl_search           search    ssl         synthetic  0.1   0     finished  100%      1m23s    "
        "0.75  -       -        11-14 22:13",
    ]


def test_runs_flags_a_dead_worker_without_writing(runs_dir):
    """A reader shows a running run whose worker is gone as `lost?` and leaves the row alone; the
    scheduler's reconcile marks it lost."""
    before = (runs_dir / "registry.db").read_bytes()
    result = invoke(runs_dir, "runs")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].startswith("dddd4444  lost_search") and " lost?  " in lines[1]
    assert json.loads(invoke(runs_dir, "runs", "--json", "--status", "running").output)[0]["id"] == D
    assert (runs_dir / "registry.db").read_bytes() == before
    with Registry(runs_dir / "registry.db") as registry:
        assert registry.reconcile() == [D]
    assert " lost!  " in invoke(runs_dir, "runs").output.splitlines()[1]
    assert json.loads(invoke(runs_dir, "runs", "--json", "--status", "lost").output)[0]["error"] == \
        "worker process gone"


def test_runs_json_has_full_ids_and_fields(runs_dir):
    rows = json.loads(invoke(runs_dir, "runs", "--json").output)
    assert [row["id"] for row in rows] == [D, C, B, A]
    finetune = rows[1]
    assert finetune["parent_id"] == A and finetune["stage"] == "finetune"
    assert finetune["best_f1"] == 0.55 and finetune["test_f1"] == 0.512
    assert finetune["latest_loss"] == pytest.approx(0.5)
    assert finetune["elapsed_s"] == 3725 and finetune["label_ratio"] == 0.1
    assert rows[3]["tags"] == ["paper"] and rows[3]["versions"] == {"python": "3.11.9", "ssnas": "0.1.0"}


def test_runs_csv_columns(runs_dir):
    result = invoke(runs_dir, "runs", "--csv", "--tag", "paper")
    rows = list(csv.DictReader(result.output.splitlines()))
    assert list(rows[0]) == list(DEFAULT_COLUMNS)
    assert [(r["id"], r["tags"], r["status"], r["elapsed_s"]) for r in rows] == [(A, "paper", "finished", "83.0")]


@pytest.mark.parametrize(("args", "expected"), [
    (["--stage", "finetune"], [C]),
    (["--status", "failed", "--status", "running"], [D, B]),
    (["--dataset", "synthetic", "--tag", "paper"], [A]),
    (["--group", "g0123456789a", "--limit", "2"], [D, C]),
    (["--where", "label_ratio < 0.05"], [B]),
    (["--where", "metric.test.f1_weighted > 0.5 OR search.objective = 'supervised'"], [C, B]),
    (["--where", "stage = 'search' AND seed IN (0, 1)", "--sort", "seed"], [A, B]),
    (["--sort", "-best_f1", "--limit", "1"], [C]),
])
def test_runs_filters_select_the_right_runs(runs_dir, args, expected):
    result = invoke(runs_dir, "runs", "--json", *args)
    assert result.exit_code == 0, result.output
    assert ids_in(result) == expected


def test_runs_says_when_the_limit_cut_the_listing(runs_dir):
    lines = invoke(runs_dir, "runs", "--limit", "2").output.splitlines()
    assert len(lines) == 4 and lines[-1] == "(the first 2 shown; --limit 0 lists all)"
    assert len(invoke(runs_dir, "runs", "--limit", "0").output.splitlines()) == 5


def test_runs_without_a_registry(tmp_path):
    result = invoke(tmp_path / "runs", "runs")
    assert result.exit_code == 0
    assert result.output == f"no runs yet ({tmp_path / 'runs' / 'registry.db'} does not exist)\n"
    assert json.loads(invoke(tmp_path / "runs", "runs", "--json").output) == []
    assert not (tmp_path / "runs").exists()  # reading creates nothing


def test_runs_of_an_empty_registry_and_no_match(tmp_path, runs_dir):
    Registry(tmp_path / "empty" / "registry.db").close()
    assert invoke(tmp_path / "empty", "runs").output == f"no runs yet in {tmp_path / 'empty' / 'registry.db'}\n"
    result = invoke(runs_dir, "runs", "--where", "seed = 99")
    assert result.exit_code == 0 and result.output == "no runs match\n"
    assert invoke(runs_dir, "runs", "--csv", "--where", "seed = 99").output.splitlines() == \
        [",".join(DEFAULT_COLUMNS)]


@pytest.mark.parametrize(("args", "message"), [
    (["--where", "seed >"], "Error: --where: unexpected end of expression"),
    (["--where", "colour = 'red'"], "Error: --where: unknown field 'colour'"),
    (["--sort", "tag"], "Error: --sort: cannot sort by 'tag'"),
])
def test_runs_bad_filters_are_one_line_and_exit_2(runs_dir, args, message):
    result = invoke(runs_dir, "runs", *args)
    assert result.exit_code == 2
    assert len(result.output.splitlines()) == 1 and result.output.startswith(message)


@pytest.mark.parametrize("command", [["runs"], ["show", "aaaa"], ["metrics", "aaaa"]])
def test_a_file_that_is_not_a_registry_is_one_line_and_exit_2(tmp_path, command):
    (tmp_path / "registry.db").write_text("not a database")
    result = invoke(tmp_path, *command)
    assert result.exit_code == 2
    assert result.output == f"Error: {tmp_path / 'registry.db'}: not an ssnas registry (not an SQLite database)\n"


# -- run ids


@pytest.mark.parametrize("command", ["show", "metrics", "arch", "diff", "export"])
def test_an_ambiguous_prefix_names_the_candidates(runs_dir, command):
    result = invoke(runs_dir, command, "aaaa")
    assert result.exit_code == 2
    assert result.output == "Error: 'aaaa' matches 2 runs: aaaa1111aaaa, aaaa2222bbbb\n"


def test_an_unknown_run_and_a_missing_registry_are_one_line(tmp_path, runs_dir):
    assert invoke(runs_dir, "show", "zzz").output == "Error: no run matches 'zzz'\n"
    result = invoke(tmp_path / "nowhere", "show", "aaaa")
    assert result.exit_code == 2
    assert result.output == f"Error: {tmp_path / 'nowhere' / 'registry.db'}: no such registry\n"


# -- show


def test_show_has_fields_recipe_genotype_metrics_files_and_last_events(runs_dir):
    result = invoke(runs_dir, "show", "aaaa1")
    assert result.exit_code == 0, result.output
    out = result.output
    lines = out.splitlines()
    for line in (f"id           {A}", "status       finished (100%)", "error        -", "stage        search",
                 "parent       -", "group        g0123456789a", "children     cccc3333 (finetune, finished)",
                 "device       cuda:0", "pid          4242", "git commit   abc1234",
                 "versions     python 3.11.9, ssnas 0.1.0", "started      2023-11-14 22:13:25",
                 "ended        2023-11-14 22:14:48", "elapsed      1m23s", "tags         paper",
                 f"run dir      {runs_dir / A}", "  cell1 = sum(text[0], cell0)", "  checkpoint.pt  (2.0 KB)",
                 "  genotype.json  (" + f"{(runs_dir / A / 'genotype.json').stat().st_size} B)", "  tb/  (1 file)",
                 "genotype (epoch 2, step 5)", "  train    last loss 0.75"):
        assert line in lines, line
    assert any(line.startswith("  search    objective=ssl epochs=3 lr=0.001") for line in lines)
    assert "genotype=" not in out  # unset keys are left out
    assert "event 3" in out and "event 12" in out and "event 2\n" not in out


def test_show_of_a_finetune_and_a_failed_run(runs_dir):
    out = invoke(runs_dir, "show", "ccc").output
    assert "  test     f1_weighted 0.5120  f1_macro 0.4000  f1_micro 0.6000  f1_samples 0.5800  threshold 0.3500" in out
    assert "  dev      best f1_weighted 0.5500 (epoch 1)" in out
    assert f"parent       {A}" in out
    assert f"genotype ({runs_dir / C / 'genotype.json'})" in out  # read from the run folder
    failed = invoke(runs_dir, "show", "aaaa2").output
    assert "error        RuntimeError: CUDA out of memory" in failed and "status       failed (40%)" in failed
    assert f"  (no folder {runs_dir / B})" in failed


# -- metrics


def test_metrics_summary_is_exact(runs_dir):
    result = invoke(runs_dir, "metrics", "aaaa1")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "key         split  count  last  min   max",
        "epoch_loss  arch   3      1.1   1.1   2.1",
        "epoch_loss  train  3      0.9   0.9   1.9",
        "loss        train  6      0.75  0.75  2",
    ]


def test_metrics_series_as_table_json_and_csv(runs_dir):
    result = invoke(runs_dir, "metrics", "ccc", "--key", "f1_weighted")
    assert result.output.splitlines() == [
        "step  epoch  split  value",
        "0     0      dev    0.41",
        "1     1      dev    0.55",
        "2     2      dev    0.52",
        "3     -      test   0.512",
    ]
    rows = json.loads(invoke(runs_dir, "metrics", "ccc", "--key", "f1_weighted", "--split", "test", "--json").output)
    assert rows == [{"step": 3, "epoch": None, "split": "test", "key": "f1_weighted", "value": 0.512,
                     "wall_time": T0}]
    lines = invoke(runs_dir, "metrics", "ccc", "--key", "loss", "--csv").output.splitlines()
    assert lines[0] == "step,epoch,split,value" and lines[1] == "0,0,train,0.7"


def test_metrics_of_an_unknown_key_lists_the_logged_ones(runs_dir):
    result = invoke(runs_dir, "metrics", "aaaa1", "--key", "f1_weighted")
    assert result.exit_code == 2
    assert result.output == ("Error: run aaaa1111 has no metric 'f1_weighted' "
                             "(logged: epoch_loss/arch, epoch_loss/train, loss/train)\n")


def test_metrics_plot_draws_one_line_per_split_as_text(runs_dir):
    result = invoke(runs_dir, "metrics", "aaaa1", "--key", "epoch_loss", "--plot")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "epoch_loss of run aaaa1111" in out and "arch" in out and "train" in out and "step" in out
    assert "\x1b[" not in out  # not a terminal: no colour codes
    assert len(out.splitlines()) >= 10
    assert max(len(line) for line in out.splitlines()) == 100  # docs/cli.md: plain text, 100 columns wide


def test_metrics_plot_needs_a_key_and_falls_back_without_plotext(runs_dir, monkeypatch):
    result = invoke(runs_dir, "metrics", "aaaa1", "--plot")
    assert result.exit_code == 2 and "--plot draws one series: give --key" in result.output
    monkeypatch.setitem(sys.modules, "plotext", None)
    lines = invoke(runs_dir, "metrics", "aaaa1", "--key", "loss", "--plot").output.splitlines()
    assert lines[0].startswith("(plotext is not installed") and lines[1] == "step  epoch  split  value"


# -- arch


def test_arch_marks_the_argmax_of_every_row(runs_dir):
    result = invoke(runs_dir, "arch", "aaaa1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:2] == [
        "architecture weights of run aaaa1111 at epoch 2 (logged: epochs 0..2; * = argmax)",
        "entropy: 1 = uniform; margin: top-1 - top-2; undecided: top-1 < 1.5x uniform; step inputs not judged"]
    start = lines.index("cell0 inputs  image[0]  image[1]  image[2]  image[3]  text[0]  text[1]  entropy  margin")
    assert lines[start:start + 8] == [
        "cell0 inputs  image[0]  image[1]  image[2]  image[3]  text[0]  text[1]  entropy  margin",
        "  x               8.0%      8.0%     60.0%*     8.0%     8.0%     8.0%     0.735   52.0%",
        "  y               8.0%      8.0%      8.0%      8.0%    60.0%*    8.0%     0.735   52.0%",
        "cell0 step0 inputs     in0     in1  entropy  margin",
        "  x                  40.0%   60.0%*    0.971   20.0%",
        "  y                  60.0%*  40.0%     0.971   20.0%",
        "cell0 step0 op    zero     sum  attention  linear_glu  concat_fc  entropy  margin",
        "                 12.5%   12.5%      12.5%       12.5%      50.0%*    0.832   42.9%",
    ]
    assert "cell1 step0 op" in result.output
    assert not any("undecided" in line for line in lines[2:])  # every judged choice is at least 2x uniform
    assert lines[-2:] == ["epoch 2: decided: every cell input and primitive has its top weight at least 1.5x uniform "
                          "(lowest", "  1.88x, mean entropy 0.775)"]
    assert max(map(len, lines)) <= 100


def test_arch_evolution_and_an_earlier_epoch(runs_dir):
    out = invoke(runs_dir, "arch", "aaaa1", "--epoch", "0").output
    lines = out.splitlines()
    assert lines[0].startswith("architecture weights of run aaaa1111 at epoch 0")
    assert "  x              60.0%*     8.0%      8.0%      8.0%     8.0%     8.0%     0.735   52.0%" in lines
    evolution = lines[lines.index("argmax by epoch") + 1:]
    assert evolution[0].split() == ["0", "1", "2"]
    assert evolution[1].split() == ["cell0", "input", "x", "image[0]", "image[2]", "image[2]"]
    assert "cell1 step0 op" in out and any(line.split()[-3:] == ["sum"] * 3 for line in evolution)
    assert evolution[10:14] == ["cell1 step0 op       sum        sum        sum", "",
                                "mean entropy         0.775      0.775      0.775",
                                "min top ratio        1.88x      1.88x      1.88x"]
    assert lines[-2].startswith("epoch 0: decided:")


def test_arch_run_length_encodes_a_long_evolution():
    per_epoch = {e: [{"kind": "step_op", "cell": 0, "step_index": 0, "slot": None, "choice": c, "step": e,
                      "weight": 0.9 if (c == "sum") == (e < 10) else 0.1} for c in ("sum", "attention")]
                 for e in range(20)}
    lines = inspect_commands.evolution_lines(per_epoch)
    assert lines[:3] == ["cell0 step0 op  sum e0-9, attention e10-19", "", "certainty at 12 of 20 epochs"]
    assert lines[3].split() == ["0", "2", "3", "5", "7", "9", "10", "12", "14", "16", "17", "19"]
    assert lines[4].split() == ["mean", "entropy", *["0.469"] * 12]
    assert lines[5].split() == ["min", "top", "ratio", *["1.80x"] * 12]


def flat_search(runs):
    """A registry with one search whose weights barely leave uniform: cell0's slot x and cell0's
    primitive stay below 1.5x uniform, and the step inputs (not judged) too."""
    with Registry(runs / "registry.db") as registry:
        run_id = create(registry, runs, "flat_search", "search", recipe("ssl", 1.0, 0), 0, this_host(), objective="ssl")
        for epoch in range(2):
            w = ArchWeights(
                input_names=INPUTS, primitives=DEFAULT_PRIMITIVES,
                cell_input=((peaked(6, 2, 0.18 + 0.01 * epoch), peaked(6, 4, 0.3)), (peaked(7, 4), peaked(7, 6))),
                step_input=(((peaked(2, 1, 0.52), peaked(2, 0, 0.55)),), ((peaked(2, 0), peaked(2, 1)),)),
                step_op=((peaked(5, 4, 0.22),), (peaked(5, 1, 0.4),)),
                cell_multiplier=2,
            )
            registry.add_arch_weights([(run_id, epoch + 1, epoch, r.kind, r.cell, r.step, r.slot, r.choice, r.weight)
                                       for r in w.records()])
    return run_id


def test_arch_marks_undecided_choices_and_says_so(tmp_path, utc):
    runs = tmp_path / "runs"
    run_id = flat_search(runs)
    result = invoke(runs, "arch", run_id[:8])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("cell0 inputs   image[0]  image[1]  image[2]  image[3]  text[0]  text[1]  entropy  margin")
    assert lines[start + 1:start + 3] == [
        "  x undecided     16.2%     16.2%     19.0%*    16.2%    16.2%    16.2%     0.999    2.8%",
        "  y               14.0%     14.0%     14.0%     14.0%    30.0%*   14.0%     0.970   16.0%"]
    step_inputs = lines.index("cell0 step0 inputs     in0     in1  entropy  margin")
    assert lines[step_inputs + 1] == "  x                  48.0%   52.0%*    0.999    4.0%"  # 1.04x, yet not marked
    op = lines.index("cell0 step0 op    zero     sum  attention  linear_glu  concat_fc  entropy  margin")
    assert lines[op + 1] == "  undecided      19.5%   19.5%      19.5%       19.5%      22.0%*    0.999    3.1%"
    assert sum("undecided " in line for line in lines) == 2
    assert lines[lines.index("mean entropy         0.886      0.886") + 1] == "min top ratio        1.08x      1.09x"
    verdict = " ".join(line.strip() for line in lines[lines.index("min top ratio        1.08x      1.09x") + 2:])
    assert verdict == ("epoch 1: undecided: 2 choice(s) have their top weight below 1.5x uniform (cells[0].inputs[0], "
                       "cells[0].steps[0].primitive; lowest 1.09x, mean entropy 0.886); the genotype there is close to "
                       "a coin toss: raise search.arch_lr or search.min_steps")
    assert max(map(len, lines)) <= 100
    earlier = invoke(runs, "arch", run_id[:8], "--epoch", "0").output
    assert "epoch 0: undecided: 2 choice(s)" in earlier and "lowest 1.08x" in earlier


def test_arch_errors(runs_dir):
    result = invoke(runs_dir, "arch", "aaaa1", "--epoch", "9")
    assert result.exit_code == 2
    assert result.output == "Error: run aaaa1111 has no architecture weights for epoch 9 (epochs 0..2)\n"
    result = invoke(runs_dir, "arch", "ccc")
    assert result.exit_code == 2 and result.output.startswith("Error: run cccc3333 has no architecture weights")


# -- diff


@pytest.mark.parametrize("extra", [[], ["--baseline", "bmnas-mmimdb"]])
def test_diff_against_the_baseline_marks_the_differences(runs_dir, extra):
    result = invoke(runs_dir, "diff", "aaaa1", *extra)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:2] == ["aaaa1111: run ssl_search (epoch 2, step 5)", "bmnas-mmimdb: bundled baseline"]
    assert "* cells[1].steps[0].primitive  sum                linear_glu" in lines
    assert "  cells[0].steps[0].primitive  concat_fc          concat_fc" in lines
    assert lines[-1] == "similarity 0.92"


def test_diff_of_two_runs_and_of_a_run_folder_genotype(runs_dir):
    result = invoke(runs_dir, "diff", "aaaa1", "aaaa2")
    assert result.exit_code == 0, result.output
    assert "  choice                       aaaa1111           aaaa2222" in result.output
    assert result.output.endswith("similarity 0.92\n")
    assert invoke(runs_dir, "diff", "ccc").output.endswith("similarity 1.00\n")


def test_diff_errors(runs_dir):
    result = invoke(runs_dir, "diff", "ddd")
    assert result.exit_code == 2
    assert result.output == \
        f"Error: run dddd4444 has no genotype yet (none logged, no genotype.json in {runs_dir / D})\n"
    result = invoke(runs_dir, "diff", "aaaa1", "--baseline", "darts")
    assert result.exit_code == 2 and result.output.startswith("Error: unknown baseline 'darts' (known: bmnas-mmimdb")
    assert invoke(runs_dir, "diff", "aaaa1", "ccc", "--baseline", "bmnas-mmimdb").exit_code == 2


# -- compare


def test_compare_shows_metrics_similarity_and_differing_config(runs_dir):
    result = invoke(runs_dir, "compare", "aaaa1", "aaaa2", "ccc")
    assert result.exit_code == 0, result.output
    rows = {line.split("  ")[0].strip(): line.split() for line in result.output.splitlines() if line.strip()}
    header = result.output.splitlines()[0].split()
    assert header == ["aaaa1111", "aaaa2222", "cccc3333"]
    assert rows["status"][-3:] == ["finished", "failed", "finished"]
    assert rows["duration"][-3:] == ["1m23s", "1m23s", "1h02m"]
    assert rows["test f1_weighted"][-3:] == ["-", "-", "0.5120"]
    assert rows["test threshold"][-3:] == ["-", "-", "0.3500"]  # the dev-chosen threshold the test was scored at
    assert rows["best dev F1"][-3:] == ["-", "-", "0.5500"]
    assert rows["genotype similarity"][-3:] == ["1.00", "0.92", "0.92"]
    assert rows["search.objective"][-3:] == ["ssl", "supervised", "ssl"]
    assert rows["data.label_ratio"][-3:] == ["0.1", "0.01", "0.1"]
    assert "search.epochs" not in rows and "config that differs" in rows


def test_compare_of_one_chains_stages_says_they_share_a_recipe(tmp_path):
    """A pipeline's stages store one recipe: no key differs, and the stages are what does."""
    runs = tmp_path / "runs"
    config = recipe("ssl", 0.1, 0)
    with Registry(runs / "registry.db") as registry:
        search = create(registry, runs, "p/search", "search", config, 0, this_host())
        create(registry, runs, "p/finetune", "finetune", config, 60, this_host(), parent_id=search)
        ids = [run.id for run in registry.runs()]
    result = invoke(runs, "compare", *ids)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "config: the same recipe in every run; they run different stages of it (finetune, search)")


def test_compare_needs_two_runs(runs_dir):
    result = invoke(runs_dir, "compare", "aaaa1")
    assert result.exit_code == 2 and "compare needs at least two runs" in result.output


# -- export


def test_export_writes_files_that_parse(runs_dir, tmp_path):
    target = tmp_path / "out"
    result = invoke(runs_dir, "export", "aaaa1", "--to", str(target))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        str(target / "genotype.json"), str(target / "metrics.csv"), str(target / "config.json"),
        f"{runs_dir / A / 'checkpoint.pt'}  (in the run folder, not copied)",
    ]
    assert Genotype.load(target / "genotype.json") == searched_genotype()
    rows = list(csv.DictReader((target / "metrics.csv").open()))
    assert len(rows) == 12 and list(rows[0]) == ["step", "epoch", "split", "key", "value", "wall_time"]
    assert rows[0] == {"step": "0", "epoch": "0", "split": "train", "key": "loss", "value": "2.0", "wall_time": str(T0)}
    assert json.loads((target / "config.json").read_text())["search"]["objective"] == "ssl"


def test_export_defaults_to_export_run_id(runs_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(runs_dir, "export", "ccc")
    assert result.exit_code == 0, result.output
    folder = Path("export") / C
    assert result.output.splitlines()[0] == str(folder / "genotype.json")
    assert Genotype.load(tmp_path / folder / "genotype.json") == load_baseline("bmnas-mmimdb")
    assert sum(1 for _ in (tmp_path / folder / "metrics.csv").open()) == 15


# -- documentation


def test_every_inspect_command_is_documented_with_help():
    docs = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    commands = [c for c in vars(inspect_commands).values() if isinstance(c, click.Command)]
    assert sorted(c.name for c in commands) == ["arch", "compare", "diff", "export", "metrics", "runs", "show"]
    for command in commands:
        assert command.help and f"## `ssnas {command.name}`" in docs, command.name
        for option in command.params:
            if isinstance(option, click.Option) and option.name not in ("as_json", "as_csv"):
                assert option.opts[0] in docs, f"{command.name} {option.opts[0]}"


def test_the_commands_run_without_importing_torch(runs_dir, tmp_path):
    """Beyond --help (tests/test_imports.py): every command, run for real, leaves torch unimported."""
    commands = [["runs"], ["show", "aaaa1"], ["metrics", "aaaa1", "--key", "loss", "--plot"], ["arch", "aaaa1"],
                ["diff", "aaaa1"], ["compare", "aaaa1", "ccc"], ["export", "aaaa1", "--to", str(tmp_path / "x")]]
    code = (
        "import sys\n"
        "from ssnas.cli import main\n"
        f"for argv in {commands!r}:\n"
        f"    main(['--runs', {str(runs_dir)!r}, *argv], standalone_mode=False)\n"
        "print([m for m in ('torch', 'torchvision', 'transformers', 'tensorboard', 'textual') if m in sys.modules],"
        " file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "[]"


# -- genotypes bound to other input-node names (run.genotype_nodes) ---------------------------------


@pytest.fixture
def views_runs(tmp_path, views_file):
    """Two finetune runs on a features file whose nodes are pix, fou and zer levels: BM-NAS's genotype mapped
    onto them (its genotype.json as the worker binds it), and a random genotype drawn on them."""
    from ssnas.data.features import read_features
    from ssnas.execution import genotype_from
    from ssnas.recipe import load_recipe

    path = tmp_path / "bmnas.toml"
    path.write_text(f'[run]\nstage = "finetune"\ngenotype = "baseline:bmnas-mmimdb"\n'
                    f'genotype_nodes = {{ "image[2]" = "pix[0]", "text[0]" = "fou[0]" }}\n'
                    f'[data]\ndataset = "features"\npath = "{views_file}"\n')
    mapped = load_recipe(path)
    random_recipe = load_recipe(path, ["run.genotype=random", "run.genotype_nodes={}"])
    features = read_features(views_file)
    runs = tmp_path / "runs"
    ids = []
    with Registry(runs / "registry.db") as registry:
        for recipe in (mapped, random_recipe):
            run_id = registry.create_run(name=recipe.run.genotype, stage="finetune", config=recipe.to_dict(),
                                         dataset="features")
            registry.update_run(run_id, run_dir=str(runs / run_id))
            (runs / run_id).mkdir(parents=True)
            genotype_from(recipe.run.genotype, recipe, features).save(runs / run_id / "genotype.json")
            ids.append(run_id)
    return runs, ids


def test_show_and_diff_name_the_nodes_as_the_run_bound_them(views_runs):
    runs, (mapped, drawn) = views_runs
    shown = invoke(runs, "show", mapped[:8]).output.splitlines()
    at = shown.index(next(line for line in shown if line.startswith("genotype (")))
    assert shown[at + 1:at + 4] == ["  cell0 = concat_fc(fou[0], pix[0])", "  cell1 = linear_glu(fou[0], cell0)",
                                    "  head = concat(cell0, cell1)"]
    assert any("genotype_nodes.image[2]=pix[0]" in line for line in shown)
    result = invoke(runs, "diff", mapped[:8])
    lines = result.output.splitlines()
    assert result.exit_code == 0
    assert lines[1] == "bmnas-mmimdb: bundled baseline, on the run's input nodes (pix[0], fou[0])"
    assert any(line.split() == ["cells[0].inputs", "pix[0],", "fou[0]", "pix[0],", "fou[0]"] for line in lines)
    assert lines[-1] == "similarity 1.00"
    result = invoke(runs, "diff", drawn[:8])
    lines = result.output.splitlines()
    assert lines[1] == ("bmnas-mmimdb: bundled baseline; the run's data lacks input nodes it reads "
                        "(image[2], text[0]), so those match nothing")
    assert "image[2]" not in invoke(runs, "show", drawn[:8]).output
