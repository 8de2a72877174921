"""The paper's report (`ssnas report`) for the selected run's group: F1 per arm and label ratio."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.data import RegistryReader, error_text


class ReportScreen(Screen):
    """`ssnas report GROUP` as a screen: the tables, then the plot of F1 against r."""

    BINDINGS = [Binding("escape,backspace", "back", "back", tooltip="back")]

    class Built(Message):
        def __init__(self, tables: str, plot: str, error: str | None = None) -> None:
            super().__init__()
            self.tables, self.plot, self.error = tables, plot, error

    def __init__(self, reader: RegistryReader, group_id: str, label: str | None = None) -> None:
        super().__init__(id="report-screen")
        self.reader = reader
        self.group_id = group_id  # a group id, or a tag (a study's: study:NAME)
        self.label = label or f"group {group_id}"

    def compose(self) -> ComposeResult:
        yield Static(f"report of {self.label} — reading ...", id="report-title")
        with VerticalScroll(id="report-body"):
            yield Static(id="report-tables")
            yield Static(id="report-plot")
        yield Footer()

    def on_mount(self) -> None:
        self._build(self.size.width)

    @work(thread=True, exclusive=True)
    def _build(self, width: int) -> None:
        from ssnas.report import build_report

        try:
            report = build_report(self.reader.require(), self.group_id)
            plot = report.plot_terminal(width=max(60, width - 4), height=20, color=False)
            self.post_message(self.Built(report.format_table(), plot))
        except Exception as error:  # noqa: BLE001 - shown in the screen, never a crash
            self.post_message(self.Built("", "", error_text(error)))

    def on_report_screen_built(self, message: Built) -> None:
        title = self.query_one("#report-title", Static)
        if message.error:
            title.update(Text(f"report of {self.label}: {message.error}", style="bold red"))
            return
        title.update(f"report of {self.label} (as `ssnas report {self.group_id}`)")
        self.query_one("#report-tables", Static).update(Text(message.tables))
        self.query_one("#report-plot", Static).update(Text(message.plot))

    def action_back(self) -> None:
        self.app.pop_screen()
