"""`ssnas tui`: the dashboard over a runs folder, live, keyboard first.

The app owns the cache of run rows and polls the registry for what changed (`runs_changed_since`)
in a thread worker; screens mirror that cache (runs table) or poll one run's rows themselves (run
view). Actions (launch, kill, resume, rerun, tag, delete) run in thread workers too, so a busy
registry never freezes the screen. Nothing here imports torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.message import Message
from textual.screen import ModalScreen, Screen

from ssnas.run_record import Run
from ssnas.runs.format import printable
from tui.data import (
    ActionResult,
    RegistryReader,
    RunsPoll,
    delete_run,
    error_text,
    find_recipes,
    kill_run,
    launch_recipe,
    rerun_run,
    resume_run,
    tag_run,
)
from tui.screens.dialogs import ConfirmScreen, HelpScreen, TagScreen
from tui.screens.runs import RunsScreen

RUN_ACTIONS = ("kill", "resume", "rerun", "tag", "delete", "report")


class RunsPolled(Message):
    """A poll of the runs table came back from its worker."""

    def __init__(self, poll: RunsPoll) -> None:
        super().__init__()
        self.poll = poll


class ActionDone(Message):
    """An action's worker finished: say how it went, and poll at once."""

    def __init__(self, result: ActionResult) -> None:
        super().__init__()
        self.result = result


class SsnasCommands(Provider):
    """The command palette: the dashboard's actions, and "open run ..." for every run."""

    def _actions(self) -> list[tuple[str, str, Callable[[], object]]]:
        app: SsnasApp = self.app  # type: ignore[assignment]
        return [
            ("Launch a recipe", "pick a recipe, give overrides, run it detached (n)", app.action_launch),
            ("Kill the selected run", "ask its worker to stop; it checkpoints (k)", app.action_kill),
            ("Resume the selected run", "continue a killed, failed or lost run (r)", app.action_resume),
            ("Rerun the selected run", "run its recipe again as a new run (R)", app.action_rerun),
            ("Tag the selected run", "add or remove tags (t)", app.action_tag),
            ("Delete the selected run", "its registry rows and folder, after a confirmation (D)", app.action_delete),
            ("Compare marked runs", "side by side: metrics, config, genotypes (space marks, c)", app.action_compare),
            ("Report of the selected run's group", "F1 per arm and label ratio, as ssnas report (p)",
             app.action_report),
            ("Clear marks", "unmark every run", app.clear_marks),
            ("Help: keys", "every binding (?)", app.action_help),
        ]

    def _runs(self) -> list[tuple[str, str, Callable[[], object]]]:
        app: SsnasApp = self.app  # type: ignore[assignment]
        runs = sorted(app.runs.values(), key=lambda r: -(r.created_at or 0))
        return [(printable(f"open run {r.short_id} {r.name or ''}"), f"{r.stage} · {r.status}",
                 partial(app.open_run, r.id)) for r in runs]

    async def discover(self) -> Hits:
        for title, help_text, callback in self._actions():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._actions() + self._runs():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)


class SsnasApp(App):
    """The ssnas dashboard over `runs_dir` (its registry.db may not exist yet)."""

    CSS_PATH = "app.tcss"
    TITLE = "ssnas"
    COMMANDS = App.COMMANDS | {SsnasCommands}
    BINDINGS = [
        Binding("q", "quit", "quit", tooltip="quit the dashboard (runs go on)"),
        Binding("question_mark", "help", "help", key_display="?", tooltip="this help"),
        Binding("n", "launch", "new run", tooltip="launch a recipe (picker, overrides, validated first)"),
        Binding("k", "kill", "kill", tooltip="kill the selected run (asks first; a worker checkpoints)"),
        Binding("r", "resume", "resume", show=False, tooltip="resume the selected killed/failed/lost run"),
        Binding("R", "rerun", "rerun", show=False, key_display="R", tooltip="rerun the selected run as a new run"),
        Binding("t", "tag", "tag", tooltip="add or remove tags on the selected run"),
        Binding("D", "delete", "delete", show=False, key_display="D",
                tooltip="delete the selected run: rows and folder (asks first)"),
        Binding("c", "compare", "compare", show=False, tooltip="compare the marked runs side by side"),
        Binding("p", "report", "report", show=False,
                tooltip="the report of the selected run's group (F1 per arm and label ratio)"),
    ]

    def __init__(self, runs_dir: Path, recipes_dir: Path | None = None, poll_interval: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.recipes_dir = Path(recipes_dir) if recipes_dir is not None else None
        self.poll_interval = poll_interval
        self.clock = clock
        self.reader = RegistryReader(self.runs_dir)
        self.runs: dict[str, Run] = {}  # run id -> its latest row (no config), in first-seen order
        self.marked: list[str] = []
        self.revision = 0
        self.poll_error: str | None = None
        self.registry_missing = True
        self._polling = False
        self.runs_screen: RunsScreen

    def get_default_screen(self) -> Screen:
        self.runs_screen = RunsScreen()
        return self.runs_screen

    def on_mount(self) -> None:
        self.sub_title = str(self.runs_dir)
        self.set_interval(self.poll_interval, self._tick)
        self.poll_now()

    def on_unmount(self) -> None:
        self.reader.close()

    # -- polling

    def _tick(self) -> None:
        self.runs_screen.tick()
        for screen in self.screen_stack:
            tick = getattr(screen, "clock_tick", None)
            if tick is not None:
                tick()
        self.poll_now()

    def poll_now(self) -> None:
        """Ask the registry what changed (skipped while a poll is still out)."""
        if not self._polling:
            self._polling = True
            self._poll_runs(self.revision)

    @work(thread=True, exclusive=True, group="runs-poll", exit_on_error=False)
    def _poll_runs(self, revision: int) -> None:
        self.post_message(RunsPolled(self.reader.poll_runs(revision)))

    @on(RunsPolled)
    def _runs_polled(self, message: RunsPolled) -> None:
        self._polling = False
        poll = message.poll
        self.poll_error = poll.error
        if poll.error is not None:
            self.runs_screen.refresh_state()
            return
        if poll.reset:
            self._forget_all()
        if poll.changes is None:
            self.registry_missing = True
            self.runs_screen.refresh_state()
            return
        self.registry_missing = False
        if poll.since != self.revision and not poll.reset:
            return  # a stale answer
        changes = poll.changes
        for run in changes.runs:
            self.runs[run.id] = run
        for run_id in changes.deleted:
            self.runs.pop(run_id, None)
            if run_id in self.marked:
                self.marked.remove(run_id)
        self.revision = changes.revision
        changed = [run.id for run in changes.runs]
        self.runs_screen.sync(changed, changes.deleted)
        for screen in self.screen_stack:
            runs_changed = getattr(screen, "runs_changed", None)
            if runs_changed is not None:
                runs_changed(changed, changes.deleted)

    def _forget_all(self) -> None:
        deleted = list(self.runs)
        self.runs.clear()
        self.marked.clear()
        self.revision = 0
        self.runs_screen.sync([], deleted)
        for screen in self.screen_stack:
            runs_changed = getattr(screen, "runs_changed", None)
            if runs_changed is not None:
                runs_changed([], deleted)

    def registry_note(self) -> str:
        if self.registry_missing:
            return f"(watching {self.reader.path}: it appears with the first run)"
        return ""

    # -- marks and navigation

    def toggle_mark(self, run_id: str) -> None:
        if run_id in self.marked:
            self.marked.remove(run_id)
        else:
            self.marked.append(run_id)
        self.runs_screen.refresh_marks()

    def clear_marks(self) -> None:
        self.marked.clear()
        self.runs_screen.refresh_marks()

    def open_run(self, run_id: str) -> None:
        from tui.screens.run import RunScreen

        if run_id not in self.runs:
            self.notify(f"run {run_id[:8]} is not in the registry (any more)", severity="warning")
            return
        if isinstance(self.screen, RunScreen):
            self.pop_screen()
        self.runs_screen.select_run(run_id)
        self.push_screen(RunScreen(run_id))

    # -- actions

    def _target(self) -> Run | None:
        """The run an action applies to: the open run, or the runs table's cursor row."""
        target = getattr(self.screen, "target_run_id", None)
        run_id = target() if target is not None else None
        run = self.runs.get(run_id) if run_id else None
        if run is None:
            self.notify("select a run first", severity="warning")
        return run

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """No actions from a dialog (its keys are its own); run actions only where a run can be selected."""
        if isinstance(self.screen, ModalScreen) and action in (*RUN_ACTIONS, "launch", "compare", "help"):
            return False
        if action in RUN_ACTIONS and not hasattr(self.screen, "target_run_id"):
            return False
        return True

    @work(thread=True, group="actions", exit_on_error=False)
    def _act(self, action: Callable[..., ActionResult], *args: object) -> None:
        try:
            result = action(*args)
        except Exception as error:  # noqa: BLE001 - any failure is a notification, not a crash
            result = ActionResult(False, error_text(error))
        self.post_message(ActionDone(result))

    @on(ActionDone)
    def _action_done(self, message: ActionDone) -> None:
        result = message.result
        self.notify(result.message, severity="information" if result.ok else "error",  # names and tags: not markup
                    timeout=4 if result.ok else 8, markup=False)
        self.poll_now()

    def _refused(self, action: str, run: Run) -> bool:
        """Say why the service would refuse `action` on `run` (before a dialog asks for nothing)."""
        from ssnas.runs.actions import refusal

        reason = refusal(action, run)
        if reason:
            self.notify(reason, severity="warning", markup=False)
        return reason is not None

    def action_kill(self) -> None:
        run = self._target()
        if run is None:
            return
        if self._refused("kill", run):
            return
        question = (f"Kill run {run.short_id} ({printable(run.name)}, {run.status})?\n"
                    "A running worker checkpoints first.")

        def kill(yes: bool | None) -> None:
            if yes:
                self._act(kill_run, self.runs_dir, run.id)

        self.push_screen(ConfirmScreen(question, "Kill"), kill)

    def action_resume(self) -> None:
        run = self._target()
        if run is None:
            return
        if self._refused("resume", run):
            return
        self.notify(f"resuming {run.short_id} ...")
        self._act(resume_run, self.runs_dir, run.id)

    def action_rerun(self) -> None:
        run = self._target()
        if run is None:
            return
        self.notify(f"rerunning {run.short_id} as a new run ...")
        self._act(rerun_run, self.runs_dir, run.id)

    def action_tag(self) -> None:
        run = self._target()
        if run is None:
            return

        def tag(text: str | None) -> None:
            if text:
                self._act(tag_run, self.runs_dir, run.id, text)

        self.push_screen(TagScreen(run.id, run.tags or []), tag)

    def action_delete(self) -> None:
        """The run and every run below it (a pipeline's later stages), after one question that says how many."""
        from ssnas.runs.actions import delete_refusals, subtree

        run = self._target()
        if run is None:
            return
        doomed = subtree([run], self.runs.values())
        refused = delete_refusals(doomed, self.runs.values())
        if refused:
            self.notify("; ".join(refused), severity="warning", markup=False)
            return
        below = f" and the {len(doomed) - 1} run(s) below it" if len(doomed) > 1 else ""
        question = (f"Delete run {run.short_id} ({printable(run.name)}){below}?\n"
                    "Their registry rows and folders are removed.")

        def delete(yes: bool | None) -> None:
            if yes:
                self._act(delete_run, self.runs_dir, run.id)

        self.push_screen(ConfirmScreen(question, "Delete"), delete)

    def action_launch(self) -> None:
        from tui.screens.launch import LaunchScreen

        def launch(choice: tuple[Path, list[str]] | None) -> None:
            if choice is not None:
                recipe, overrides = choice
                self.notify(f"launching {recipe.name} ...")
                self._act(launch_recipe, self.runs_dir, recipe, overrides)

        self.push_screen(LaunchScreen(find_recipes(self.recipes_dir), self.recipes_dir), launch)

    def action_compare(self) -> None:
        from tui.screens.compare import CompareScreen

        ids = [run_id for run_id in self.marked if run_id in self.runs]
        current = getattr(self.screen, "target_run_id", lambda: None)()
        if len(ids) == 1 and current and current != ids[0]:
            ids.append(current)
        if len(ids) < 2:
            self.notify("mark two runs with space, then press c", severity="warning")
            return
        self.push_screen(CompareScreen(ids))

    def action_report(self) -> None:
        from ssnas.tune.summary import study_of_tag
        from tui.screens.report import ReportScreen

        run = self._target()
        if run is None:
            return
        study = next((tag for tag in run.tags if study_of_tag(tag)), None)
        if study is not None:  # a trial's group is one trial: the study's report shows them all
            self.push_screen(ReportScreen(self.reader, study, label=study.replace(":", " ", 1)))
            return
        if not run.group_id:
            self.notify(f"{run.short_id} belongs to no group", severity="warning")
            return
        self.push_screen(ReportScreen(self.reader, run.group_id))

    def action_help(self) -> None:
        from tui.screens.compare import CompareScreen
        from tui.screens.run import RunScreen

        sections = [("everywhere", self.BINDINGS), ("runs table", RunsScreen.BINDINGS),
                    ("run view", RunScreen.BINDINGS), ("compare", CompareScreen.BINDINGS)]
        self.push_screen(HelpScreen(sections))
