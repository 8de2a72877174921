"""`RunService`: one runs folder and every action on its runs, for the CLI and the dashboard alike.

A thin facade over the modules that hold each action's rules (actions, compare, export, lookup,
launching), in the way sqlite-utils' CLI sits over its library. Readers get a read-only registry:
listing and showing never write, so they work on a read-only folder and a full disk.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ssnas.errors import SsnasError
from ssnas.registry import Registry
from ssnas.run_record import Run
from ssnas.runs import actions, compare, completion, export, launching, lookup, mlflow_export
from ssnas.runs.launching import Launched, LaunchOptions


class RunService:
    """The runs folder (default ./runs, or $SSNAS_RUNS) and its registry, opened on first use."""

    def __init__(self, runs_dir: str | Path | None = None) -> None:
        self.runs_dir = Path(runs_dir or os.environ.get("SSNAS_RUNS") or "runs")
        self._reader: Registry | None = None
        self._writer: Registry | None = None
        self._lock = threading.Lock()

    @property
    def registry_path(self) -> Path:
        return self.runs_dir / "registry.db"

    def has_registry(self) -> bool:
        return self.registry_path.exists()

    def reader(self) -> Registry:
        """The registry opened read-only (a missing one is an error: readers never create it)."""
        with self._lock:
            if self._reader is None:
                self._reader = Registry(self.registry_path, create=False, readonly=True)
            return self._reader

    def writer(self, create: bool = False) -> Registry:
        """The registry for actions that change runs (created with its folder when `create`)."""
        with self._lock:
            if self._writer is None:
                self._writer = Registry(self.registry_path, create=create)
            return self._writer

    def close(self) -> None:
        with self._lock:
            for registry in (self._reader, self._writer):
                if registry is not None:
                    registry.close()
            self._reader = self._writer = None

    # -- lookups

    def run(self, id_or_prefix: str) -> Run:
        return self.reader().get_run(id_or_prefix)

    def runs_named(self, ids_or_prefixes: Sequence[str]) -> list[Run]:
        return [self.run(prefix) for prefix in ids_or_prefixes]

    def folder(self, run: Run) -> Path:
        return lookup.run_folder(self.runs_dir, run)

    def genotype(self, run: Run) -> lookup.GenotypeFound:
        return lookup.run_genotype(self.reader(), self.runs_dir, run)

    def completions(self, typed: str) -> list[Run]:
        """The runs a shell offers for a RUN argument; none, and not a word, without a readable registry:
        completion must never print into the command line being typed."""
        if not self.has_registry():
            return []
        try:
            return completion.run_completions(self.reader(), typed)
        except (SsnasError, OSError, sqlite3.Error):
            return []

    # -- starting runs: queued here, run by the runs folder's scheduler (ssnas.runs.launching)

    def submit(self, recipe: str | Path, overrides: Sequence[str] = (), options: LaunchOptions | None = None, *,
               share: bool = True, reuse: bool = False) -> Launched:
        return launching.submit(self.runs_dir, str(recipe), overrides, options or launching.LaunchOptions(),
                                share=share, reuse=reuse)

    def resume(self, run_id: str, options: LaunchOptions | None = None) -> Launched:
        return launching.resume(self.runs_dir, run_id, options or launching.LaunchOptions())

    def rerun(self, ids: Sequence[str] = (), *, failed: bool = False, overrides: Sequence[str] = (),
              options: LaunchOptions | None = None) -> Launched:
        return launching.rerun(self.runs_dir, ids, failed=failed, overrides=overrides,
                               options=options or launching.LaunchOptions())

    # -- actions

    def kill(self, ids: Sequence[str], address: str | None = None) -> list[actions.Outcome]:
        registry = self.writer()
        return actions.kill(registry, self.runs_dir, [registry.get_run(i) for i in ids], address)

    def tag(self, run_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> Run:
        registry = self.writer()
        return actions.tag(registry, registry.get_run(run_id), add, remove)

    def delete(self, ids: Sequence[str], confirm: Callable[[Sequence[Run]], bool] | None = None, *,
               with_children: bool = False) -> list[actions.Outcome]:
        registry = self.writer()
        return actions.delete(registry, self.runs_dir, [registry.get_run(i) for i in ids], confirm, with_children)

    def export(self, run_id: str, folder: Path | None = None, *, force: bool = False) -> list[str]:
        run = self.run(run_id)
        return export.export(self.reader(), self.runs_dir, run, folder or Path("export") / run.id, force=force)

    def export_mlflow(self, target: str, ids: Sequence[str] = (), *, where: str | None = None,
                      group: str | None = None, experiment: str | None = None) -> list[str]:
        """Runs named by id, or else every run `where` and `group` select, into an MLflow store."""
        registry = self.reader()
        if ids:
            runs = list({run.id: run for run in self.runs_named(ids)}.values())
        else:
            runs = registry.runs(where=where, group=group, sort="created_at", config=True)
        return mlflow_export.export_runs(registry, self.runs_dir, runs, target,
                                         experiment or mlflow_export.EXPERIMENT)

    def compare(self, ids: Sequence[str]) -> compare.Comparison:
        return compare.compare(self.reader(), self.runs_dir, self.runs_named(ids))
