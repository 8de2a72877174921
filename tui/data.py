"""The dashboard's data-access boundary: what it reads from the registry and run folders, and its actions.

Nothing here imports Textual or torch, and nothing here runs on the UI thread: screens call these
from thread workers and post the results back as messages. Reads are incremental: the runs table
polls `Registry.runs_changed_since(revision)`, a run's view keeps cursors (metric and event row ids,
a byte offset into log.txt) so each poll reads only what is new.

Actions are calls of the run service (ssnas.runs), the same calls the CLI makes, so the dashboard
and `ssnas` never disagree; nothing here imports click or shells out to the CLI.
"""

from __future__ import annotations

import os
import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ssnas.errors import SsnasError
from ssnas.runs.format import printable, tags_text
from ssnas.runs.lookup import GenotypeFound, run_folder, run_genotype

if TYPE_CHECKING:
    from ssnas.registry import Registry, RunChanges
    from ssnas.run_record import Run
    from ssnas.runs.actions import Outcome
    from ssnas.runs.compare import Comparison
    from ssnas.runs.launching import Launched
    from ssnas.runs.service import RunService

BASELINE = "bmnas-mmimdb"
LOG_TAIL_BYTES = 64 * 1024  # a run view opens a long log.txt at its last 64 KB
LOG_READ_BYTES = 256 * 1024  # at most this much new log per poll


def error_text(error: BaseException) -> str:
    """One line for a widget: the library's own message, else the exception's type and message; control
    characters escaped."""
    if isinstance(error, SsnasError):
        return printable(str(error))
    text = str(error).strip().splitlines()
    return printable(f"{type(error).__name__}: {text[0]}") if text else type(error).__name__


# -- the registry, opened once it exists ----------------------------------------------------------


@dataclass(frozen=True)
class RunsPoll:
    """One poll of the runs table: the changes (None while there is no registry), or an error.

    `reset` says the registry file was replaced (or its counter went back): drop every row and
    take these changes as the whole table.
    """

    changes: RunChanges | None
    since: int
    reset: bool = False
    error: str | None = None


class RegistryReader:
    """The registry of a runs folder, opened on first need and reopened if the file is replaced.

    A missing registry is not an error: `registry()` is None until a first `ssnas run` creates it.
    The connection is shared by the dashboard's worker threads (the registry serialises calls).
    """

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = Path(runs_dir)
        self.path = self.runs_dir / "registry.db"
        self._registry: Registry | None = None
        self._inode: int | None = None
        self._lock = threading.Lock()

    def registry(self) -> Registry | None:
        """The open registry, or None while the file does not exist (raises RegistryError if unreadable)."""
        with self._lock:
            try:
                inode = self.path.stat().st_ino
            except OSError:
                inode = None
            if self._registry is not None and inode == self._inode:
                return self._registry
            if self._registry is not None:  # deleted or replaced under us
                self._registry.close()
                self._registry = None
            if inode is None:
                return None
            from ssnas.registry import Registry

            self._registry = Registry(self.path, create=False, readonly=True)
            self._inode = inode
            return self._registry

    def require(self) -> Registry:
        registry = self.registry()
        if registry is None:
            raise SsnasError(f"no registry yet ({self.path} does not exist)")
        return registry

    def poll_runs(self, revision: int) -> RunsPoll:
        """Runs changed after `revision` (reset to 0 when the registry is new or was replaced)."""
        try:
            before = self._registry
            registry = self.registry()
            if registry is None:
                return RunsPoll(None, revision, reset=before is not None)
            reset = before is not None and registry is not before
            since = 0 if reset else revision
            changes = registry.runs_changed_since(since)
            if changes.revision < since:  # a new file at the same inode: start again
                changes, reset, since = registry.runs_changed_since(0), True, 0
            return RunsPoll(changes, since, reset=reset)
        except Exception as error:  # noqa: BLE001 - shown in the status line; the next poll retries
            return RunsPoll(None, revision, error=error_text(error))

    def close(self) -> None:
        with self._lock:
            if self._registry is not None:
                self._registry.close()
                self._registry = None


# -- genotypes -----------------------------------------------------------------------------------


def baseline_genotype(name: str = BASELINE) -> GenotypeFound:
    try:
        from ssnas.baselines import load_baseline

        return GenotypeFound(load_baseline(name), f"baseline {name}")
    except Exception as error:  # noqa: BLE001
        return GenotypeFound(None, f"baseline {name}", error_text(error))


# -- one run, incrementally -----------------------------------------------------------------------


@dataclass
class RunUpdate:
    """What is new for one run since the last poll."""

    config: dict | None = None  # first poll only
    config_error: str | None = None
    metrics: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    log_exists: bool = False  # log.txt is there (a local worker prints its events into it too)
    arch: dict[int, list[dict]] = field(default_factory=dict)  # epochs (re)read, each its last step's rows
    genotype: GenotypeFound | None = None  # only when it changed
    gone: bool = False
    error: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.config is not None or self.config_error or self.metrics or self.events or self.log_lines
                    or self.arch or self.genotype or self.gone or self.error)


class RunFeed:
    """Cursors over one run: metric and event row ids, log.txt's byte offset, the arch epochs seen.

    `poll()` is called from one worker thread at a time and returns only what is new.
    """

    def __init__(self, reader: RegistryReader, run_id: str) -> None:
        self.reader = reader
        self.run_id = run_id
        self.run: Run | None = None  # read on the first poll
        self.metrics_after = 0
        self.events_after = 0
        self.log_offset: int | None = None
        self.log_partial = b""
        self.arch_epochs: set[int] = set()
        self.genotype_key: object = None
        self.first = True

    def poll(self, run: Run | None = None) -> RunUpdate:
        """What is new; `run` is the app's latest row of it, when it has one."""
        if run is not None:
            self.run = run
        update = RunUpdate()
        try:
            registry = self.reader.require()
            if self.first:
                self._read_config(registry, update)
                if update.gone:
                    return update
                self.first = False
            run_id = self.run_id
            update.metrics = registry.metrics(run_id, after=self.metrics_after)
            if update.metrics:
                self.metrics_after = update.metrics[-1]["rowid"]
            update.events = registry.events(run_id, after=self.events_after)
            if update.events:
                self.events_after = update.events[-1]["rowid"]
            update.arch = self._read_arch(registry)
            update.genotype = self._read_genotype(registry)
        except Exception as error:  # noqa: BLE001 - the view shows it and polls again
            update.error = error_text(error)
        update.log_lines = self._read_log()
        update.log_exists = self.log_offset is not None
        return update

    def _read_config(self, registry: Registry, update: RunUpdate) -> None:
        from ssnas.errors import RegistryError

        try:
            full = registry.get_run(self.run_id)
        except RegistryError as error:
            if "no run" in str(error):
                update.gone = True
                return
            raise
        if full.corrupt:  # the registry decodes what it can and names what it cannot
            update.config_error = f"run {full.short_id}: stored {full.corrupt}"
        self.run = full
        update.config = full.config if isinstance(full.config, dict) else {}

    def _read_arch(self, registry: Registry) -> dict[int, list[dict]]:
        """New epochs, and the last epoch seen again while the run goes on (it may log it twice)."""
        epochs = registry.arch_epochs(self.run_id)
        if not epochs:
            return {}
        wanted = [e for e in epochs if e not in self.arch_epochs]
        if self.arch_epochs and self.run is not None and self.run.status in ("running", "queued"):
            wanted.append(max(self.arch_epochs))
        out: dict[int, list[dict]] = {}
        for epoch in sorted(set(wanted)):
            rows = registry.arch_weights(self.run_id, epoch)
            if rows:
                last_step = rows[-1]["step"]
                out[epoch] = [r for r in rows if r["step"] == last_step]
        self.arch_epochs.update(epochs)
        return out

    def _read_genotype(self, registry: Registry) -> GenotypeFound | None:
        row = registry.latest_genotype(self.run_id)
        if row is not None:
            key: object = ("row", row["rowid"])
        else:
            path = self._folder() / "genotype.json"
            try:
                stat = path.stat()
                key = ("file", stat.st_mtime_ns, stat.st_size)
            except OSError:
                key = None
        if key == self.genotype_key:
            return None
        self.genotype_key = key
        assert self.run is not None  # read before the genotype
        return run_genotype(registry, self.reader.runs_dir, self.run)

    def _folder(self) -> Path:
        if self.run is None:  # not read yet: where a run's folder is by default
            return self.reader.runs_dir / self.run_id
        return run_folder(self.reader.runs_dir, self.run)

    def _read_log(self) -> list[str]:
        """Complete new lines of log.txt after the offset (opening at its last 64 KB)."""
        path = self._folder() / "log.txt"
        try:
            with path.open("rb") as file:
                size = file.seek(0, os.SEEK_END)
                if self.log_offset is None or size < self.log_offset:  # first read, or truncated
                    start = max(0, size - LOG_TAIL_BYTES)
                    self.log_partial = b""
                    skip_partial = start > 0
                else:
                    start, skip_partial = self.log_offset, False
                file.seek(start)
                data = file.read(LOG_READ_BYTES)
        except OSError:
            return []
        self.log_offset = start + len(data)
        data = self.log_partial + data
        lines = data.split(b"\n")
        self.log_partial = lines.pop()
        if skip_partial and lines:
            lines = lines[1:]
        return [line.decode(errors="replace").rstrip("\r") for line in lines]


# -- actions: calls of the run service --------------------------------------------------------------


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str


def act(runs_dir: Path, action: Callable[[RunService], str]) -> ActionResult:
    """Run one action on a fresh service (the registry file may have been replaced meanwhile); its
    one-line outcome, or the error as one line."""
    from ssnas.runs.service import RunService

    service = RunService(runs_dir)
    try:
        return ActionResult(True, action(service))
    except Exception as error:  # noqa: BLE001 - shown in the status line
        return ActionResult(False, error_text(error))
    finally:
        service.close()


def _outcomes(outcomes: Sequence[Outcome]) -> str:
    failed = [o.message for o in outcomes if not o.ok]
    if failed:
        raise SsnasError("; ".join(failed))
    return "; ".join(o.message for o in outcomes)


def kill_run(runs_dir: Path, run_id: str) -> ActionResult:
    return act(runs_dir, lambda service: _outcomes(service.kill([run_id])))


def tag_run(runs_dir: Path, run_id: str, text: str) -> ActionResult:
    """Words add tags; words starting with '-' remove them (as `ssnas tag` and `ssnas tag --remove`)."""
    words = text.replace(",", " ").split()
    add = [w for w in words if not w.startswith("-")]
    remove = [w[1:] for w in words if w.startswith("-") and len(w) > 1]

    return act(runs_dir, lambda service: tags_text(service.tag(run_id, add, remove)))


def delete_run(runs_dir: Path, run_id: str) -> ActionResult:
    """As `ssnas rm --with-children --yes` (the dashboard asked already, saying how many runs go)."""
    return act(runs_dir, lambda service: _outcomes(service.delete([run_id], with_children=True)))


def resume_run(runs_dir: Path, run_id: str) -> ActionResult:
    """As `ssnas resume RUN --detach`: queued again; the runs folder's scheduler continues it."""
    return act(runs_dir, lambda service: launch_notice(service.resume(run_id)))


def rerun_run(runs_dir: Path, run_id: str) -> ActionResult:
    """As `ssnas rerun RUN --detach`."""
    return act(runs_dir, lambda service: launch_notice(service.rerun([run_id])))


def launch_recipe(runs_dir: Path, recipe: Path, overrides: Sequence[str]) -> ActionResult:
    """As `ssnas run RECIPE --set ... --detach`."""
    return act(runs_dir, lambda service: launch_notice(service.submit(recipe, overrides)))


def launch_notice(launched: Launched) -> str:
    """What a launch says, then what preflight warned of (a degenerate label column, say), one line each."""
    return "\n".join([launched.message, *(f"warning: {warning}" for warning in launched.warnings)])


# -- recipes --------------------------------------------------------------------------------------


def find_recipes(recipes_dir: Path | None) -> list[Path]:
    """The *.toml of `recipes_dir` (default ./recipes), sorted by name."""
    folder = Path(recipes_dir) if recipes_dir is not None else Path.cwd() / "recipes"
    try:
        return sorted(p for p in folder.glob("*.toml") if p.is_file())
    except OSError:
        return []


def parse_overrides(text: str) -> list[str]:
    """`search.epochs=5 'sweep.seed=[0, 1]'` -> ["search.epochs=5", "sweep.seed=[0, 1]"] (a --set is ignored)."""
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise SsnasError(f"overrides: {error}") from None
    overrides = [w for w in words if w != "--set"]
    bad = [w for w in overrides if "=" not in w]
    if bad:
        raise SsnasError(f"override {bad[0]!r} is not SECTION.KEY=VALUE")
    return overrides


@dataclass(frozen=True)
class RecipeCheck:
    ok: bool
    message: str
    overrides: tuple[str, ...] = ()


def check_recipe(path: Path, override_text: str) -> RecipeCheck:
    """Validate as `ssnas run` would before launching (torch-free): the runs it makes, or the one-line error."""
    try:
        from ssnas.recipe import expand_sweep, load_recipe, pipeline_stages

        overrides = parse_overrides(override_text)
        recipe = load_recipe(path, overrides)
        points = expand_sweep(recipe)
        stages = pipeline_stages(recipe)
    except Exception as error:  # noqa: BLE001 - every problem is a message in the dialog
        return RecipeCheck(False, error_text(error))
    runs = len(points) * len(stages)
    names = ", ".join(p.run.name for p in points[:4]) + (", ..." if len(points) > 4 else "")
    chain = " -> ".join(stages)
    where = f"{len(points)} sweep points: {names}" if len(points) > 1 else names
    return RecipeCheck(True, f"ok: {runs} run(s), {chain} ({where})", tuple(overrides))


# -- compare --------------------------------------------------------------------------------------


def compare_runs(runs_dir: Path, run_ids: Sequence[str]) -> Comparison:
    """As `ssnas compare`: a row per field, a column per run; the config keys that differ; their genotypes."""
    from ssnas.runs.service import RunService

    service = RunService(runs_dir)
    try:
        return service.compare(run_ids)
    finally:
        service.close()
