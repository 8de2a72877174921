"""Dashboard widgets mounted in tiny apps: behaviour through their state and their rendered text."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Sparkline
from textual_plotext import PlotextPlot

from ssnas.baselines import load_baseline
from ssnas.nas.genotype import CellGene, Genotype, StepGene, diff
from tests.tui_snapshot_apps import NAMES, ArchApp, arch_by_epoch, arch_rows, final_genotype
from tui.widgets.curves import MAX_POINTS, MetricCurves, thin
from tui.widgets.genotype_view import NO_GENOTYPE, GenotypeDiffView, GenotypeGraph
from tui.widgets.heatmap import EMPTY_TEXT, ArchHeatmap, short_name
from tui.widgets.log_view import LogView, level_style

pytestmark = pytest.mark.anyio


class One(App):
    """Mounts one widget; `css` sizes it."""

    def __init__(self, widget: Widget, css: str = "") -> None:
        self.widget = widget
        self.CSS = css
        super().__init__()

    def compose(self) -> ComposeResult:
        yield self.widget


def rendered(widget: Widget) -> str:
    """The widget's lines as plain text, padding included."""
    size = widget.outer_size
    return "\n".join(strip.text.rstrip() for strip in widget.render_lines(Region(0, 0, size.width, size.height)))


def series(n: int, start: float = 2.0) -> list[tuple[int, float]]:
    return [(i, start * math.exp(-i / max(n, 1))) for i in range(n)]


# -- curves ---------------------------------------------------------------------------------------


async def test_curves_empty_says_so():
    curves = MetricCurves()
    async with One(curves).run_test(size=(80, 24)) as pilot:
        curves.set_series({})
        await pilot.pause()
        assert curves.has_class("-empty")
        assert not curves.query_one(PlotextPlot).display
        assert "no metrics yet" in rendered(curves.query_one("#curves-empty"))
        curves.set_series({"loss/train": []})
        assert curves.has_class("-empty")


async def test_curves_plot_when_tall_sparklines_when_short():
    curves = MetricCurves()
    data = {"loss/train": series(50), "f1_weighted/dev": [(i, i / 100) for i in range(0, 50, 10)]}
    async with One(curves, "MetricCurves { height: 20; }").run_test(size=(80, 24)) as pilot:
        curves.set_series(data, title="run abc")
        await pilot.pause()
        assert not curves.compact
        assert curves.query_one(PlotextPlot).display
        assert not curves.query_one("#curves-sparks").display
        curves.styles.height = 5
        await pilot.pause()
        assert curves.compact
        assert not curves.query_one(PlotextPlot).display
        rows = curves.query("SparkRow")
        assert [row.label for row in rows] == ["loss/train", "f1_weighted/dev"]
        f1 = rows.last()
        assert "0.4" in rendered(f1.stats) and "↓0 ↑0.4" in rendered(f1.stats)


async def test_curves_one_point():
    curves = MetricCurves()
    async with One(curves).run_test(size=(80, 24)) as pilot:
        curves.set_series({"loss/train": [(3, 1.5)]})
        await pilot.pause()
        assert curves.plotted == {"loss/train": [(3, 1.5)]}
        assert curves.stats["loss/train"].summary() == "1.5  ↓1.5 ↑1.5"


async def test_curves_thin_huge_series_but_keep_true_stats():
    curves = MetricCurves()
    points = series(100_000)
    points[500] = (500, 9.0)  # a spike the thinned plot may skip but max must report
    points[700] = (700, math.nan)  # a diverged value is not plotted
    async with One(curves).run_test(size=(80, 24)) as pilot:
        curves.set_series({"loss/train": points})
        await pilot.pause()
        plotted = curves.plotted["loss/train"]
        assert len(plotted) <= MAX_POINTS
        assert plotted[0] == points[0] and plotted[-1] == points[-1]
        assert curves.stats["loss/train"].high == 9.0
        assert all(math.isfinite(y) for _, y in plotted)


def test_thin_keeps_ends_and_bound():
    points = [(i, float(i)) for i in range(12_345)]
    kept = thin(points, 100)
    assert len(kept) <= 100 and kept[0] == points[0] and kept[-1] == points[-1]
    assert thin(points[:50], 100) == points[:50]


async def test_curves_update_in_place_as_series_grow():
    curves = MetricCurves()
    async with One(curves, "MetricCurves { height: 5; }").run_test(size=(80, 24)) as pilot:
        curves.set_series({"loss/train": series(10)})
        await pilot.pause()
        plot, spark = curves.query_one(PlotextPlot), curves.query_one(Sparkline)
        stats = curves.stats["loss/train"]
        curves.set_series({"loss/train": series(10) + [(10, 0.01)]})
        await pilot.pause()
        assert curves.query_one(PlotextPlot) is plot and curves.query_one(Sparkline) is spark
        assert curves.stats["loss/train"] is stats  # updated from the new tail only
        assert list(spark.data)[-1] == 0.01 and stats.low == 0.01 and stats.count == 11


# -- heatmap --------------------------------------------------------------------------------------


class HeatmapApp(App):
    def __init__(self) -> None:
        super().__init__()
        self.changes: list[int] = []

    def compose(self) -> ComposeResult:
        yield ArchHeatmap()

    def on_arch_heatmap_epoch_changed(self, message: ArchHeatmap.EpochChanged) -> None:
        self.changes.append(message.epoch)


async def test_heatmap_empty():
    heatmap = ArchHeatmap()
    async with One(heatmap).run_test(size=(80, 24)) as pilot:
        heatmap.set_weights({})
        await pilot.pause()
        assert heatmap.epoch is None
        assert EMPTY_TEXT in rendered(heatmap).replace("\n ", " ")


async def focused_heatmap(app: HeatmapApp, pilot) -> ArchHeatmap:
    """The app's heatmap holding every epoch of the sample weights, focused and drawn."""
    heatmap = app.query_one(ArchHeatmap)
    heatmap.set_weights(arch_by_epoch())
    heatmap.focus()
    await pilot.pause()
    return heatmap


async def test_heatmap_shows_last_epoch_and_keys_move_it():
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        heatmap = await focused_heatmap(app, pilot)
        assert heatmap.epoch == 3
        assert rendered(heatmap).splitlines()[0].strip().startswith("epoch 3/3 (step 64)")
        await pilot.press("left", "left")
        assert heatmap.epoch == 1
        assert "epoch 1/3 (step 32)" in rendered(heatmap)
        await pilot.press("right_square_bracket")
        assert heatmap.epoch == 2
        await pilot.press("home")
        assert heatmap.epoch == 0
        await pilot.press("left")  # stays at the first
        assert heatmap.epoch == 0
        await pilot.press("end")
        await pilot.pause()
        assert heatmap.epoch == 3
        assert app.changes == [3, 2, 1, 2, 0, 3]


async def test_heatmap_follows_new_epochs_only_at_the_last():
    app = HeatmapApp()
    async with app.run_test(size=(80, 24)) as pilot:
        heatmap = app.query_one(ArchHeatmap)
        heatmap.set_weights({0: arch_rows(0), 1: arch_rows(1)})
        heatmap.update_weights({2: arch_rows(2)})
        assert heatmap.epoch == 2 and heatmap.epochs == [0, 1, 2]
        heatmap.epoch = 0
        heatmap.update_weights({3: arch_rows(3)})
        assert heatmap.epoch == 0
        await pilot.pause()
        assert app.changes == [1, 2, 0]


async def test_heatmap_marks_what_derivation_picks_never_zero():
    heatmap = ArchHeatmap()
    async with One(heatmap).run_test(size=(80, 24)) as pilot:
        heatmap.set_weights(arch_by_epoch())
        await pilot.pause()
        chosen = heatmap.chosen()
        assert chosen[("step_op", 0, 0, None)] == "concat_fc"  # zero has 42%, concat_fc 26%
        assert chosen[("step_op", 1, 0, None)] == "linear_glu"
        assert chosen[("cell_input", 0, None, 0)] == "image[2]" and chosen[("cell_input", 0, None, 1)] == "text[0]"
        assert chosen[("cell_input", 1, None, 1)] == "cell0"
        text = rendered(heatmap)
        assert "26%*" in text and "42%*" not in text and "42% " in text
        # derivation of the logged weights gives the same genotype the marks spell out
        assert final_genotype() == load_baseline("bmnas-mmimdb")


def verdict_in(text: str, epoch: int) -> str:
    """The verdict drawn under the blocks, its wrapped lines joined again."""
    lines = [line.strip() for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith(f"epoch {epoch}: "))
    return " ".join(lines[start:])


async def test_heatmap_verdict_line_and_undecided_markers_follow_the_epoch():
    app = HeatmapApp()
    async with app.run_test(size=(160, 48)) as pilot:
        heatmap = await focused_heatmap(app, pilot)
        text = rendered(heatmap)
        assert text.splitlines()[0].strip().startswith("epoch 3/3 (step 64)  decided")
        assert verdict_in(text, 3) == heatmap.verdict()
        assert heatmap.verdict().startswith("epoch 3: decided: every cell input and primitive")
        assert "undecided" not in text
        assert "65.0%*      5.8%       5.8%      0.655  59.2%" in text  # cell1's x: its entropy and margin

        await pilot.press("home")  # epoch 0: every judged choice at most 1.4x uniform
        text = rendered(heatmap)
        assert text.splitlines()[0].strip().startswith("epoch 0/3 (step 16)  6 undecided")
        assert verdict_in(text, 0) == heatmap.verdict()
        assert heatmap.verdict().startswith("epoch 0: undecided: 6 choice(s) have their top weight below 1.5x")
        marked = [line for line in text.splitlines() if line.endswith(" undecided")]
        assert len(marked) == 6  # four cell-input slots and two primitives; the step inputs are not judged
        assert all(" 0.993  10.0%" not in line for line in marked)  # cell0's step inputs, 55/45: not marked
        assert heatmap.certainty(0).undecided == heatmap.certainty().undecided
        assert heatmap.certainty(3).decided

    heatmap = ArchHeatmap()
    async with One(heatmap).run_test(size=(80, 24)) as pilot:  # short names, `?` for undecided
        heatmap.set_weights({0: arch_rows(0)})
        await pilot.pause()
        text = rendered(heatmap)
        assert sum(line.endswith(" ?") for line in text.splitlines()) == 6
        assert "entropy margin" in text and verdict_in(text, 0) == heatmap.verdict()
        assert max(len(line) for line in text.splitlines()) <= 80


async def test_heatmap_short_names_at_80_full_names_at_160():
    heatmap = ArchHeatmap()
    async with One(heatmap).run_test(size=(80, 24)) as pilot:
        heatmap.set_weights(arch_by_epoch())
        await pilot.pause()
        text = rendered(heatmap)
        assert max(len(line) for line in text.splitlines()) <= 80
        assert "img2" in text and "txt0" in text and "c0" in text and "attn" in text
        assert "image[2]" not in text
    heatmap = ArchHeatmap()
    async with One(heatmap).run_test(size=(160, 48)) as pilot:
        heatmap.set_weights(arch_by_epoch())
        await pilot.pause()
        text = rendered(heatmap)
        assert "image[2]" in text and "text[0]" in text and "cell0" in text and "attention" in text
        assert "img2" not in text


async def test_heatmap_stays_inside_narrow_widths():
    heatmap = ArchHeatmap()
    async with One(heatmap, "ArchHeatmap { width: 40; }").run_test(size=(80, 24)) as pilot:
        heatmap.set_weights(arch_by_epoch())
        await pilot.pause()
        assert max(len(line) for line in rendered(heatmap).splitlines()) <= 40


def test_short_names():
    assert [short_name(n) for n in ("image[2]", "text[0]", "audio[11]", "cell0", "step1", "linear_glu", "in0")] \
        == ["img2", "txt0", "aud11", "c0", "s1", "glu", "in0"]


# -- genotype graph and diff ----------------------------------------------------------------------


async def test_graph_draws_every_cell_and_the_head():
    graph = GenotypeGraph()
    genotype = load_baseline("bmnas-mmimdb")
    async with One(graph).run_test(size=(80, 24)) as pilot:
        graph.set_genotype(None)
        await pilot.pause()
        assert NO_GENOTYPE in rendered(graph)
        graph.set_genotype(genotype)
        await pilot.pause()
        text = rendered(graph)
        for line in genotype.describe().splitlines():  # cell0 = ..., cell1 = ..., head = concat(...)
            assert line in text
        assert max(len(line) for line in text.splitlines()) <= 80
        assert "image[0 1 2 3]" in text and "text[0 1]" in text


async def test_graph_becomes_a_list_when_narrow():
    graph = GenotypeGraph()
    genotype = load_baseline("bmnas-mmimdb")
    async with One(graph, "GenotypeGraph { width: 40; }").run_test(size=(80, 24)) as pilot:
        graph.set_genotype(genotype)
        await pilot.pause()
        lines = rendered(graph).splitlines()
        assert [line.strip() for line in lines[1:]] == genotype.describe().splitlines()


async def test_graph_multi_step_cells_list_their_steps():
    genotype = Genotype(NAMES, (
        CellGene((0, 5), (StepGene((0, 1), "sum"), StepGene((2, 0), "attention")), (2, 3)),
        CellGene((6, 3), (StepGene((1, 0), "concat_fc"),), (2,)),
    ), (6, 7))
    graph = GenotypeGraph()
    async with One(graph).run_test(size=(80, 24)) as pilot:
        graph.set_genotype(genotype)
        await pilot.pause()
        text = rendered(graph)
        for expected in ("step0 = sum(image[0], text[1])", "step1 = attention(step0, image[0])",
                         "concat(step0, step1)", "cell1 = concat_fc(image[3], cell0)", "head = concat(cell0, cell1)"):
            assert expected in text


async def test_diff_marks_exactly_the_differing_choices():
    a = load_baseline("bmnas-mmimdb")
    b = Genotype(NAMES, (
        CellGene((2, 5), (StepGene((1, 0), "concat_fc"),), (2,)),
        CellGene((4, 6), (StepGene((0, 1), "attention"),), (2,)),
    ), (6, 7))
    expected = diff(a, b)
    view = GenotypeDiffView()
    async with One(view).run_test(size=(80, 24)) as pilot:
        view.set_diff(a, b, "bmnas", "run1")
        await pilot.pause()
        text = rendered(view)
        marked = [line.split()[1] for line in text.splitlines() if line.strip().startswith("*")]
        assert marked == [d.path for d in expected.differences] == view.differing_paths
        assert f"similarity {expected.similarity:.2f}" in text
        assert "bmnas" in text and "run1" in text


# -- log ------------------------------------------------------------------------------------------


async def test_log_keeps_at_most_max_lines_and_follows_the_tail():
    log = LogView(max_lines=50)
    async with One(log, "LogView { height: 10; }").run_test(size=(80, 24)) as pilot:
        log.append_lines([f"line {i}" for i in range(120)])
        await pilot.pause()
        assert log.line_count == 50 and log.lines[-1] == "line 119"
        assert log.scroll_y == log.max_scroll_y > 0
        log.scroll_home(animate=False)
        await pilot.pause()
        log.append_lines(["line 120"])
        await pilot.pause()
        assert log.scroll_y == 0  # the user scrolled up: stay there
        log.scroll_end(animate=False)
        await pilot.pause()
        log.append_lines(["line 121", "line 122"])
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y


async def test_log_events_coloured_by_level_and_set_incrementally():
    log = LogView()
    rows = [{"rowid": 1, "time": 0.0, "level": "info", "message": "search started"},
            {"rowid": 2, "time": 1.0, "level": "warning", "message": "loss is nan"}]
    async with One(log).run_test(size=(80, 24)) as pilot:
        log.set_events(rows)
        rows.append({"rowid": 3, "time": 2.0, "level": "error", "message": "diverged\nTraceback ..."})
        log.set_events(rows)
        await pilot.pause()
        assert [line[9:] for line in log.lines] == [
            "info     search started", "warning  loss is nan", "error    diverged", "error    Traceback ..."]
        log.set_events(rows[1:])  # not a continuation: start over
        assert len(log.lines) == 3
    assert level_style(log.lines[0]).color.name == "yellow"
    assert level_style(log.lines[1]).color.name == "red"
    assert level_style("12:00:00 info     an error in a message") is None
    assert level_style("[warning] from log.txt") is not None


# -- start-up cost and snapshots ------------------------------------------------------------------


def test_widgets_import_no_torch():
    code = ("import sys, tui.widgets.curves, tui.widgets.heatmap, tui.widgets.genotype_view, tui.widgets.log_view; "
            "print([m for m in ('torch', 'torchvision', 'transformers', 'tensorboard') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_heatmap_and_graph(snap_compare, size):
    assert snap_compare(ArchApp(), terminal_size=size)
