"""Metric curves: a plotext line plot when there is room, one sparkline per series when there is not.

Series are plain `(step, value)` lists keyed by labels such as `loss/train` or `f1_weighted/dev`.
A long run logs 100k points per series and the screen calls `set_series` on every poll, so the
plotted points are thinned to `MAX_POINTS` by stride (the real logged values, first and last kept),
while last/min/max are computed over the full series, incrementally as it grows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label, Sparkline, Static
from textual_plotext import PlotextPlot

Point = tuple[int, float]

NO_METRICS = "no metrics yet"
MAX_POINTS = 2000
PLOT_MIN_HEIGHT = 8  # below this many rows a plot has no room for axes and a legend


def thin(points: Sequence[Point], limit: int = MAX_POINTS) -> Sequence[Point]:
    """At most `limit` points taken at a regular stride, always keeping the first and the last."""
    n = len(points)
    if n <= limit:
        return points
    stride = math.ceil((n - 1) / (limit - 1))
    kept = list(points[::stride])
    if kept[-1] is not points[-1]:
        kept.append(points[-1])
    return kept


def finite(points: Sequence[Point]) -> list[Point]:
    """A diverged run logs nan or inf; plotext cannot draw them."""
    return [(x, y) for x, y in points if math.isfinite(y)]


@dataclass
class SeriesStats:
    """Last value and finite min/max of one series, updated from the new tail only when it grew."""

    count: int = 0
    last: Point | None = None
    low: float = math.inf
    high: float = -math.inf

    def update(self, points: Sequence[Point]) -> SeriesStats:
        grew = self.count and len(points) >= self.count and tuple(points[self.count - 1]) == self.last
        stats = self if grew else SeriesStats()
        for _, y in points[stats.count:]:
            if math.isfinite(y):
                stats.low, stats.high = min(stats.low, y), max(stats.high, y)
        stats.count = len(points)
        stats.last = (points[-1][0], points[-1][1]) if points else None  # a tuple, whatever the points are
        return stats

    def summary(self) -> str:
        """`0.4123  ↓0.3981 ↑2.301`"""
        if self.last is None:
            return ""
        text = f"{_number(self.last[1])}"
        if self.low <= self.high:
            text += f"  ↓{_number(self.low)} ↑{_number(self.high)}"
        return text


def _number(value: float) -> str:
    return f"{value:.4g}"


def step_label(step: float) -> str:
    """12, 2500, 25k, 1.2M: axis labels that stay short."""
    step = round(step)
    if abs(step) >= 1_000_000:
        return f"{step / 1_000_000:.3g}M"
    if abs(step) >= 10_000:
        return f"{step / 1000:.3g}k"
    return str(step)


def step_ticks(low: int, high: int, count: int = 5) -> list[int]:
    """Up to `count` distinct integer steps spread evenly from `low` to `high` (plotext would label
    steps as floats)."""
    if high <= low:
        return [low]
    return sorted({round(low + (high - low) * i / (count - 1)) for i in range(count)})


class SparkRow(Horizontal):
    """`label  ▁▂▃▅▇  last  ↓min ↑max` on one line."""

    DEFAULT_CSS = """
    SparkRow {
        height: 1;
    }
    SparkRow > .spark-label {
        width: auto;
        padding-right: 1;
        color: $text-muted;
    }
    SparkRow > Sparkline {
        width: 1fr;
        min-width: 4;
    }
    SparkRow > .spark-stats {
        width: auto;
        padding-left: 1;
    }
    """

    def __init__(self, label: str, label_width: int) -> None:
        super().__init__()
        self.label = label
        self._label = Label(label, classes="spark-label")
        self._label.styles.width = label_width + 1
        self.sparkline = Sparkline([], summary_function=fmean)
        self.stats = Label("", classes="spark-stats")

    def compose(self) -> ComposeResult:
        yield self._label
        yield self.sparkline
        yield self.stats

    def show(self, values: list[float], summary: str) -> None:
        self.sparkline.data = values
        self.stats.update(summary)


class MetricCurves(Widget):
    """Metric series over steps; a plot at >= PLOT_MIN_HEIGHT rows, sparklines below that."""

    DEFAULT_CSS = """
    MetricCurves {
        height: 1fr;
        min-height: 1;
    }
    MetricCurves > #curves-empty {
        color: $text-muted;
        padding: 0 1;
        display: none;
    }
    MetricCurves > PlotextPlot {
        height: 1fr;
    }
    MetricCurves > #curves-sparks {
        height: auto;
        padding: 0 1;
        display: none;
    }
    MetricCurves.-compact > PlotextPlot {
        display: none;
    }
    MetricCurves.-compact > #curves-sparks {
        display: block;
    }
    MetricCurves.-empty > PlotextPlot, MetricCurves.-empty > #curves-sparks {
        display: none;
    }
    MetricCurves.-empty > #curves-empty {
        display: block;
    }
    """

    compact: reactive[bool] = reactive(False)
    """Sparklines instead of the plot; follows the widget's height."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.series: dict[str, Sequence[Point]] = {}
        self.title = ""
        self.plotted: dict[str, list[Point]] = {}  # what the plot and sparklines were given (thinned, finite)
        self.stats: dict[str, SeriesStats] = {}
        self.set_class(True, "-empty")

    def compose(self) -> ComposeResult:
        yield Static(NO_METRICS, id="curves-empty")
        yield PlotextPlot(id="curves-plot")
        yield Vertical(id="curves-sparks")

    def on_mount(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self.compact = self.size.height < PLOT_MIN_HEIGHT

    def watch_compact(self, compact: bool) -> None:
        self.set_class(compact, "-compact")

    def set_series(self, series: Mapping[str, Sequence[Point]], title: str = "") -> None:
        """Show these series (each a list of (step, value)); call again with grown lists to update."""
        self.series = {label: points for label, points in series.items() if points}
        self.title = title
        self.stats = {label: self.stats.get(label, SeriesStats()).update(points)
                      for label, points in self.series.items()}
        self.plotted = {label: finite(thin(points)) for label, points in self.series.items()}
        self.set_class(not self.series, "-empty")
        if self.is_mounted:
            self._draw()

    # ---- drawing

    def _draw(self) -> None:
        self._plot()
        self._sparklines()

    def _plot(self) -> None:
        widget = self.query_one(PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.title(self.title)
        plt.xlabel("step")
        families = list(dict.fromkeys(label.split("/")[0] for label in self.plotted))
        right = families[1] if len(families) == 2 else None  # two kinds of metric: two y axes
        steps = [x for points in self.plotted.values() for x in (points[0][0], points[-1][0]) if points]
        for label, points in self.plotted.items():
            if points:
                xs, ys = zip(*points, strict=True)
                side = "right" if label.split("/")[0] == right else "left"
                plt.plot(xs, ys, label=label, marker="braille", yside=side)
        if steps:
            ticks = step_ticks(min(steps), max(steps))
            positions: list[float] = list(ticks)  # still ints: plotext takes any number, its stub says float
            plt.xticks(positions, [step_label(t) for t in ticks])
        widget.refresh()

    def _sparklines(self) -> None:
        box = self.query_one("#curves-sparks", Vertical)
        rows = list(box.query_children(SparkRow))
        if [row.label for row in rows] != list(self.plotted):
            box.remove_children()
            width = max(map(len, self.plotted), default=0)
            rows = [SparkRow(label, width) for label in self.plotted]
            box.mount_all(rows)
        for row in rows:
            row.show([y for _, y in self.plotted[row.label]], self.stats[row.label].summary())
