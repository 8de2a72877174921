"""`ssnas tui` driven by Textual's Pilot over registries filled by real tiny runs."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ssnas.registry import Registry
from ssnas.run_record import Run
from tests.e2e import ssnas, tiny_recipe
from tui.app import SsnasApp
from tui.screens.compare import CompareScreen
from tui.screens.dialogs import ConfirmScreen, HelpScreen, TagScreen
from tui.screens.launch import LaunchScreen
from tui.screens.run import RunScreen
from tui.screens.runs import EMPTY_MESSAGE, RunsScreen, order_runs, progress_text, run_matches
from tui.widgets.curves import MetricCurves
from tui.widgets.genotype_view import GenotypeDiffView, GenotypeGraph
from tui.widgets.heatmap import ArchHeatmap
from tui.widgets.log_view import LogView

FROZEN = 1_900_000_000.0
SIZE = (100, 30)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished search run and one finished pipeline (search -> pretrain -> finetune), made at once."""
    folder = tmp_path_factory.mktemp("tui")
    runs = folder / "runs"
    Registry(runs / "registry.db").close()  # one creator, then two writers
    recipes = [tiny_recipe(folder), tiny_recipe(folder, stage="pipeline")]
    with ThreadPoolExecutor(2) as pool:
        for done in pool.map(lambda recipe: ssnas(runs, "run", str(recipe), check=True), recipes):
            assert "finished" in done.stdout
    with Registry(runs / "registry.db", create=False) as registry:
        by_name = {run["name"]: run["id"] for run in registry.runs()}
    return runs, by_name


def drive(app: SsnasApp, scenario, size=SIZE) -> None:
    """Run `scenario(pilot)` against the app, headless."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)

    asyncio.run(main())


async def until(pilot, condition, timeout: float = 10.0) -> None:
    """Let the app run until `condition()` holds (polls and workers take real time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the dashboard")
        await pilot.pause(0.05)


def table_ids(app: SsnasApp) -> list[str]:
    table = app.runs_screen.table
    return [row.key.value for row in table.ordered_rows]


def run_view(app: SsnasApp, run_id: str | None = None):
    """A condition: the run view (of `run_id`) is open and polling."""
    return lambda: (isinstance(app.screen, RunScreen) and app.screen.ready
                    and (run_id is None or app.screen.run_id == run_id))


def app_for(runs: Path, **kwargs) -> SsnasApp:
    return SsnasApp(runs, poll_interval=kwargs.pop("poll_interval", 0.1), clock=lambda: FROZEN, **kwargs)


# -- the runs table ----------------------------------------------------------------------------------------


def test_rows_appear_and_the_filter_narrows_them(finished):
    runs, by_name = finished
    app = app_for(runs)

    async def scenario(pilot):
        await until(pilot, lambda: len(table_ids(app)) == 4)
        assert set(table_ids(app)) == set(by_name.values())
        await pilot.press("slash", *"finetune")
        await until(pilot, lambda: table_ids(app) == [by_name["tiny/finetune"]])
        await pilot.press("escape")  # clears the filter and goes back to the table
        assert len(table_ids(app)) == 4 and app.focused is app.runs_screen.table
        await pilot.press("slash", *"stage:search", "enter")
        assert set(table_ids(app)) == {by_name["tiny"], by_name["tiny/search"]}
        assert "2/4 runs" in str(app.runs_screen.query_one("#status-line").render())

    drive(app, scenario)


def test_sort_cycles_and_groups_keep_sweeps_together(finished):
    runs, by_name = finished
    app = app_for(runs)
    pipeline = {by_name[n] for n in ("tiny/search", "tiny/pretrain", "tiny/finetune")}

    async def scenario(pilot):
        await until(pilot, lambda: len(table_ids(app)) == 4)
        screen = app.runs_screen
        await pilot.press("s")
        assert screen.sort_key == "id" and table_ids(app) == sorted(by_name.values())
        await pilot.press("S")
        assert table_ids(app) == sorted(by_name.values(), reverse=True)
        await pilot.press("g")
        ids = table_ids(app)
        positions = sorted(ids.index(run_id) for run_id in pipeline)
        assert positions == list(range(positions[0], positions[0] + 3))  # contiguous
        assert screen.table.ordered_columns[0].key.value == "group"

    drive(app, scenario)


def test_order_and_match_helpers():
    runs = [Run(id="a", created_at=1, best_f1=None, group_id="g1", name="x", tags=["best"], stage="search",
                status="finished"),
            Run(id="b", created_at=2, best_f1=0.5, group_id="g2", name="y", stage="search", status="finished"),
            Run(id="c", created_at=3, best_f1=0.7, group_id="g1", name="z", stage="search", status="finished")]
    assert order_runs(runs, "f1", True, False, 0) == ["c", "b", "a"]  # missing values last
    assert order_runs(runs, "f1", False, False, 0) == ["b", "c", "a"]
    assert order_runs(runs, "created", True, True, 0) == ["c", "a", "b"]  # g1 holds the newest run
    assert run_matches(runs[0], ["tag:best"]) and not run_matches(runs[1], ["tag:best"])
    assert run_matches(runs[2], ["z", "g1"]) and not run_matches(runs[2], ["z", "g2"])


# -- one run -----------------------------------------------------------------------------------------------


def test_a_search_run_shows_curves_weights_genotype_diff_and_log(finished):
    runs, by_name = finished
    app = app_for(runs)
    search = by_name["tiny"]

    async def scenario(pilot):
        await until(pilot, lambda: search in table_ids(app))
        app.runs_screen.select_run(search)
        await pilot.press("enter")
        await until(pilot, run_view(app))
        screen = app.screen
        curves = screen.query_one(MetricCurves)
        await until(pilot, lambda: "loss/train" in curves.series)
        assert len(curves.series["loss/train"]) == 6 and screen.metric_key == "loss"
        await pilot.press("m")
        assert screen.metric_key == "epoch_loss" and set(curves.series) == {"epoch_loss/arch", "epoch_loss/train"}

        heatmap = screen.query_one(ArchHeatmap)
        await until(pilot, lambda: heatmap.epochs == [0, 1])
        await pilot.press("2")
        assert heatmap.epoch == 1
        await pilot.press("left")
        assert heatmap.epoch == 0
        await pilot.press("right")
        assert heatmap.epoch == 1

        await pilot.press("3")
        graph, diff = screen.query_one(GenotypeGraph), screen.query_one(GenotypeDiffView)
        await until(pilot, lambda: graph.genotype is not None and diff.diff is not None)
        assert screen.diff_target == "baseline" and "bmnas-mmimdb" in str(screen.query_one("#diff-note").render())
        assert 0.0 <= diff.diff.similarity <= 1.0

        log = screen.query_one(LogView)
        await until(pilot, lambda: any("checkpoint after epoch 1" in line for line in log.lines))
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)

    drive(app, scenario)


def test_the_baseline_diff_says_when_the_data_lacks_its_nodes(tmp_path, views_file):
    """A search on six views named unlike MM-IMDB's: BM-NAS's genotype has no nodes there to compare."""
    runs = tmp_path / "runs"
    recipe = tmp_path / "views.toml"
    recipe.write_text(f'[run]\nname = "views"\nstage = "search"\n[data]\ndataset = "features"\n'
                      f'path = "{views_file}"\nbatch_size = 16\n[space]\nchannels = 8\npositions = 4\n'
                      "[search]\nepochs = 1\nmin_steps = 0\n")
    ssnas(runs, "run", str(recipe), check=True)
    app = app_for(runs)

    async def scenario(pilot):
        await until(pilot, lambda: len(table_ids(app)) == 1)
        await pilot.press("enter")
        await until(pilot, run_view(app))
        screen = app.screen
        await pilot.press("3")
        note = screen.query_one("#diff-note")
        await until(pilot, lambda: "lacks the input nodes" in str(note.render()))
        assert "image[2], text[0]" in str(note.render())

    drive(app, scenario)


def test_b_diffs_a_pretrain_run_against_its_parent_search(finished):
    runs, by_name = finished
    app = app_for(runs)

    async def scenario(pilot):
        await until(pilot, lambda: len(app.runs) == 4)
        app.open_run(by_name["tiny/pretrain"])
        await until(pilot, run_view(app))
        screen = app.screen
        diff = screen.query_one(GenotypeDiffView)
        await until(pilot, lambda: diff.diff is not None)
        await pilot.press("b")
        assert screen.diff_target == "parent"
        await until(pilot, lambda: screen.other is not None and screen.other_label == by_name["tiny/search"][:8])
        await until(pilot, lambda: diff.diff.similarity == 1.0)  # pretraining keeps the searched genotype
        await pilot.press("b")
        assert screen.diff_target == "baseline"

    drive(app, scenario)


# -- actions -----------------------------------------------------------------------------------------------


def test_tag_through_the_dialog_writes_the_registry(finished):
    runs, by_name = finished
    app = app_for(runs)
    run_id = by_name["tiny/finetune"]

    async def scenario(pilot):
        await until(pilot, lambda: run_id in table_ids(app))
        app.runs_screen.select_run(run_id)
        await pilot.press("t")
        assert isinstance(app.screen, TagScreen)
        await pilot.press(*"best r10", "enter")
        await until(pilot, lambda: "best" in (app.runs[run_id].get("tags") or []))
        await pilot.press("slash", *"tag:best")
        await until(pilot, lambda: table_ids(app) == [run_id])

    drive(app, scenario)
    with Registry(runs / "registry.db", create=False) as registry:
        assert registry.get_run(run_id)["tags"] == ["best", "r10"]
        registry.remove_tags(run_id, ["best", "r10"])


def test_marked_runs_compare_side_by_side(finished):
    runs, by_name = finished
    app = app_for(runs)

    async def scenario(pilot):
        await until(pilot, lambda: len(table_ids(app)) == 4)
        app.runs_screen.select_run(by_name["tiny"])
        await pilot.press("space")
        app.runs_screen.select_run(by_name["tiny/search"])
        await pilot.press("space", "c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        diff = app.screen.query_one(GenotypeDiffView)
        await until(pilot, lambda: diff.diff is not None)
        summary = app.screen.query_one("#compare-summary")
        assert summary.row_count >= 5 and len(summary.columns) == 3
        assert diff.diff.similarity == 1.0  # the same seed searched twice

    drive(app, scenario)


def test_help_and_the_command_palette_open_a_run(finished):
    runs, by_name = finished
    app = app_for(runs)

    async def scenario(pilot):
        await until(pilot, lambda: len(app.runs) == 4)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "ctrl+p")
        await pilot.press(*by_name['tiny/finetune'][:8])
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, run_view(app))
        assert app.screen.run_id == by_name["tiny/finetune"]

    drive(app, scenario)


def test_launch_validates_then_a_live_run_shows_progress_and_is_killed(tmp_path):
    """A recipe launched from the dialog runs in a real worker; the table follows it; k + y kills it."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    tiny_recipe(recipes, epochs=400)
    runs = tmp_path / "runs"
    app = app_for(runs, recipes_dir=recipes, poll_interval=0.2)

    async def scenario(pilot):
        assert app.runs_screen.has_class("-empty")
        await pilot.press("n")
        assert isinstance(app.screen, LaunchScreen)
        await pilot.press("tab", *"search.epochs=oops")
        check = app.screen.query_one("#recipe-check")
        await until(pilot, lambda: "search.epochs" in str(check.render()) and "integer" in str(check.render()))
        await pilot.press(*["backspace"] * 4, *"400")
        await until(pilot, lambda: str(check.render()).startswith("ok"))
        await pilot.press("enter")
        await until(pilot, lambda: len(app.runs) == 1, timeout=30)
        [run_id] = app.runs
        assert table_ids(app) == [run_id] and not app.runs_screen.has_class("-empty")
        await until(pilot, lambda: (app.runs[run_id].get("progress") or 0) > 0, timeout=60)
        first = app.runs[run_id]["progress"]
        await until(pilot, lambda: app.runs[run_id]["progress"] > first, timeout=30)
        await until(pilot, lambda: str(app.runs_screen.table.get_cell(run_id, "progress"))
                    == progress_text(app.runs[run_id]["progress"]) != "0.0%")
        await pilot.press("k")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: app.runs[run_id]["status"] == "killed", timeout=30)
        assert str(app.runs_screen.table.get_cell(run_id, "status")) == "killed"

    drive(app, scenario)


# -- robustness --------------------------------------------------------------------------------------------


def test_no_registry_shows_the_empty_state_until_one_appears(tmp_path):
    runs = tmp_path / "runs"
    app = app_for(runs)

    async def scenario(pilot):
        await pilot.pause(0.3)
        screen = app.runs_screen
        assert screen.has_class("-empty")
        assert EMPTY_MESSAGE in str(screen.query_one("#empty").render())
        with Registry(runs / "registry.db") as registry:
            run_id = registry.create_run(name="late", stage="search", config={})
        await until(pilot, lambda: table_ids(app) == [run_id])
        assert not screen.has_class("-empty")

    drive(app, scenario)


def test_corrupt_rows_and_deleted_runs_are_messages_not_crashes(tmp_path):
    runs = tmp_path / "runs"
    with Registry(runs / "registry.db") as registry:
        broken_config = registry.create_run(name="broken-config", stage="search", config={"a": 1})
        broken_genotype = registry.create_run(name="broken-genotype", stage="search", config={})
        registry.add_genotype(broken_genotype, 1, 0, "{not json")
        doomed = registry.create_run(name="doomed", stage="search", config={})
    with sqlite3.connect(runs / "registry.db") as conn:
        conn.execute("UPDATE runs SET config = '{broken' WHERE id = ?", (broken_config,))
    app = app_for(runs)

    async def scenario(pilot):
        await until(pilot, lambda: len(table_ids(app)) == 3)
        app.open_run(broken_config)
        await until(pilot, run_view(app))
        info = app.screen.query_one("#info-text")
        await until(pilot, lambda: "not valid JSON" in str(info.render()))
        await pilot.press("escape")
        app.open_run(broken_genotype)
        await until(pilot, run_view(app, broken_genotype))
        note = app.screen.query_one("#genotype-note")
        await until(pilot, lambda: "unreadable" in str(note.render()))
        await pilot.press("escape")
        app.open_run(doomed)
        await until(pilot, run_view(app, doomed))
        with Registry(runs / "registry.db", create=False) as registry:
            registry.delete_run(doomed)
        await until(pilot, lambda: app.screen.gone)
        assert "deleted" in str(app.screen.query_one("#run-header").render())
        await pilot.press("escape")
        await until(pilot, lambda: doomed not in table_ids(app))

    drive(app, scenario)


def test_resize_keeps_the_table_readable(finished):
    runs, _ = finished
    app = app_for(runs)

    async def scenario(pilot):
        await until(pilot, lambda: len(table_ids(app)) == 4)
        columns = lambda: [c.key.value for c in app.runs_screen.table.ordered_columns]  # noqa: E731
        assert "objective" in columns()
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: "objective" not in columns())
        assert len(table_ids(app)) == 4
        await pilot.resize_terminal(160, 50)
        await until(pilot, lambda: "dataset" in columns())

    drive(app, scenario, size=(120, 30))


def test_start_up_imports_no_torch(tmp_path):
    code = f"""
import asyncio, sys
from pathlib import Path
from tui.app import SsnasApp

async def main():
    app = SsnasApp(Path({str(tmp_path / 'runs')!r}), poll_interval=0.1)
    async with app.run_test() as pilot:
        await pilot.pause(0.5)

asyncio.run(main())
print(json.dumps(sorted(m for m in ("torch", "torchvision", "transformers", "tensorboard") if m in sys.modules)))
"""
    done = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parent.parent)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_tui_command_imports_no_textual_until_it_runs():
    code = ("import sys\nfrom ssnas.commands.tui import tui\n"
            "print([m for m in ('textual', 'torch') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_report_of_a_runs_group_opens_from_the_table(finished):
    from tui.screens.report import ReportScreen

    runs, by_name = finished
    app = app_for(runs)
    run_id = by_name["tiny/finetune"]

    async def scenario(pilot):
        await until(pilot, lambda: run_id in table_ids(app))
        app.runs_screen.select_run(run_id)
        await pilot.press("p")
        assert isinstance(app.screen, ReportScreen)
        tables = app.screen.query_one("#report-tables")
        await until(pilot, lambda: "F1 weighted" in str(tables.render()))
        text = str(tables.render())
        assert "1/1" in text and "similarity: diff(genotype, bmnas-mmimdb)" in text  # one finished chain, scored
        await pilot.press("escape")
        assert not isinstance(app.screen, ReportScreen)

    drive(app, scenario)


def test_long_names_shorten_in_the_middle_and_keep_their_brackets():
    from tui.screens.runs import middle_ellipsis

    assert middle_ellipsis("tiny[label_ratio=0.5]", 40).plain == "tiny[label_ratio=0.5]"
    short = middle_ellipsis("paper_synthetic[arm=ssl,label_ratio=0.1,seed=0]/finetune", 14).plain
    assert short == "paper_…inetune" and len(short) == 14
