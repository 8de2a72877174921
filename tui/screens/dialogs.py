"""Small modal dialogs: a yes/no confirmation, a tag editor, and the key help."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from ssnas.runs.format import printable


class ConfirmScreen(ModalScreen[bool]):
    """Ask before something that cannot be undone; y / enter on the button confirms, n / escape does not."""

    BINDINGS = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, question: str, verb: str = "OK") -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.verb = verb

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm-dialog"):
            yield Static(Text(self.question), classes="dialog-text")  # a run's name is text, not markup
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.verb} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer under enter

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TagScreen(ModalScreen[str | None]):
    """Tags for one run: words add, -word removes; enter applies, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, run_id: str, tags: Sequence[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.run_id = run_id
        self.tags = list(tags)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="tag-dialog"):
            yield Static(Text(printable(f"Tag run {self.run_id[:8]} — now: {', '.join(self.tags) or 'no tags'}")),
                         classes="dialog-text")
            yield Input(placeholder="best baseline   (-tag removes one)", id="tag-input")
            yield Static("enter applies · escape cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def key_text(screen: ModalScreen, binding: BindingType) -> tuple[str, str]:
    if isinstance(binding, Binding):
        keys = binding.key_display or ", ".join(screen.app.get_key_display(Binding(k.strip(), ""))
                                                for k in binding.key.split(","))
        return keys, binding.tooltip or binding.description or binding.action
    key, action, *rest = binding
    return key, rest[0] if rest else action


EXTRA_KEYS = {
    "everywhere": [("ctrl+p", "command palette: every action, and open run ..."), ("escape", "back / close")],
    "runs table": [("up/down, pgup/pgdn", "move"), ("click a header", "sort by it (again: reverse)")],
}


class HelpScreen(ModalScreen[None]):
    """Every binding, by where it works."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "close")]

    def __init__(self, sections: Sequence[tuple[str, Sequence[BindingType]]]) -> None:
        super().__init__(classes="dialog-screen")
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help-dialog"):
            yield Static("ssnas tui — keys", classes="dialog-title")
            with VerticalScroll(id="help-body"):
                yield Static(self._table(), id="help-table")
            yield Static("escape closes", classes="dialog-hint")

    def _table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for title, bindings in self.sections:
            table.add_row(Text(title, style="underline"), "")
            seen = set()
            for binding in bindings:
                keys, description = key_text(self, binding)
                if (keys, description) not in seen:
                    seen.add((keys, description))
                    table.add_row(keys, description)
            for keys, description in EXTRA_KEYS.get(title, []):
                table.add_row(keys, description)
            table.add_row("", "")
        return table

    def action_close(self) -> None:
        self.dismiss(None)
