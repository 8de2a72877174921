"""One run: its curves, architecture weights over the epochs, genotype and diff, log and events, info.

The screen polls only this run, through a `RunFeed` in a thread worker: metric and event rows after
the last row id seen, log.txt after the last byte read, architecture weights of new epochs. The
run's summary row (status, progress) comes from the app's cache, which the app keeps current.
Tabs keep it readable at 80x24; a wide terminal puts the genotype beside its diff.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane, Tabs

from ssnas.run_record import Run
from ssnas.runs.format import (
    config_lines,
    duration,
    elapsed_seconds,
    field_lines,
    number,
    percent,
    printable,
    run_fields,
    status_text,
)
from ssnas.runs.lookup import GenotypeFound, run_folder, run_genotype
from tui.data import BASELINE, RunFeed, RunUpdate, baseline_genotype
from tui.screens.runs import STATUS_STYLES
from tui.widgets.curves import MetricCurves
from tui.widgets.genotype_view import GenotypeDiffView, GenotypeGraph
from tui.widgets.heatmap import ArchHeatmap
from tui.widgets.log_view import LogView

if TYPE_CHECKING:
    from tui.host import Dashboard

TABS = ("curves", "arch", "genotype", "log", "info")
PREFERRED_KEYS = ("loss", "epoch_loss", "f1_weighted", "lr")
WIDE = 150  # columns from which the genotype and its diff sit side by side


def metric_keys_in_order(keys: set[str]) -> list[str]:
    return [k for k in PREFERRED_KEYS if k in keys] + sorted(keys - set(PREFERRED_KEYS))


class RunScreen(Screen):
    """One run, live."""

    BINDINGS = [
        Binding("escape,backspace", "back", "back", tooltip="back to the runs table"),
        Binding("1", "show_tab('curves')", "curves", show=False, tooltip="loss and metric curves"),
        Binding("2", "show_tab('arch')", "arch", show=False, tooltip="architecture weights by epoch"),
        Binding("3", "show_tab('genotype')", "genotype", show=False, tooltip="derived genotype and its diff"),
        Binding("4", "show_tab('log')", "log", show=False, tooltip="log.txt and events"),
        Binding("5", "show_tab('info')", "info", show=False, tooltip="fields and resolved recipe"),
        Binding("m", "metric(1)", "metric", tooltip="next metric key (M: previous)"),
        Binding("M", "metric(-1)", "prev metric", show=False, key_display="M", tooltip="previous metric key"),
        Binding("b", "diff_target", "diff vs", tooltip="diff against: baseline bmnas-mmimdb / parent / marked runs"),
        Binding("left", "epoch(-1)", "prev epoch", show=False, tooltip="arch tab: previous epoch (else: previous tab)"),
        Binding("right", "epoch(1)", "next epoch", show=False, tooltip="arch tab: next epoch (else: next tab)"),
    ]

    class Fed(Message):
        """A poll of this run came back from its worker."""

        def __init__(self, update: RunUpdate) -> None:
            super().__init__()
            self.update = update

    class DiffLoaded(Message):
        def __init__(self, target: str, found: GenotypeFound, label: str) -> None:
            super().__init__()
            self.target = target
            self.found = found
            self.label = label  # what the diff calls the other side

    def __init__(self, run_id: str) -> None:
        super().__init__(id="run-screen")
        self.run_id = run_id
        self.series: dict[str, dict[str, list[tuple[int, float]]]] = {}  # key -> split -> points
        self.metric_key: str | None = None
        self.genotype: GenotypeFound | None = None
        self.diff_target = "baseline"
        self.other: GenotypeFound | None = None
        self.other_label = BASELINE
        self.genotype_nodes: dict[str, str] | None = None  # the run's run.genotype_nodes, once read
        self.config_text: Text | str = "(reading ...)"
        self.gone = False
        self._feeding = False
        self.feed: RunFeed | None = None

    @property
    def ssnas(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    @property
    def run(self) -> Run | None:
        """The run's latest row (None before the app's first poll found it)."""
        return self.ssnas.runs.get(self.run_id)

    def target_run_id(self) -> str | None:
        return None if self.gone else self.run_id

    @property
    def ready(self) -> bool:
        """Mounted and polling (the tab panes are there to query)."""
        return self.feed is not None

    # -- layout

    def compose(self) -> ComposeResult:
        yield Static("", id="run-header")
        with TabbedContent(id="run-tabs", initial="curves"):
            with TabPane("1 curves", id="curves"):
                yield Static("no metrics logged yet", id="curve-keys")
                yield MetricCurves(id="metric-curves")
            with TabPane("2 arch", id="arch"):
                with VerticalScroll(id="arch-scroll"):
                    yield ArchHeatmap(id="heatmap")
            with TabPane("3 genotype", id="genotype"):
                with Horizontal(id="genotype-box"):
                    with VerticalScroll(id="genotype-left"):
                        yield Static("no genotype yet", id="genotype-note", classes="note")
                        yield GenotypeGraph(id="genotype-graph")
                    with VerticalScroll(id="genotype-right"):
                        yield Static("", id="diff-note", classes="note")
                        yield GenotypeDiffView(id="genotype-diff")
            with TabPane("4 log", id="log"):
                yield LogView(id="log-view")
            with TabPane("5 info", id="info"):
                with VerticalScroll():
                    yield Static("", id="info-text")
        yield Footer()

    def on_mount(self) -> None:
        self.header = self.query_one("#run-header", Static)
        self._show_header()
        self._layout_for(self.app.size.width)
        self._start()

    def _start(self) -> None:
        """Draw and start polling once the tab panes are mounted (TabbedContent mounts them a beat later)."""
        if not self.query("#info-text") or not self.query(Tabs):
            self.call_after_refresh(self._start)
            return
        for tabs in self.query(Tabs):
            tabs.can_focus = False  # left/right belong to the epochs; 1-5 pick a tab
        # kept, not queried: a worker's answer may still land while the screen is torn down
        self.tabs = self.query_one(TabbedContent)
        self.curves = self.query_one(MetricCurves)
        self.heatmap = self.query_one(ArchHeatmap)
        self.graph = self.query_one(GenotypeGraph)
        self.diff_view = self.query_one(GenotypeDiffView)
        self.log_view = self.query_one(LogView)
        self.notes = {name: self.query_one(f"#{name}", Static)
                      for name in ("curve-keys", "genotype-note", "diff-note", "info-text")}
        self.feed = RunFeed(self.ssnas.reader, self.run_id)
        self._show_info()
        self._load_diff_target()
        self.set_interval(self.ssnas.poll_interval, self._poll)
        self._poll()

    def on_resize(self) -> None:
        self._layout_for(self.app.size.width)

    def _layout_for(self, width: int) -> None:
        self.set_class(width >= WIDE, "-wide")

    # -- polling this run

    def _poll(self) -> None:
        if not self._feeding and not self.gone and self.feed is not None:
            self._feeding = True
            self._feed(self.run)

    @work(thread=True, exclusive=True, group="run-feed", exit_on_error=False)
    def _feed(self, run: Run | None) -> None:
        assert self.feed is not None
        self.post_message(self.Fed(self.feed.poll(run)))

    @on(Fed)
    def _fed(self, message: Fed) -> None:
        self._feeding = False
        update = message.update
        if update.gone:
            self._mark_gone()
            return
        if update.config is not None:
            self.genotype_nodes = ((update.config or {}).get("run") or {}).get("genotype_nodes")
        if update.config is not None or update.config_error:
            self.config_text = (Text(printable(update.config_error), style="bold red") if update.config_error
                                else "\n".join(map(printable, config_lines(update.config or {}))) or "(empty)")
            self._show_info()
        if update.metrics:
            self._add_metrics(update.metrics)
        if update.arch:
            self.heatmap.update_weights(update.arch)
        if update.genotype is not None:
            self.genotype = update.genotype
            self._show_genotype()
        if update.log_lines:
            self.log_view.append_lines(update.log_lines)
        if update.events and not update.log_exists:  # a local worker prints its events into log.txt
            self.log_view.append_events(update.events)
        self._show_header(update.error)

    def runs_changed(self, changed: list[str], deleted: list[str]) -> None:
        """Called by the app after each runs poll."""
        if not self.ready:
            return  # _start reads the run afresh
        if self.run_id in deleted:
            self._mark_gone()
        elif self.run_id in changed:
            started = [run.started_at if run else None for run in (self.run, self.feed and self.feed.run)]
            if self.feed is not None and started[0] != started[1]:
                self._restart_feed()
            self._show_header()
            self._show_info()

    def _restart_feed(self) -> None:
        """A resumed run logs its steps after the checkpoint again: read its series afresh (the log goes on)."""
        assert self.feed is not None
        log_offset, log_partial = self.feed.log_offset, self.feed.log_partial
        self.feed = RunFeed(self.ssnas.reader, self.run_id)
        self.feed.log_offset, self.feed.log_partial = log_offset, log_partial
        self.series.clear()
        self.heatmap.set_weights({})

    def clock_tick(self) -> None:
        if self.ready and self.run is not None and self.run.status == "running":
            self._show_header()

    def _mark_gone(self) -> None:
        self.gone = True
        self.header.update(
            Text(f"run {self.run_id[:8]} was deleted from the registry — escape goes back", style="bold red"))

    # -- drawing

    def _show_header(self, error: str | None = None) -> None:
        if self.gone:
            return
        run = self.run
        line = Text()
        line.append(self.run_id[:8], style="bold")
        if run is None:
            line.append("  (reading ...)")
            self.header.update(line)
            return
        line.append(printable(f"  {run.name or '-'}  {run.stage or '-'}  "))
        line.append(status_text(run.status), style=STATUS_STYLES.get(run.status, ""))
        line.append(f"  {percent(run.progress)}  {duration(elapsed_seconds(run, self.ssnas.clock()))}")
        line.append(f"  loss {number(run.latest_loss)}  best F1 {number(run.best_f1, '.3f')}")
        if run.test_f1 is not None:
            line.append(f"  test F1 {run.test_f1:.3f}")
        problem = error or run.error
        if problem:
            line.append("\n")
            line.append(printable(str(problem)), style="red")
        self.header.update(line)

    def _show_info(self) -> None:
        if self.feed is None:  # not started: the panes are not mounted yet
            return
        run = self.run
        fields = run_fields(run, run_folder(self.ssnas.runs_dir, run)) if run is not None else [("id", self.run_id)]
        text = Text("\n".join(map(printable, field_lines(fields))))
        text.append("\n\nrecipe (resolved)\n", style="bold")
        text.append(self.config_text if isinstance(self.config_text, Text) else Text(self.config_text))
        self.notes["info-text"].update(text)

    def _add_metrics(self, rows: list[dict]) -> None:
        touched = set()
        for row in rows:
            split = row.get("split") or "-"
            points = self.series.setdefault(row["key"], {}).setdefault(split, [])
            step = row["step"] if row.get("step") is not None else len(points)
            if row.get("value") is not None:
                points.append((int(step), float(row["value"])))
            touched.add(row["key"])
        if self.metric_key is None:
            self.metric_key = metric_keys_in_order(set(self.series))[0]
            touched.add(self.metric_key)
        self._show_keys()
        if self.metric_key in touched:
            self._show_curves()

    def _show_keys(self) -> None:
        line = Text("metric ", style="dim")
        for key in metric_keys_in_order(set(self.series)):
            line.append(f" {key} ", style="bold reverse" if key == self.metric_key else "")
        line.append("  (m: next)", style="dim")
        self.notes["curve-keys"].update(line)

    def _show_curves(self) -> None:
        key = self.metric_key
        if key is None:
            return
        splits = self.series.get(key, {})
        series = {key if split == "-" else f"{key}/{split}": list(points) for split, points in sorted(splits.items())}
        self.curves.set_series(series, title=f"{key} · run {self.run_id[:8]}")

    def _show_genotype(self) -> None:
        found = self.genotype
        note = self.notes["genotype-note"]
        graph = self.graph
        if found is None or found.genotype is None:
            graph.set_genotype(None)
            if found is not None and found.error:
                note.update(Text(f"genotype unreadable: {found.error}", style="bold red"))
            else:
                note.update("no genotype yet (a search logs one per epoch)")
        else:
            graph.set_genotype(found.genotype)
            note.update(Text(f"genotype of {found.brief or found.where}", style="dim"))
        self._show_diff()

    # -- the diff and what it compares with

    def diff_targets(self) -> list[str]:
        targets = ["baseline"]
        if self.run is not None and self.run.parent_id:
            targets.append("parent")
        targets += [f"run:{run_id}" for run_id in self.ssnas.marked if run_id != self.run_id]
        return targets

    def _load_diff_target(self) -> None:
        target = self.diff_target
        if target == "parent":
            other_id = self.run.parent_id if self.run is not None else None
        elif target.startswith("run:"):
            other_id = target[4:]
        else:
            other_id = None
        self._load_other(target, other_id)

    @work(thread=True, exclusive=True, group="diff-target", exit_on_error=False)
    def _load_other(self, target: str, other_id: str | None) -> None:
        if other_id is None:
            found = baseline_genotype()
        else:
            try:
                registry = self.ssnas.reader.require()
                other = self.ssnas.runs.get(other_id) or registry.get_run(other_id)
                found = run_genotype(registry, self.ssnas.runs_dir, other)
            except Exception as error:  # noqa: BLE001
                found = GenotypeFound(None, f"run {other_id[:8]}", str(error))
        self.post_message(self.DiffLoaded(target, found, BASELINE if other_id is None else other_id[:8]))

    @on(DiffLoaded)
    def _diff_loaded(self, message: DiffLoaded) -> None:
        if message.target != self.diff_target:
            return
        self.other = message.found
        self.other_label = message.label
        self._show_diff()

    def _show_diff(self) -> None:
        note = self.notes["diff-note"]
        view = self.diff_view
        other, mine = self.other, self.genotype
        what = {"baseline": f"baseline {BASELINE}", "parent": "parent run"}.get(
            self.diff_target, f"marked run {self.diff_target[4:12]}")
        choices = len(self.diff_targets())
        hint = "  (b: next)" if choices > 1 else "  (mark runs with space to diff with them)"
        if other is None:
            note.update(Text(f"diff vs {what}: loading ...", style="dim"))
            return
        if other.genotype is None:
            view.display = False
            note.update(Text(f"diff vs {what}: {other.error or 'it has no genotype yet'}{hint}",
                             style="red" if other.error else "dim"))
            return
        if mine is None or mine.genotype is None:
            view.display = False
            note.update(Text(f"diff vs {what}: this run has no genotype yet{hint}", style="dim"))
            return
        theirs = other.genotype
        if self.diff_target == "baseline":  # on the run's input nodes, as `ssnas diff` binds it
            from ssnas.nas.binding import bind_reference

            bound = bind_reference(other.genotype, mine.genotype.input_names, self.genotype_nodes)
            if bound is None:
                view.display = False
                nodes = ", ".join(other.genotype.used_input_names)
                note.update(Text(f"diff vs {what}: this run's data lacks the input nodes it reads ({nodes}){hint}",
                                 style="dim"))
                return
            theirs = bound
        view.display = True
        source = "" if other.where == what else f" ({other.brief or other.where})"
        note.update(Text(f"diff vs {what}{source}{hint}", style="dim"))
        view.set_diff(mine.genotype, theirs, self.run_id[:8], self.other_label)

    # -- actions

    def action_back(self) -> None:
        self.dismiss()

    def action_show_tab(self, tab: str) -> None:
        if not self.ready:
            return
        self.tabs.active = tab

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if not self.ready:
            return
        if event.pane.id == "arch":
            self.heatmap.focus()
        elif event.pane.id == "log":
            self.log_view.focus()
        else:
            self.set_focus(None)

    def action_metric(self, delta: int) -> None:
        if not self.ready:
            return
        keys = metric_keys_in_order(set(self.series))
        if not keys:
            self.notify("no metrics logged yet", severity="warning")
            return
        index = keys.index(self.metric_key) if self.metric_key in keys else -delta
        self.metric_key = keys[(index + delta) % len(keys)]
        self.action_show_tab("curves")
        self._show_keys()
        self._show_curves()

    def action_diff_target(self) -> None:
        if not self.ready:
            return
        targets = self.diff_targets()
        index = targets.index(self.diff_target) if self.diff_target in targets else -1
        self.diff_target = targets[(index + 1) % len(targets)]
        self.other = None
        self.action_show_tab("genotype")
        self._show_diff()
        self._load_diff_target()

    def action_epoch(self, delta: int) -> None:
        if not self.ready:
            return
        tabs = self.tabs
        if tabs.active == "arch":
            heatmap = self.heatmap
            (heatmap.action_next_epoch if delta > 0 else heatmap.action_previous_epoch)()
        else:
            tabs.active = TABS[(TABS.index(tabs.active) + delta) % len(TABS)]
