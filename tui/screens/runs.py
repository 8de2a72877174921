"""The runs table: every run of the registry, live; filter, sort, group by sweep, mark for compare.

The app owns the cache of run rows (it polls `runs_changed_since`); this screen only mirrors the
cache into its table, touching the rows that changed. Filtering, sorting and grouping work on the
cache in memory and never read the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static
from textual.widgets.data_table import ColumnKey

from ssnas.run_record import Run
from ssnas.runs.format import duration, elapsed_seconds, number, percent, printable, stage_text

if TYPE_CHECKING:
    from tui.host import Dashboard

EMPTY_MESSAGE = "no runs yet — launch one with `n` or `ssnas run recipes/pipeline.toml`"
STATUS_STYLES = {
    "queued": "yellow", "running": "bold green", "finished": "cyan", "failed": "bold red", "killed": "magenta",
    "lost": "bold white on red",
}
STATUS_ORDER = {status: i for i, status in enumerate(("running", "queued", "lost", "failed", "killed", "finished"))}

# (column key, header label): the table's columns in order; "group" leads them when grouped.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "id"), ("name", "name"), ("stage", "stage"), ("objective", "objective"), ("dataset", "dataset"),
    ("r", "r"), ("node", "node"), ("status", "status"), ("progress", "prog"), ("elapsed", "elapsed"),
    ("loss", "loss"), ("f1", "best F1"),
)
GROUP_COLUMN = ("group", "group")
NARROW = 100  # below this many columns the table leaves out objective, dataset, r and node (the run view has them)
NARROW_HIDDEN = ("objective", "dataset", "r", "node")
NODE_WIDTH = 16  # a long host name is shortened in the middle
NARROW_NAME = 14  # and shortens long names in the middle, so that the scores stay on an 80-column screen

# What each sort key orders by (None sorts last in either direction), and its first direction.
SORTS: dict[str, tuple[Callable[[Run, float], Any], bool]] = {
    "created": (lambda run, now: run.created_at, True),
    "id": (lambda run, now: run.id, False),
    "name": (lambda run, now: run.name, False),
    "stage": (lambda run, now: run.stage, False),
    "objective": (lambda run, now: run.objective, False),
    "dataset": (lambda run, now: run.dataset, False),
    "r": (lambda run, now: run.label_ratio, False),
    "node": (lambda run, now: run.node, False),
    "status": (lambda run, now: STATUS_ORDER.get(run.status, 99), False),
    "progress": (lambda run, now: run.progress, True),
    "elapsed": (lambda run, now: elapsed_seconds(run, now), True),
    "loss": (lambda run, now: run.latest_loss, False),
    "f1": (lambda run, now: run.best_f1, True),
}
SEARCHED_FIELDS = ("id", "name", "stage", "objective", "dataset", "status", "group_id", "parent_id", "device", "host",
                   "node", "executor")


class RunIdText(Text):
    """The id cell: shows the short id (and the compare mark), remembers the full id for ordering."""

    def __init__(self, run_id: str, marked: bool) -> None:
        super().__init__(("●" if marked else " ") + run_id[:8], style="bold reverse" if marked else "")
        self.run_id = run_id


def status_cell(status: str) -> Text:
    return Text("lost!" if status == "lost" else status, style=STATUS_STYLES.get(status, ""))


def progress_text(progress: float | None) -> str:
    """42%; a long run's first steps as 0.3% rather than a frozen 0%."""
    if progress is None:
        return "-"
    if 0 < progress < 0.1:
        return f"{progress * 100:.1f}%"
    return percent(progress)


def run_cells(run: Run, now: float, marked: bool = False) -> dict[str, Any]:
    """A run's table cells by column key."""
    progress = progress_text(run.progress)
    return {  # Text, never str: the table reads a str as markup (a sweep's "tiny[label_ratio=0.1]" lost its [...])
        "group": Text((run.group_id or "-")[:12], style="dim"),
        "id": RunIdText(run.id, marked), "name": Text(printable(run.name or "-")),
        "stage": Text(stage_text(run)), "objective": Text(run.objective or "-"),
        "dataset": Text(run.dataset or "-"), "r": Text(number(run.label_ratio, "g")),
        "node": middle_ellipsis(run.node or "-", NODE_WIDTH),  # where the worker ran (a Ray node or this host)
        "status": status_cell(run.status or "?"),
        "progress": Text(progress, justify="right"),
        "elapsed": Text(duration(elapsed_seconds(run, now)), justify="right"),
        "loss": Text(number(run.latest_loss), justify="right"),
        "f1": Text(number(run.best_f1, ".3f"), justify="right"),
    }


def same_cell(a: Any, b: Any) -> bool:
    """Whether a cell would look the same (rich's Text equality ignores the base style)."""
    if isinstance(a, Text) and isinstance(b, Text):
        return (a.plain, str(a.style), a.spans, a.justify) == (b.plain, str(b.style), b.spans, b.justify)
    return type(a) is type(b) and a == b


def cell_width(value: Any) -> int:
    """The width the table gives a one-line cell."""
    return value.cell_len if isinstance(value, Text) else cell_len(str(value))


def run_matches(run: Run, words: Sequence[str]) -> bool:
    """Every word of the filter is in one of the run's fields or tags (case-insensitive);
    `field:value` (or `field=value`) looks in that field only, e.g. status:running, tag:best."""
    for word in words:
        field, sep, value = word.partition(":") if ":" in word else word.partition("=")
        if sep and field:
            if field in ("tag", "tags"):
                found = any(value in str(t).lower() for t in run.tags)
            elif field == "r":
                found = value in number(run.label_ratio, "g")
            else:
                found = value in str(run.get(field, "")).lower()
        else:
            haystack = " ".join(str(run.get(f) or "") for f in SEARCHED_FIELDS) + " " + " ".join(
                str(t) for t in run.tags)
            found = word in haystack.lower()
        if not found:
            return False
    return True


def order_runs(runs: Iterable[Run], sort: str, reverse: bool, grouped: bool, now: float) -> list[str]:
    """Run ids in display order: by `sort` (values missing last), groups (newest first) kept together."""
    value_of = SORTS[sort][0]
    keyed = [(value_of(run, now), run) for run in runs]
    present = sorted((p for p in keyed if p[0] is not None), key=lambda p: (p[0], p[1]["id"]), reverse=reverse)
    ordered = [run for _, run in present] + sorted((run for value, run in keyed if value is None),
                                                   key=lambda run: run.id)
    if grouped:
        newest: dict[str, float] = {}
        for run in ordered:
            group = run.group_id or run.id
            newest[group] = max(newest.get(group, 0.0), run.created_at or 0.0)
        rank = {g: i for i, g in enumerate(sorted(newest, key=lambda g: (-newest[g], g)))}
        ordered.sort(key=lambda run: rank[run.group_id or run.id])  # stable: keeps the sort within
    return [run.id for run in ordered]


class RunsTable(DataTable):
    """The table of runs (row key = run id)."""

    def current_run_id(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - no valid cursor
            return None

    def order_rows(self, order: Sequence[str], current: str | None) -> None:
        """Put the rows in `order`, the cursor on run `current` (the top row when None)."""
        position = {run_id: i for i, run_id in enumerate(order)}
        self.sort("id", key=lambda cell: position.get(cell.run_id, len(position)))
        if current is not None and current in self.rows:
            self.move_cursor(row=self.get_row_index(current), animate=False)
        elif self.row_count:
            self.move_cursor(row=0, animate=False)


def middle_ellipsis(text: Text | str, width: int) -> Text:
    """`paper_synthetic[arm=ssl,...]/finetune` -> `paper_s…finetune`: both ends say the most."""
    text = text if isinstance(text, Text) else Text(text)
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    tail = width - 1 - head
    return Text.assemble(text[:head], "…", text[len(text) - tail :])


class RunsScreen(Screen):
    """All runs, live."""

    BINDINGS = [
        Binding("enter", "open", "open", tooltip="open the selected run: curves, weights, genotype, log"),
        Binding("slash", "focus_filter", "filter", key_display="/",
                tooltip="filter: words, or field:value (status:running tag:best r:0.1); enter returns"),
        Binding("s", "cycle_sort", "sort", tooltip="sort by the next column (or click a header)"),
        Binding("S", "reverse_sort", "reverse", show=False, key_display="S", tooltip="reverse the sort"),
        Binding("g", "toggle_group", "group", tooltip="group the runs of one sweep or pipeline together"),
        Binding("space", "mark", "mark", show=False, tooltip="mark / unmark the run for compare (c)"),
        Binding("escape", "clear", "clear", show=False, tooltip="clear the filter, then the marks"),
    ]

    sort_key: reactive[str] = reactive("created", init=False)
    sort_reverse: reactive[bool] = reactive(True, init=False)
    grouped: reactive[bool] = reactive(False, init=False)
    filter_text: reactive[str] = reactive("", init=False)
    narrow: reactive[bool] = reactive(False, init=False)

    AUTO_FOCUS = "#runs-table"

    def __init__(self) -> None:
        super().__init__(id="runs-screen")
        self._shown: dict[str, list[Any]] = {}  # run id -> the cells on screen
        self._ready = False  # the app's first poll may come back before this screen is mounted

    @property
    def ssnas(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Input(placeholder="/ filter: words, or field:value (status:running tag:best r:0.1)", id="filter")
        yield RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static(EMPTY_MESSAGE, id="empty")
        yield Static("", id="status-line")
        yield Footer()

    def on_mount(self) -> None:
        self.set_reactive(RunsScreen.narrow, self.app.size.width < NARROW)
        # kept, not queried: the app's polls may still land while the app tears the screen down
        self._table = self.query_one(RunsTable)
        self._empty = self.query_one("#empty", Static)
        self._status_line = self.query_one("#status-line", Static)
        self._ready = True
        self.rebuild()

    def on_resize(self) -> None:
        self.narrow = self.app.size.width < NARROW

    @property
    def table(self) -> RunsTable:
        return self._table

    # -- what the app and the actions ask

    def target_run_id(self) -> str | None:
        return self.table.current_run_id()

    def select_run(self, run_id: str) -> None:
        if run_id in self.table.rows:
            self.table.move_cursor(row=self.table.get_row_index(run_id), animate=False)

    # -- mirroring the cache

    @property
    def _words(self) -> list[str]:
        return self.filter_text.lower().split()

    def _columns(self) -> list[tuple[str, str]]:
        columns = [c for c in COLUMNS if not (self.narrow and c[0] in NARROW_HIDDEN)]
        return [GROUP_COLUMN, *columns] if self.grouped else columns

    def _cells(self, run: Run) -> list[Any]:
        cells = run_cells(run, self.ssnas.clock(), run.id in self.ssnas.marked)
        if self.narrow:
            cells["name"] = middle_ellipsis(cells["name"], NARROW_NAME)
        return [cells[key] for key, _ in self._columns()]

    def rebuild(self) -> None:
        """Redraw every row from the cache (after a filter, grouping or registry change): no registry read."""
        if not self._ready:
            return
        table = self.table
        current = table.current_run_id()
        table.clear(columns=True)
        table.fixed_columns = 2 if self.grouped else 1
        for key, label in self._columns():
            table.add_column(label, key=key)
        self._shown = {}
        words = self._words
        for run in self.ssnas.runs.values():
            if run_matches(run, words):
                cells = self._cells(run)
                table.add_row(*cells, key=run.id)
                self._shown[run.id] = cells
        self._arrange(current)
        self.refresh_state()

    def sync(self, changed: Iterable[str], deleted: Iterable[str]) -> None:
        """Apply one poll: update, add or drop only the rows that changed."""
        if not self._ready:
            return
        table = self.table
        current = table.current_run_id()
        touched = False
        for run_id in deleted:
            if run_id in self._shown:
                table.remove_row(run_id)
                del self._shown[run_id]
                touched = True
        words = self._words
        for run_id in changed:
            run = self.ssnas.runs.get(run_id)
            if run is None:
                continue
            if not run_matches(run, words):
                if run_id in self._shown:
                    table.remove_row(run_id)
                    del self._shown[run_id]
                    touched = True
                continue
            cells = self._cells(run)
            if run_id in self._shown:
                self._update_row(run_id, cells)
            else:
                table.add_row(*cells, key=run_id)
                self._shown[run_id] = cells
            touched = True
        if touched:
            self._arrange(current)
        self.refresh_state()

    def _update_row(self, run_id: str, cells: list[Any]) -> None:
        """Update the cells that changed; a column is re-measured only when a cell outgrows it (the
        table re-measures a whole column, every row, for each narrower cell: 1,000 runs made each
        refresh and each clock tick cost hundreds of ms). Columns shrink back at the next rebuild."""
        old = self._shown[run_id]
        table = self.table
        for (key, _), before, after in zip(self._columns(), old, cells, strict=True):
            if not same_cell(before, after):
                column = table.columns.get(ColumnKey(key))
                grows = column is None or cell_width(after) > column.content_width
                table.update_cell(run_id, key, after, update_width=grows)
        self._shown[run_id] = cells

    def tick(self) -> None:
        """The clock moved: redraw the elapsed time of the runs still going (in memory)."""
        if not self._ready:
            return
        for run_id in self._shown:
            run = self.ssnas.runs.get(run_id)
            if run is not None and run.status == "running":
                self._update_row(run_id, self._cells(run))
        if self.sort_key == "elapsed":
            self._arrange(self.table.current_run_id())

    def refresh_marks(self) -> None:
        if not self._ready:
            return
        for run_id in self._shown:
            self._update_row(run_id, self._cells(self.ssnas.runs[run_id]))
        self.refresh_state()

    def _arrange(self, current: str | None) -> None:
        runs = [self.ssnas.runs[run_id] for run_id in self._shown if run_id in self.ssnas.runs]
        order = order_runs(runs, self.sort_key, self.sort_reverse, self.grouped, self.ssnas.clock())
        self.table.order_rows(order, current)

    def refresh_state(self) -> None:
        """The empty state and the status line."""
        if not self._ready:
            return
        app = self.ssnas
        runs = app.runs
        empty = not runs
        self.set_class(empty, "-empty")
        if empty:
            self._empty.update(
                f"{EMPTY_MESSAGE}\n\n{app.registry_note()}" if app.registry_note() else EMPTY_MESSAGE)
        statuses = [run.status for run in runs.values()]
        noun = "run" if len(runs) == 1 else "runs"
        parts = [f"{len(self._shown)}/{len(runs)} {noun}" if self.filter_text.strip() else f"{len(runs)} {noun}"]
        for status in ("running", "queued", "failed", "lost"):
            count = statuses.count(status)
            if count:
                parts.append(f"{count} {status}" + ("!" if status == "lost" else ""))
        arrow = "↓" if self.sort_reverse else "↑"
        parts.append(f"sort {self.sort_key}{arrow}")
        if self.grouped:
            parts.append("grouped")
        if app.marked:
            parts.append(f"{len(app.marked)} marked")
        if runs and self.filter_text.strip() and not self._shown:
            parts.append("no run matches the filter")
        line = Text(" · ".join(parts))
        if app.poll_error:
            line.append(f"  {app.poll_error}", style="bold red")
        self._status_line.update(line)

    # -- reactive state

    def watch_filter_text(self) -> None:
        self.rebuild()

    def watch_grouped(self) -> None:
        self.rebuild()

    def watch_narrow(self) -> None:
        self.rebuild()

    def watch_sort_key(self) -> None:
        self._arrange(self.table.current_run_id())
        self.refresh_state()

    def watch_sort_reverse(self) -> None:
        self._arrange(self.table.current_run_id())
        self.refresh_state()

    # -- events and actions

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.table.focus()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:  # every row is keyed by its run id
            self.ssnas.open_run(event.row_key.value)

    @on(DataTable.HeaderSelected)
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key not in SORTS:
            return
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_key = key
            self.sort_reverse = SORTS[key][1]

    def action_open(self) -> None:
        run_id = self.target_run_id()
        if run_id is not None:
            self.ssnas.open_run(run_id)

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_cycle_sort(self) -> None:
        keys = list(SORTS)
        key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self.sort_key = key
        self.sort_reverse = SORTS[key][1]

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse

    def action_toggle_group(self) -> None:
        self.grouped = not self.grouped

    def action_mark(self) -> None:
        run_id = self.target_run_id()
        if run_id is None:
            return
        self.ssnas.toggle_mark(run_id)
        row = self.table.cursor_row
        if row + 1 < self.table.row_count:
            self.table.move_cursor(row=row + 1, animate=False)

    def action_clear(self) -> None:
        """Escape: out of the filter (emptying it), else drop the marks."""
        filter_input = self.query_one("#filter", Input)
        if filter_input.has_focus:
            filter_input.value = ""
            self.table.focus()
        elif self.filter_text:
            filter_input.value = ""
        elif self.ssnas.marked:
            self.ssnas.clear_marks()
