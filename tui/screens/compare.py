"""Runs side by side, as `ssnas compare`: final metrics and status, the config that differs, genotype diff."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ssnas.runs.compare import CONFIG_COLUMN, Comparison
from ssnas.runs.format import printable
from tui.data import compare_runs, error_text
from tui.widgets.genotype_view import GenotypeDiffView

if TYPE_CHECKING:
    from tui.host import Dashboard



class CompareScreen(Screen):
    """Two or more runs; the genotype diff is between the first two."""

    BINDINGS = [
        Binding("escape,backspace", "back", "back", tooltip="back"),
        Binding("enter", "open_first", "open first", show=False, tooltip="open the first compared run"),
    ]

    class Loaded(Message):
        def __init__(self, comparison: Comparison | None, error: str | None = None) -> None:
            super().__init__()
            self.comparison = comparison
            self.error = error

    def __init__(self, run_ids: Sequence[str]) -> None:
        super().__init__(id="compare-screen")
        self.run_ids = list(run_ids)

    @property
    def ssnas(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(f"comparing {', '.join(r[:8] for r in self.run_ids)} — reading ...", id="compare-title")
        with VerticalScroll(id="compare-body"):
            yield DataTable(id="compare-summary", cursor_type="none", zebra_stripes=True)
            yield DataTable(id="compare-config", cursor_type="none", zebra_stripes=True)
            yield Static(id="compare-diff-note", classes="note")
            yield GenotypeDiffView(id="compare-diff")
        yield Footer()

    def on_mount(self) -> None:
        self._load(self.run_ids)

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def _load(self, run_ids: list[str]) -> None:
        try:
            self.post_message(self.Loaded(compare_runs(self.ssnas.runs_dir, run_ids)))
        except Exception as error:  # noqa: BLE001 - a deleted or corrupt run is a message
            self.post_message(self.Loaded(None, error_text(error)))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        try:
            self._show(message)
        except NoMatches:  # closed meanwhile
            pass

    def _show(self, message: Loaded) -> None:
        title = self.query_one("#compare-title", Static)
        if message.comparison is None:
            title.update(Text(f"cannot compare: {message.error}", style="bold red"))
            return
        comparison = message.comparison
        title.update(Text(f"comparing {', '.join(comparison.labels)}", style="bold"))
        summary = self.query_one("#compare-summary", DataTable)
        summary.add_column("", key="")
        for label in comparison.labels:
            summary.add_column(label, key=label)
        for row in comparison.summary:
            summary.add_row(*[_cell(row.get(key, "-")) for key in ("", *comparison.labels)])
        config = self.query_one("#compare-config", DataTable)
        config.add_column(CONFIG_COLUMN, key=CONFIG_COLUMN)
        for label in comparison.labels:
            config.add_column(label, key=label)
        for row in comparison.config:
            config.add_row(*[_cell(row.get(key, "-")) for key in (CONFIG_COLUMN, *comparison.labels)])
        if not comparison.config:
            config.add_row("(the same in every run)", *["" for _ in comparison.labels])
        self._show_diff(comparison)

    def _show_diff(self, comparison: Comparison) -> None:
        note = self.query_one("#compare-diff-note", Static)
        view = self.query_one(GenotypeDiffView)
        (a, b), (a_label, b_label) = comparison.genotypes[:2], comparison.labels[:2]
        if a.genotype is None or b.genotype is None:
            view.display = False
            missing = [f"{label}: {found.error or 'no genotype yet'}" for label, found in
                       ((a_label, a), (b_label, b)) if found.genotype is None]
            note.update(Text("genotype diff: " + "; ".join(missing), style="dim"))
            return
        note.update(Text(f"genotype diff {a_label} vs {b_label}", style="bold"))
        view.set_diff(a.genotype, b.genotype, a_label, b_label)

    def action_back(self) -> None:
        self.dismiss()

    def action_open_first(self) -> None:
        self.ssnas.open_run(self.run_ids[0])


def _cell(value: object) -> Text:
    """A table cell as it reads: never markup (a table takes a str as markup), controls escaped."""
    return Text(printable(str(value)))
