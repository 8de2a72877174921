"""Snapshots of the dashboard's main screens, at 80x24 and 160x48, over a registry of fixed runs.

Deterministic by construction: run ids, times, metrics, weights, genotypes and the log come from
`tests.tui_snapshot_apps.fill_registry`; the app's clock is frozen; the runs folder is the relative
`runs` (the empty state prints its path) in a temporary working directory; the poll interval is
longer than a test, so each screen shows what its first reads returned. The running run names this
test process on this host, so the registry never reconciles it to lost.

    pytest tests/test_tui_snapshots.py --snapshot-update   # after a deliberate change of the screens
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.tui_snapshot_apps import RUNS, SEARCH_EPOCHS, SEARCH_ID, SEARCH_STEPS, dashboard, fill_registry
from tui.screens.dialogs import HelpScreen
from tui.screens.run import RunScreen
from tui.widgets.curves import MetricCurves
from tui.widgets.genotype_view import GenotypeDiffView, GenotypeGraph
from tui.widgets.heatmap import ArchHeatmap

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
RUNS_DIR = Path("runs")


@pytest.fixture
def runs_dir(tmp_path, monkeypatch) -> Path:
    """`runs`, relative to a fresh working directory, with no registry yet."""
    monkeypatch.chdir(tmp_path)
    return RUNS_DIR


@pytest.fixture
def filled(runs_dir) -> Path:
    fill_registry(runs_dir)
    return runs_dir


async def until(pilot, condition, timeout: float = 10.0) -> None:
    """Let the app's workers run until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the dashboard")
        await pilot.pause(0.02)


def rows_shown(app) -> int:
    tables = app.runs_screen.query("#runs-table")  # empty until the screen has composed
    return tables.first().row_count if tables else 0


async def table_filled(pilot) -> None:
    await until(pilot, lambda: rows_shown(pilot.app) == len(RUNS))


async def search_run_open(pilot) -> None:
    """The search run's view, every pane loaded: curves, every epoch's weights, its genotype and the diff."""
    app = pilot.app
    await table_filled(pilot)
    app.open_run(SEARCH_ID)
    await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.ready)
    screen = app.screen
    curves, heatmap = screen.query_one(MetricCurves), screen.query_one(ArchHeatmap)
    graph, diff = screen.query_one(GenotypeGraph), screen.query_one(GenotypeDiffView)
    await until(pilot, lambda: len(curves.series.get("loss/train", ())) == SEARCH_STEPS
                and heatmap.epochs == list(range(SEARCH_EPOCHS))
                and graph.genotype is not None and diff.diff is not None
                and screen.log_view.line_count > 0)


def on_tab(key: str):
    async def scenario(pilot) -> None:
        await search_run_open(pilot)
        await pilot.press(key)

    return scenario


@pytest.mark.parametrize("size", SIZES)
def test_runs_table(snap_compare, filled, size):
    """Eight runs: a finished pipeline with its finetune running at 42%, a sweep of three (finished,
    failed, queued), a lost run and a killed one, newest first."""
    assert snap_compare(dashboard(filled), terminal_size=size, run_before=table_filled)


@pytest.mark.parametrize("size", SIZES)
def test_runs_table_grouped(snap_compare, filled, size):
    """`g`: the pipeline's runs and the sweep's runs together, a group column first."""
    assert snap_compare(dashboard(filled), terminal_size=size, run_before=table_filled, press=["g"])


@pytest.mark.parametrize("size", SIZES)
def test_run_view_curves(snap_compare, filled, size):
    """The finished search run opens on its curves: loss/train over 64 steps."""
    assert snap_compare(dashboard(filled), terminal_size=size, run_before=on_tab("1"))


@pytest.mark.parametrize("size", SIZES)
def test_run_view_arch_heatmap(snap_compare, filled, size):
    """Its architecture weights at the last epoch, derivation's choices marked."""
    assert snap_compare(dashboard(filled), terminal_size=size, run_before=on_tab("2"))


@pytest.mark.parametrize("size", SIZES)
def test_run_view_genotype_and_diff(snap_compare, filled, size):
    """Its genotype as a wiring diagram and its diff against bmnas-mmimdb (side by side when wide)."""
    assert snap_compare(dashboard(filled), terminal_size=size, run_before=on_tab("3"))


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, filled, size):
    """`?`: every key, by where it works, over the runs table."""

    async def scenario(pilot) -> None:
        await table_filled(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))

    assert snap_compare(dashboard(filled), terminal_size=size, run_before=scenario)


@pytest.mark.parametrize("size", SIZES)
def test_empty_state(snap_compare, runs_dir, size):
    """No registry yet: the dashboard says how to start and what it watches."""

    async def scenario(pilot) -> None:
        app = pilot.app
        await until(pilot, lambda: app.runs_screen.has_class("-empty") and "watching" in str(
            app.runs_screen.query_one("#empty").render()))

    assert snap_compare(dashboard(runs_dir), terminal_size=size, run_before=scenario)
