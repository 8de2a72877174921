"""Hostile input, one case each: never a traceback. A user error is one line naming the argument, file or key
and exit status 2; a command on a registry leaves no new row and nothing queued or running. One corrupt
registry row breaks nothing but itself, and what people read never carries a raw control character."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from ssnas.cli import main
from ssnas.errors import GenotypeError, RegistryError
from ssnas.nas.genotype import Genotype, parse_bmnas
from ssnas.registry import Registry
from ssnas.runs.format import printable
from ssnas.scheduling import state
from tests.e2e import RECIPES, tiny_recipe

DEEP = 3000  # far past Python's recursion limit


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A runs folder: `good` (finished) with a finished child, `bad1` (failed) whose stored config is corrupt,
    `odd1` named and tagged with control characters, and a recipe beside it. This machine has GPUs 0 and 1."""
    monkeypatch.setattr(state, "detect_gpus", lambda: ["0", "1"])
    runs = tmp_path / "runs"
    with Registry(runs / "registry.db") as registry:
        ids = {name: registry.create_run(name=name, stage="search", config={"search": {"epochs": 1}}, run_id=name,
                                         tags=tags)
               for name, tags in (("good", ["paper"]), ("bad1", ["paper"]))}
        ids["child"] = registry.create_run(name="good/finetune", stage="finetune", config={}, parent_id="good",
                                           run_id="child", tags=["paper"])
        ids["odd1"] = registry.create_run(name="odd\x1b[2J\r", stage="finetune", config={}, run_id="odd1",
                                          tags=["x\x1b[31m", "arm:\x07evil"])  # as rows older than the rule
        for run_id in ids.values():
            registry.finish_run(run_id, "failed" if run_id == "bad1" else "finished", error="boom\x1b[2J")
    with sqlite3.connect(runs / "registry.db") as conn:
        conn.execute("UPDATE runs SET config = '{broken' WHERE id = 'bad1'")
    tiny_recipe(tmp_path)
    return runs


def invoke(runs: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(main, ["--runs", str(runs), *args], input=input)


def the_error(result) -> str:
    """The one line of error a user error prints (click's usage lines aside), checked as such."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines()
             if line.strip() and not line.startswith(("Usage:", "Try '"))]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert not any(ch in lines[0] for ch in "\x1b\r\x07\x08"), lines
    return lines[0]


def rows(runs: Path) -> list[tuple[str, str]] | None:
    """Every run and its status; None without a registry."""
    if not (runs / "registry.db").exists():
        return None
    with Registry(runs / "registry.db", create=False, readonly=True) as registry:
        return sorted((run.id, run.status) for run in registry.runs())


# -- one line and nothing changed ------------------------------------------------------------------------


def recipe_of(runs: Path) -> str:
    return str(runs.parent / "tiny_search.toml")


CASES = {
    "where-nested-parentheses": (["runs", "--where", "(" * DEEP + "seed = 1" + ")" * DEEP], "--where: nested more"),
    "where-nested-nots": (["runs", "--where", "NOT " * DEEP + "seed = 1"], "--where: nested more"),
    "where-huge-integer": (["runs", "--where", "seed = 1" + "0" * 5000], "--where: 1000"),
    "where-integer-past-64-bits": (["runs", "--where", "seed = 99999999999999999999"], "out of range"),
    "where-too-many-terms": (["runs", "--where", " OR ".join(["seed = 1"] * 1500)], "--where: Expression tree"),
    "run-max-parallel-negative": (["run", "{recipe}", "--detach", "--max-parallel", "-1"], "--max-parallel: -1"),
    "run-max-parallel-zero": (["run", "{recipe}", "--detach", "--max-parallel", "0"], "--max-parallel: 0"),
    "resume-max-parallel-zero": (["resume", "bad1", "--detach", "--max-parallel", "0"], "--max-parallel: 0"),
    "rerun-max-parallel-zero": (["rerun", "bad1", "--detach", "--max-parallel", "0"], "--max-parallel: 0"),
    "queue-max-parallel-zero": (["queue", "--max-parallel", "0"], "--max-parallel: 0"),
    "run-gpus-word": (["run", "{recipe}", "--detach", "--gpus", "abc"], "--gpus: 'abc' is not a GPU index"),
    "run-gpus-empty": (["run", "{recipe}", "--detach", "--gpus", ""], "--gpus: '' is not a GPU index"),
    "run-gpus-negative": (["run", "{recipe}", "--detach", "--gpus", "0,-1"], "--gpus: '-1' is not a GPU index"),
    "run-gpus-absent": (["run", "{recipe}", "--detach", "--gpus", "0,7"], "--gpus: GPU 7 is not on this machine"),
    "queue-gpus-word": (["queue", "--gpus", "first"], "--gpus: 'first' is not a GPU index"),
    "tag-empty": (["tag", "good", ""], "tag '': tags must be non-empty"),
    "tag-blank": (["tag", "good", "  "], "tag '  ': tags must be non-empty"),
    "tag-control": (["tag", "good", "a\x1b[2Jb"], "has a control character (\\x1b)"),
    "rm-with-children": (["rm", "good", "--yes"], "good has 1 child run(s) (child): delete them with it"),
    "rm-child-running": (["rm", "good", "--with-children", "--yes"], "child is still running"),
    "export-non-empty": (["export", "child", "--to", "{tmp}/taken"], "taken: not empty (notes.txt)"),
    "export-force-foreign": (["export", "child", "--to", "{tmp}/taken", "--force"], "holds notes.txt"),
    "show-deep-genotype": (["show", "good"], "genotype.json: nested too deeply"),
}


@pytest.mark.parametrize(("argv", "expected"), CASES.values(), ids=CASES.keys())
def test_a_bad_argument_is_one_line_and_changes_nothing(folder, argv, expected, request):
    tmp = folder.parent
    if request.node.callspec.id == "rm-child-running":
        with Registry(folder / "registry.db", create=False) as registry:
            registry.update_run("child", status="running", pid=os.getpid())
    (tmp / "taken").mkdir()
    (tmp / "taken" / "notes.txt").write_text("mine\n")
    (folder / "good").mkdir()
    (folder / "good" / "genotype.json").write_text("[" * DEEP + "]" * DEEP)
    before = rows(folder)
    line = the_error(invoke(folder, *[a.format(recipe=recipe_of(folder), tmp=tmp) for a in argv]))
    assert expected in line
    assert rows(folder) == before and all(status != "queued" for _, status in before or [])
    assert (tmp / "taken" / "notes.txt").read_text() == "mine\n" and len(list((tmp / "taken").iterdir())) == 1
    assert not (folder / "scheduler.lock").exists()  # no scheduler was started


RECIPES_CASES = {
    "extends-chain-too-long": ("chain", "r63.toml: extends: more than 64 recipes in one chain (from r0.toml)"),
    "extends-cycle": ("cycle", "extends: cycle"),
    "toml-nested-arrays": ('x = {deep_list}', "nested too deeply (more than 32 levels)"),
    "toml-nested-dotted-keys": ('{dotted} = 1', "nested too deeply (more than 32 levels)"),
    "set-nested-value": ("--set", "--set search.epochs=[[[["),
    "name-control": ('[run]\nname = "a\\u001b[2Jb"', "run.name: has a control character (\\x1b)"),
    "tag-control": ('[run]\ntags = ["ok", "b\\u0007"]', "run.tags[1]: tag 'b\\x07': has a control character"),
    "tag-blank": ('[run]\ntags = [" "]', "run.tags[0]: tag ' ': tags must be non-empty"),
    "genotype-nested": ('[run]\nstage = "finetune"\ngenotype = "deep.json"', "deep.json: nested too deeply"),
}


@pytest.mark.parametrize(("body", "expected"), RECIPES_CASES.values(), ids=RECIPES_CASES.keys())
def test_a_bad_recipe_is_one_line_and_creates_no_registry(tmp_path, monkeypatch, body, expected):
    monkeypatch.chdir(tmp_path)  # the recipe named as people name it: r0.toml
    base = f'extends = "{RECIPES / "base.toml"}"\n'
    (tmp_path / "deep.json").write_text("[" * DEEP + "]" * DEEP)
    overrides = []
    if body == "chain":
        for i in range(1200):
            parent = f"r{i + 1}.toml" if i < 1199 else RECIPES / "base.toml"
            (tmp_path / f"r{i}.toml").write_text(f'extends = "{parent}"\n')
        recipe = tmp_path / "r0.toml"
    elif body == "cycle":
        (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
        (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
        recipe = tmp_path / "a.toml"
    else:
        if body == "--set":
            overrides = ["--set", "search.epochs=" + "[" * DEEP + "]" * DEEP]
            body = ""
        recipe = tmp_path / "r.toml"
        recipe.write_text(base + body.format(deep_list="[" * DEEP + "]" * DEEP, dotted=".".join(["a"] * DEEP)) + "\n")
    runs = tmp_path / "runs"
    line = the_error(invoke(runs, "run", recipe.name, "--detach", *overrides))
    assert expected in line and len(line) < 300
    assert not runs.exists()
    assert the_error(invoke(runs, "recipe", "show", recipe.name, *overrides)) == line


def test_a_runs_folder_that_cannot_be_made_is_one_line_and_leaves_nothing(folder, tmp_path):
    (tmp_path / "afile").write_text("")
    cases = {tmp_path / "afile" / "runs": "Not a directory"}
    if Path("/sys").is_dir():
        cases[Path("/sys/ssnas-runs")] = "Operation not permitted"
    for runs, reason in cases.items():
        line = the_error(invoke(runs, "run", recipe_of(folder), "--detach"))
        assert line == f"Error: {runs}: cannot write ({reason})"
        assert not runs.exists()
    assert (tmp_path / "afile").read_text() == ""


def test_a_full_disk_leaves_no_registry_behind(folder, tmp_path, monkeypatch):
    def full(registry):  # as SQLite leaves a new file on a full disk: created, nothing written
        registry.path.touch()
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Registry, "_configure", full)
    runs = tmp_path / "new" / "runs"
    line = the_error(invoke(runs, "run", recipe_of(folder), "--detach"))
    assert line == f"Error: {runs / 'registry.db'}: database or disk is full"
    assert not (runs / "registry.db").exists()  # a later reader would trip on an empty one
    assert not runs.exists() or not any(runs.iterdir())  # the submission makes the folder itself first
    with pytest.raises(RegistryError, match="disk is full"):
        Registry(tmp_path / "other" / "deeper" / "registry.db")
    assert not (tmp_path / "other").exists()  # the folders the registry made for itself go too


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway")
def test_a_read_only_runs_folder_is_one_line_naming_it(folder, tmp_path):
    runs = tmp_path / "readonly"
    runs.mkdir()
    runs.chmod(0o555)
    try:
        line = the_error(invoke(runs, "run", recipe_of(folder), "--detach"))
        assert line == f"Error: {runs}: cannot write (Permission denied)"
        assert list(runs.iterdir()) == []
    finally:
        runs.chmod(0o755)


# -- one corrupt row breaks nothing else ---------------------------------------------------------------------


@pytest.mark.parametrize("where", ["search.epochs >= 1", "search.epochs != 5", "NOT (search.epochs IS NULL)"])
def test_a_corrupt_config_row_is_left_out_of_config_filters_and_named(folder, where):
    result = invoke(folder, "runs", "--where", where)
    assert result.exit_code == 0, result.output
    assert "good" in result.stdout and "bad1" not in result.stdout
    assert result.stderr.splitlines() == ["warning: run bad1: config is not valid JSON; left out"]


def test_sorting_by_a_config_key_sorts_a_corrupt_row_as_missing(folder):
    result = invoke(folder, "runs", "--sort", "-search.epochs")
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[1].startswith("good ") and any(line.startswith("bad1 ") for line in lines[2:])


def test_a_corrupt_tags_row_is_left_out_of_tag_filters_and_reports(folder):
    with sqlite3.connect(folder / "registry.db") as conn:
        conn.execute("UPDATE runs SET tags = '[oops' WHERE id = 'bad1'")
    listed = invoke(folder, "runs", "--tag", "paper")
    assert listed.exit_code == 0 and "good" in listed.stdout and "bad1" not in listed.stdout
    assert "warning: run bad1: config is not valid JSON; tags is not valid JSON; left out" in listed.stderr
    where = invoke(folder, "runs", "--where", "tag = 'paper'")
    assert where.exit_code == 0 and "bad1" not in where.stdout
    report = invoke(folder, "report", "paper")
    assert report.exit_code == 0 and "Traceback" not in report.output, report.output


def test_show_of_a_corrupt_row_warns_and_other_runs_show_as_ever(folder):
    shown = invoke(folder, "show", "bad1")
    assert shown.exit_code == 0 and shown.stderr == "warning: run bad1: config is not valid JSON (shown as missing)\n"
    assert invoke(folder, "show", "good").exit_code == 0
    assert invoke(folder, "compare", "good", "bad1").exit_code == 0


# -- control characters are shown escaped ------------------------------------------------------------------


SHOWN = {
    "runs": (["runs"], "odd\\x1b[2J"),
    "runs-tag": (["runs", "--tag", "x\x1b[31m"], "odd\\x1b[2J"),
    "show": (["show", "odd1"], "boom\\x1b[2J"),
    "compare": (["compare", "odd1", "good"], "odd\\x1b[2J"),
    "tag": (["tag", "odd1", "fine"], "odd1: x\\x1b[31m, arm:\\x07evil, fine"),
    "report": (["report", "arm:\x07evil"], "\\x07evil"),
    "report-md": (["report", "arm:\x07evil", "--md"], "\\x07evil"),
}


@pytest.mark.parametrize(("argv", "escaped"), SHOWN.values(), ids=SHOWN.keys())
def test_names_tags_and_errors_are_shown_escaped(folder, argv, escaped):
    result = invoke(folder, *argv)
    assert result.exit_code == 0, result.output
    assert escaped in result.output and not any(ch in result.output for ch in "\x1b\r\x07"), result.output


def test_a_tag_stored_before_the_rule_can_be_removed(folder):
    result = invoke(folder, "tag", "odd1", "x\x1b[31m", "--remove")
    assert result.exit_code == 0 and result.output == "odd1: arm:\\x07evil\n"


def test_json_keeps_the_raw_text(folder):
    result = invoke(folder, "runs", "--json")
    odd = next(run for run in json.loads(result.stdout) if run["id"] == "odd1")
    assert odd["name"] == "odd\x1b[2J\r" and "x\x1b[31m" in odd["tags"]


def test_printable_escapes_every_control_and_keeps_the_rest():
    assert printable("a\x00\t\n\x1b\x7f\x85\u202e\u2028é✓") == "a\\x00\\x09\\x0a\\x1b\\x7f\\x85\\u202e\\u2028é✓"


# -- delete with children, export --force, genotypes --------------------------------------------------------


def test_rm_with_children_asks_once_with_the_count_and_deletes_the_subtree(folder):
    (folder / "child").mkdir()
    refused = invoke(folder, "rm", "good", "--with-children", input="n\n")
    assert "delete good (good) and 1 run(s) below it, and their folders?" in refused.output
    assert refused.exit_code == 2 and ("good", "finished") in rows(folder)
    done = invoke(folder, "rm", "good", "--with-children", input="y\n")
    assert done.exit_code == 0 and done.stdout.splitlines()[-2:] == ["deleted good", "deleted child"]
    assert [run_id for run_id, _ in rows(folder)] == ["bad1", "odd1"] and not (folder / "child").exists()


def test_rm_of_a_run_and_its_children_named_together_needs_no_flag(folder):
    assert invoke(folder, "rm", "good", "child", "--yes").exit_code == 0
    assert [run_id for run_id, _ in rows(folder)] == ["bad1", "odd1"]


def test_export_force_replaces_an_earlier_export_only(folder, tmp_path):
    target = tmp_path / "out"
    assert invoke(folder, "export", "good", "--to", str(target)).exit_code == 0
    (target / "genotype.json").write_text("{}")  # as an earlier export of a run with a genotype left it
    assert invoke(folder, "export", "child", "--to", str(target), "--force").exit_code == 0
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "metrics.csv"]
    assert json.loads((target / "config.json").read_text()) == {}


@pytest.mark.parametrize("text", ["[" * DEEP + "]" * DEEP, "[" * 40 + "]" * 40, '{"a":' * 40 + "1" + "}" * 40],
                         ids=["past-the-parser", "past-our-limit", "objects"])
def test_a_deeply_nested_genotype_is_a_genotype_error(text):
    with pytest.raises(GenotypeError, match=r"^g\.json: nested too deeply \(more than 32 levels\)$"):
        Genotype.from_json(text, where="g.json")


def test_a_deeply_nested_bmnas_genotype_is_a_genotype_error():
    with pytest.raises(GenotypeError, match="nested too deeply"):
        parse_bmnas("Genotype(edges=" + "-" * 100_000 + "1, steps=[], concat=[])")


# -- the dashboard -----------------------------------------------------------------------------------------


def test_the_dashboard_escapes_names_and_deletes_a_run_with_its_children_after_saying_so(folder):
    import asyncio

    from tui.app import SsnasApp
    from tui.data import error_text
    from tui.screens.dialogs import ConfirmScreen
    from tui.screens.runs import run_cells

    with Registry(folder / "registry.db", create=False, readonly=True) as registry:
        assert run_cells(registry.get_run("odd1"), 0.0)["name"].plain == "odd\\x1b[2J\\x0d"
    assert error_text(RuntimeError("bad\x1b[2J")) == "RuntimeError: bad\\x1b[2J"
    app = SsnasApp(folder, poll_interval=0.1)

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            while "child" not in app.runs:
                await pilot.pause(0.05)
            app.runs_screen.select_run("good")
            await pilot.press("D")
            assert isinstance(app.screen, ConfirmScreen)
            assert "Delete run good (good) and the 1 run(s) below it?" in app.screen.question
            await pilot.press("y")
            for _ in range(200):
                if "good" not in app.runs and "child" not in app.runs:
                    break
                await pilot.pause(0.05)

    asyncio.run(scenario())
    assert [run_id for run_id, _ in rows(folder)] == ["bad1", "odd1"]
