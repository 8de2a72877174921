"""Launch a recipe: pick one of recipes/*.toml, type --set overrides, see it validated, run it detached."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option

from tui.data import RecipeCheck, check_recipe


class LaunchScreen(ModalScreen[tuple[Path, list[str]] | None]):
    """Returns (recipe, overrides) once the pair validates, or None."""

    BINDINGS = [
        Binding("escape", "cancel", "cancel"),
        Binding("ctrl+l", "launch", "launch"),
    ]

    class Checked(Message):
        def __init__(self, recipe: Path, text: str, check: RecipeCheck) -> None:
            super().__init__()
            self.recipe = recipe
            self.text = text
            self.check = check

    def __init__(self, recipes: Sequence[Path], recipes_dir: Path | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.recipes = list(recipes)
        self.recipes_dir = recipes_dir
        self.check: tuple[Path, str, RecipeCheck] | None = None
        self.launch_when_checked = False  # enter came before the check: launch once it passes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="launch-dialog"):
            yield Static("Launch a recipe", classes="dialog-title")
            if self.recipes:
                yield OptionList(*[Option(p.name, id=str(i)) for i, p in enumerate(self.recipes)], id="recipe-list")
            else:
                folder = self.recipes_dir or Path.cwd() / "recipes"
                yield Static(Text(f"no recipes (*.toml) in {folder}; start with: ssnas tui --recipes DIR",
                                  style="red"), id="recipe-list-empty")
            yield Input(placeholder="overrides: search.epochs=5 'sweep.seed=[0, 1]'", id="overrides")
            yield Static("", id="recipe-check")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Launch (enter)", variant="primary", id="launch", disabled=True)
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        if self.recipes:
            options = self.query_one(OptionList)
            names = [p.name for p in self.recipes]
            options.highlighted = names.index("pipeline.toml") if "pipeline.toml" in names else 0
            options.focus()
            self._validate()

    @property
    def recipe(self) -> Path | None:
        if not self.recipes:
            return None
        index = self.query_one(OptionList).highlighted
        return self.recipes[index] if index is not None else None

    @property
    def override_text(self) -> str:
        return self.query_one("#overrides", Input).value

    # -- validation in a worker (reading TOML and checking ranges; no torch)

    def _validate(self) -> None:
        recipe = self.recipe
        if recipe is None:
            return
        self.launch_when_checked = False
        self.query_one("#launch", Button).disabled = True
        self.query_one("#recipe-check", Static).update(Text("checking ...", style="dim"))
        self._check(recipe, self.override_text)

    @work(thread=True, exclusive=True, group="recipe-check", exit_on_error=False)
    def _check(self, recipe: Path, text: str) -> None:
        self.post_message(self.Checked(recipe, text, check_recipe(recipe, text)))

    @on(Checked)
    def _checked(self, message: Checked) -> None:
        try:
            self._show_check(message)
        except NoMatches:  # closed meanwhile
            pass

    def _show_check(self, message: Checked) -> None:
        if message.recipe != self.recipe or message.text != self.override_text:
            return  # the choice moved on meanwhile
        self.check = (message.recipe, message.text, message.check)
        result = message.check
        self.query_one("#recipe-check", Static).update(Text(result.message, style="green" if result.ok else "bold red"))
        self.query_one("#launch", Button).disabled = not result.ok
        if self.launch_when_checked:
            self.launch_when_checked = False
            self.action_launch()

    @on(OptionList.OptionHighlighted)
    def _recipe_highlighted(self) -> None:
        self._validate()

    @on(OptionList.OptionSelected)
    def _recipe_selected(self) -> None:
        self.query_one("#overrides", Input).focus()

    @on(Input.Changed, "#overrides")
    def _overrides_changed(self) -> None:
        self._validate()

    @on(Input.Submitted, "#overrides")
    def _overrides_submitted(self) -> None:
        self.action_launch()

    @on(Button.Pressed, "#launch")
    def _launch_pressed(self) -> None:
        self.action_launch()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    # -- actions

    def action_launch(self) -> None:
        recipe = self.recipe
        if recipe is None:
            return
        if self.check is None or self.check[:2] != (recipe, self.override_text):
            self.launch_when_checked = True
            return
        result = self.check[2]
        if not result.ok:
            self.notify(result.message, severity="error")
            return
        self.dismiss((recipe, list(result.overrides)))

    def action_cancel(self) -> None:
        self.dismiss(None)
