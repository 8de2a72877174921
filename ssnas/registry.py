"""The run registry: one SQLite file that workers write and the CLI and dashboard read.

Several worker processes write at once, so every connection runs in WAL mode with a 30 s busy
timeout and every write is one short `BEGIN IMMEDIATE` transaction (rows batched with executemany):
a writer waits for the lock instead of failing with "database is locked", and readers never block
writers. Readers poll with cursors (`after` = the last row id they saw; `revision` for runs), so they
never re-read everything.

Opening an up-to-date registry needs only the standard library's sqlite3, so `ssnas runs` starts
fast; sqlite-utils (which pulls in numpy) is imported only to create or migrate the schema.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssnas.errors import RegistryError
from ssnas.registry_query import HAS_TAG, SUMMARIES, compile_sort, compile_where
from ssnas.run_record import STAGES, STATUSES, TERMINAL, Run

if TYPE_CHECKING:
    import sqlite_utils

DEFAULT_PATH = Path("runs") / "registry.db"
BUSY_TIMEOUT_S = 30.0
REMOTE_STALE_FACTOR = 10  # a run on another host: only its heartbeat can be checked, so wait longer
JSON_COLUMNS = ("config", "versions", "tags")
RUN_ID = re.compile(r"[a-z0-9][a-z0-9-]{3,63}")  # a given run id: what the CLI and run folders can take
_SUMMARY_SQL = ", ".join(f"{sql} AS {name}" for name, sql in SUMMARIES.items())
_METRIC_COLUMNS = "id AS rowid, run_id, step, epoch, split, key, value, wall_time"
_ARCH_COLUMNS = "id AS rowid, run_id, step, epoch, kind, cell, step_index, slot, choice, weight"


# -- schema: numbered migrations, applied in order at open -----------------------------------------


def _migration_1(db: sqlite_utils.Database) -> None:
    """runs, metrics, arch_weights, genotypes, events, and the counters readers poll by."""
    runs = db.table("runs").create(
        {"id": str, "name": str, "stage": str, "status": str, "parent_id": str, "group_id": str,
         "recipe_path": str, "config": str, "objective": str, "dataset": str, "label_ratio": float,
         "seed": int, "device": str, "executor": str, "node": str, "pid": int, "host": str,
         "git_commit": str, "versions": str, "created_at": float, "started_at": float, "ended_at": float,
         "heartbeat_at": float, "progress": float, "error": str, "run_dir": str, "tags": str,
         "revision": int},
        pk="id",
        not_null=["name", "stage", "status", "config", "created_at", "tags", "revision"],
        defaults={"status": "queued", "executor": "local", "tags": "[]", "revision": 0},
    )
    for column in ("status", "group_id", "parent_id", "created_at", "revision"):
        runs.create_index([column], index_name=f"runs_{column}")
    # Row tables get an explicit INTEGER PRIMARY KEY: a plain rowid may change on VACUUM, and readers
    # keep it as their polling cursor.
    metrics = db.table("metrics").create(
        {"id": int, "run_id": str, "step": int, "epoch": int, "split": str, "key": str, "value": float,
         "wall_time": float},
        pk="id", not_null=["run_id", "key"],
    )
    metrics.create_index(["run_id"], index_name="metrics_run")  # (run_id, id): rows newer than a cursor
    metrics.create_index(["run_id", "key", "split"], index_name="metrics_run_key")  # a series; its last value
    arch = db.table("arch_weights").create(
        {"id": int, "run_id": str, "step": int, "epoch": int, "kind": str, "cell": int, "step_index": int,
         "slot": int, "choice": str, "weight": float},
        pk="id", not_null=["run_id", "kind"],
    )
    arch.create_index(["run_id", "epoch"], index_name="arch_weights_run_epoch")
    genotypes = db.table("genotypes").create(
        {"id": int, "run_id": str, "step": int, "epoch": int, "genotype": str}, pk="id", not_null=["run_id"]
    )
    genotypes.create_index(["run_id"], index_name="genotypes_run")
    events = db.table("events").create(
        {"id": int, "run_id": str, "time": float, "level": str, "message": str}, pk="id", not_null=["run_id"]
    )
    events.create_index(["run_id"], index_name="events_run")  # (run_id, id), in time order as written
    deleted = db.table("deleted_runs").create({"run_id": str, "revision": int}, not_null=["run_id", "revision"])
    deleted.create_index(["revision"], index_name="deleted_runs_revision")
    db.table("counters").create({"name": str, "value": int}, pk="name", not_null=["value"])
    db.table("counters").insert({"name": "revision", "value": 0})


def _migration_2(db: sqlite_utils.Database) -> None:
    """runs.ray_options: what a Ray run asks of its cluster (JSON of ssnas.cluster.RayOptions), so that the
    runs folder's scheduler, whichever process it is, starts it as it was submitted."""
    db.table("runs").add_column("ray_options", str)


def _migration_3(db: sqlite_utils.Database) -> None:
    """runs.worked_seconds: how long a run's ended attempts worked, so that a resumed run's elapsed time
    (and a search's cost) counts every attempt; started_at and ended_at stay the last attempt's."""
    db.table("runs").add_column("worked_seconds", float)
    db.execute("UPDATE runs SET worked_seconds = ended_at - started_at WHERE ended_at IS NOT NULL "
               "AND started_at IS NOT NULL")


MIGRATIONS: tuple[tuple[int, str, Callable[[Any], None]], ...] = (
    (1, "initial schema", _migration_1),
    (2, "runs.ray_options", _migration_2),
    (3, "runs.worked_seconds", _migration_3),
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class RunChanges:
    """What changed in `runs` after a revision: rows to redraw, ids to drop, and the next cursor."""

    runs: list[Run]
    deleted: list[str]
    revision: int


def this_host() -> str:
    """The host name workers record in `start_run` and `reconcile` compares against."""
    return socket.gethostname()



@dataclass(frozen=True)
class NewRun:
    """A run to record as queued (`Registry.create_runs`): what its row starts with. `parent` is a run id,
    or the index of an earlier run of the same batch."""

    name: str
    stage: str
    config: dict
    recipe_path: str | None = None
    objective: str | None = None
    dataset: str | None = None
    label_ratio: float | None = None
    seed: int | None = None
    group_id: str | None = None
    parent: str | int | None = None
    tags: tuple[str, ...] = ()
    git_commit: str | None = None
    host: str | None = None
    versions: dict | None = None
    run_dir: str | None = None
    executor: str = "local"
    ray_options: str | None = None
    run_id: str | None = None


class Registry:
    """One registry file: runs, their metrics, architecture weights, genotypes and events.

    One connection per instance; it may be handed between threads (calls are serialised by a lock),
    but every process opens its own.
    """

    def __init__(self, path: str | Path = DEFAULT_PATH, *, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self._host = this_host()
        creating = create and not readonly
        _check_file(self.path, creating)
        new = creating and not self.path.exists()
        folders = _make_folders(self.path.parent) if creating else []
        try:
            self._open_file()
        except BaseException:
            if new:  # a read-only or full disk: leave nothing behind that a later reader would trip on
                _undo_create(self.path, folders)
            raise

    def _open_file(self) -> None:
        """Connect and bring the schema up to date; a failure is a RegistryError naming the file or folder."""
        try:
            self._conn = self._connect(immutable=False)
        except sqlite3.Error as error:
            raise self._cannot_open(f"cannot open ({error})") from None
        try:
            try:
                self._open()
            except sqlite3.OperationalError:
                if not self.readonly:
                    raise
                # a read-only folder without the WAL's shared-memory file: read the file as it is
                self._conn.close()
                self._conn = self._connect(immutable=True)
                self._open()
        except sqlite3.DatabaseError as error:
            self._conn.close()
            if isinstance(error, sqlite3.OperationalError):
                raise self._cannot_open(str(error)) from None
            reason = "not an SQLite database" if str(error) == "file is not a database" else error
            raise RegistryError(f"{self.path}: not an ssnas registry ({reason})") from None
        except BaseException:
            self._conn.close()
            raise

    def _cannot_open(self, problem: str) -> RegistryError:
        """Why opening failed, naming the folder when it takes no new file (SQLite only says "unable to open")."""
        refused = None if self.readonly else _unwritable(self.path.parent)
        return RegistryError(f"{self.path.parent}: cannot write ({refused})" if refused else f"{self.path}: {problem}")

    def _connect(self, immutable: bool) -> sqlite3.Connection:
        """A read-write connection, or with `readonly` one that cannot write (SQLite refuses every write)."""
        if not self.readonly:
            return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        mode = "immutable=1" if immutable else "mode=ro"
        uri = f"{self.path.resolve().as_uri()}?{mode}"
        return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)

    def _open(self) -> None:
        self._configure()
        self._migrate()
        self._run_columns = tuple(row[1] for row in self._conn.execute("PRAGMA table_info(runs)"))

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({str(self.path)!r})"

    def close(self) -> None:
        """Release the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    # -- opening

    def _configure(self) -> None:
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if self.readonly:
            self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fails here if it cannot read
            return
        if self._conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self._conn.execute("PRAGMA journal_mode = WAL")  # persistent: only the first opener switches
        self._conn.execute("PRAGMA synchronous = NORMAL")

    def _schema_state(self) -> tuple[int, set[str]]:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        return version, tables

    def _check_schema(self, version: int, tables: set[str]) -> None:
        if tables and "runs" not in tables:
            raise RegistryError(f"{self.path}: not an ssnas registry (no runs table)")
        if version > SCHEMA_VERSION:
            raise RegistryError(
                f"{self.path}: schema version {version} is newer than this ssnas ({SCHEMA_VERSION}); upgrade ssnas"
            )
        if tables and version == 0:
            raise RegistryError(f"{self.path}: not an ssnas registry (a runs table but no schema version)")

    def _migrate(self) -> None:
        """Apply the migrations this file lacks, in one transaction; a no-op (and no import) when current."""
        version, tables = self._schema_state()
        self._check_schema(version, tables)
        if self.readonly and not tables:  # its creator has not written the schema yet: try again later
            raise RegistryError(f"{self.path}: being created (no schema yet)")
        if version == SCHEMA_VERSION or self.readonly:  # a reader reads an older schema as it is
            return
        import sqlite_utils

        db = sqlite_utils.Database(self._conn, recursive_triggers=False, execute_plugins=False)
        with self._write():
            version, tables = self._schema_state()  # another process may have migrated meanwhile
            self._check_schema(version, tables)
            db.table("migrations").create({"number": int, "name": str, "applied_at": float}, pk="number",
                                    if_not_exists=True)
            for number, name, migrate in MIGRATIONS[version:]:
                migrate(db)
                self._conn.execute("INSERT INTO migrations VALUES (?, ?, ?)", (number, name, time.time()))
                self._conn.execute(f"PRAGMA user_version = {int(number)}")

    # -- plumbing

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the lock up front (waits up to the busy timeout)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise RegistryError(f"{self.path}: {error}") from None
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as error:
                if self._conn.in_transaction:  # SQLite may have rolled back already (disk full, ...)
                    self._conn.execute("ROLLBACK")
                if isinstance(error, sqlite3.OperationalError):
                    raise RegistryError(f"{self.path}: {error}") from error
                raise

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict]:
        with self._lock:
            cursor = self._conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor]

    def _bump_revision(self, conn: sqlite3.Connection) -> int:
        """The next value of the runs cursor; never reused, even after a delete."""
        conn.execute("UPDATE counters SET value = value + 1 WHERE name = 'revision'")
        return conn.execute("SELECT value FROM counters WHERE name = 'revision'").fetchone()[0]

    def _update(self, conn: sqlite3.Connection, run_id: str, values: dict[str, Any]) -> None:
        values = {**values, "revision": self._bump_revision(conn)}
        assignments = ", ".join(f'"{column}" = ?' for column in values)
        cursor = conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", [*values.values(), run_id])
        if cursor.rowcount == 0:
            raise RegistryError(f"{self.path}: no run {run_id!r}")

    def _select_runs(self, conditions: Sequence[str], params: Sequence[Any], order: str = "runs.rowid",
                     limit: int | None = None, config: bool = True) -> list[Run]:
        columns = ", ".join(f'runs."{c}"' for c in self._run_columns if config or c != "config")
        sql = f"SELECT {columns}, {_SUMMARY_SQL} FROM runs"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += f" ORDER BY {order}"
        params = list(params)
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [Run.from_row(_decode_run(row)) for row in self._rows(sql, params)]

    # -- runs

    def create_run(self, *, name: str, stage: str, config: dict, recipe_path: str | None = None,
                   objective: str | None = None, dataset: str | None = None, label_ratio: float | None = None,
                   seed: int | None = None, group_id: str | None = None, parent_id: str | None = None,
                   tags: Sequence[str] = (), git_commit: str | None = None, host: str | None = None,
                   versions: dict | None = None, run_dir: str | None = None, executor: str = "local",
                   run_id: str | None = None) -> str:
        """Record a queued run with its resolved config; returns its id (12 random hex characters).

        `run_id` fixes the id instead (tests, snapshots, importers): 4 to 64 of lowercase letters,
        digits and '-', starting with a letter or digit; an id already taken is an error.
        """
        new = NewRun(name=name, stage=stage, config=config, recipe_path=recipe_path, objective=objective,
                     dataset=dataset, label_ratio=label_ratio, seed=seed, group_id=group_id, parent=parent_id,
                     tags=tuple(tags), git_commit=git_commit, host=host, versions=versions, run_dir=run_dir,
                     executor=executor, run_id=run_id)
        return self.create_runs([new])[0]

    def create_runs(self, runs: Sequence[NewRun], runs_dir: Path | None = None,
                    before_commit: Callable[[list[str]], None] | None = None) -> list[str]:
        """Record queued runs all together or not at all (one transaction); returns their ids in order.

        A run's `parent` may be the index of an earlier run of the batch. With `runs_dir`, each run's
        folder is `runs_dir/ID`. `before_commit(ids)` runs inside the transaction (creating the runs'
        folders, say): if it raises, no row is written.
        """
        records = []
        for new in runs:
            if new.stage not in STAGES:
                raise RegistryError(f"stage {new.stage!r} is not one of {', '.join(STAGES)}")
            if new.run_id is not None and (not isinstance(new.run_id, str) or not RUN_ID.fullmatch(new.run_id)):
                raise RegistryError(f"run id {new.run_id!r} is not 4-64 of a-z, 0-9 and '-' (starting with a-z or 0-9)")
            records.append({
                "name": new.name, "stage": new.stage, "status": "queued", "parent_id": None,
                "group_id": new.group_id, "recipe_path": new.recipe_path, "config": _to_json(new.config, "config"),
                "objective": new.objective, "dataset": new.dataset, "label_ratio": new.label_ratio, "seed": new.seed,
                "executor": new.executor, "host": new.host, "git_commit": new.git_commit,
                "versions": None if new.versions is None else _to_json(new.versions, "versions"),
                "created_at": time.time(), "run_dir": new.run_dir, "tags": _to_json(_tag_list(new.tags), "tags"),
                "ray_options": new.ray_options,
            })
        ids: list[str] = []
        with self._write() as conn:
            for new, record in zip(runs, records, strict=True):
                run_id = new.run_id
                if run_id is not None:
                    if run_id in ids or conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
                        raise RegistryError(f"{self.path}: run id {run_id!r} is already taken")
                else:
                    while run_id is None or run_id in ids or \
                            conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None:
                        run_id = uuid.uuid4().hex[:12]
                record["parent_id"] = ids[new.parent] if isinstance(new.parent, int) else new.parent
                if runs_dir is not None:
                    record["run_dir"] = str(Path(runs_dir) / run_id)
                columns = ", ".join(["id", *record, "revision"])
                marks = ", ".join("?" * (len(record) + 2))
                conn.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})",
                             [run_id, *record.values(), self._bump_revision(conn)])
                ids.append(run_id)
            if before_commit is not None:
                before_commit(ids)
        return ids

    def resolve(self, prefix: str) -> str:
        """The one run id that starts with `prefix`, so people can type a few characters."""
        wanted = prefix.strip().lower()
        if not wanted:
            raise RegistryError(f"no run matches {prefix!r}")
        bounds = (wanted, wanted + "\uffff")
        with self._lock:
            ids = [row[0] for row in self._conn.execute(
                "SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 6", bounds)]
            if wanted in ids or len(ids) == 1:
                return wanted if wanted in ids else ids[0]
            if not ids:
                raise RegistryError(f"no run matches {prefix!r}")
            count = self._conn.execute("SELECT count(*) FROM runs WHERE id >= ? AND id < ?", bounds).fetchone()[0]
        shown = ", ".join(ids[:5]) + (", ..." if count > 5 else "")
        raise RegistryError(f"{prefix!r} matches {count} runs: {shown}")

    def get_run(self, id_or_prefix: str) -> Run:
        """One run with its JSON columns decoded and its summaries (latest_loss, best_f1, test_f1)."""
        return self._select_runs(["runs.id = ?"], [self.resolve(id_or_prefix)])[0]

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set run columns; config, versions and tags are given as Python values and stored as JSON."""
        unknown = [f for f in fields if f not in self._run_columns or f in ("id", "revision")]
        if unknown:
            raise RegistryError(f"cannot set run field(s) {', '.join(unknown)}")
        if "status" in fields and fields["status"] not in STATUSES:
            raise RegistryError(f"status {fields['status']!r} is not one of {', '.join(STATUSES)}")
        values = {k: _to_json(v, k) if k in JSON_COLUMNS and v is not None else v for k, v in fields.items()}
        if "tags" in values and values["tags"] is None:
            values["tags"] = "[]"
        with self._write() as conn:
            self._update(conn, run_id, values)

    def requeue(self, run_ids: Sequence[str], ray_options: str | None = None) -> None:
        """Queue ended runs again under their ids (a resume), all in one transaction; with `ray_options`, what
        each asks of the cluster now."""
        values: dict[str, Any] = {"status": "queued", "error": None, "ended_at": None}
        if ray_options is not None:
            values["ray_options"] = ray_options
        with self._write() as conn:
            for run_id in run_ids:
                self._update(conn, run_id, values)

    def start_run(self, run_id: str, *, pid: int, host: str, device: str, node: str | None = None) -> None:
        """Mark a queued run running in process `pid` on `host` (use `this_host()`); a resumed run is queued
        again first. In one transaction with the check, so a run killed while queued never starts."""
        with self._write() as conn:
            row = conn.execute("SELECT status, pid, host FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RegistryError(f"{self.path}: no run {run_id!r}")
            if row[0] == "running":
                raise RegistryError(f"run {run_id} is already running (pid {row[1]} on {row[2]})")
            if row[0] != "queued":
                raise RegistryError(f"run {run_id} is {row[0]}, not queued: it does not start")
            now = time.time()
            self._update(conn, run_id, {
                "status": "running", "pid": pid, "host": host, "device": device, "node": node or host,
                "started_at": now, "heartbeat_at": now, "ended_at": None, "error": None,
            })

    def cancel_queued(self, run_id: str, error: str) -> bool:
        """End a run `killed` if it is still queued (in one transaction with the check); False if it is not."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = 'killed', ended_at = ?, error = ?, revision = ? "
                "WHERE id = ? AND status = 'queued'",
                (time.time(), error, self._bump_revision(conn), run_id))
            return cursor.rowcount > 0

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        """End a run: finished, failed (with the error), killed or lost. A running run's attempt is added to
        its `worked_seconds`."""
        if status not in TERMINAL:
            raise RegistryError(f"status {status!r} is not one of {', '.join(TERMINAL)}")
        now = time.time()
        values: dict[str, Any] = {"status": status, "ended_at": now, "error": error}
        if status == "finished":
            values["progress"] = 1.0
        with self._write() as conn:
            row = conn.execute("SELECT status, started_at, worked_seconds FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None and row[0] == "running" and row[1] is not None:
                values["worked_seconds"] = (row[2] or 0.0) + now - row[1]
            self._update(conn, run_id, values)

    def heartbeat(self, run_id: str, progress: float | None = None) -> None:
        """Say the worker is alive (and how far it has got, 0..1)."""
        values: dict[str, Any] = {"heartbeat_at": time.time()}
        if progress is not None:
            values["progress"] = float(progress)
        with self._write() as conn:
            self._update(conn, run_id, values)

    def reconcile(self, *, stale_after: float = 30.0) -> list[str]:
        """Mark `lost` the running runs whose worker is gone; returns their ids.

        On this host: a stale heartbeat and a dead pid. On another host the pid cannot be checked,
        so only a heartbeat `REMOTE_STALE_FACTOR` times staler counts. One indexed query when nothing
        is stale. The runs folder's scheduler calls it; readers never do (they must work read-only),
        they ask `worker_gone` instead.
        """
        now = time.time()
        candidates = self._rows(
            "SELECT id, pid, host, heartbeat_at FROM runs WHERE status = 'running' AND coalesce(heartbeat_at, 0) < ?",
            [now - stale_after],
        )
        gone = [row["id"] for row in candidates if self._worker_gone(row, now, stale_after)]
        changed = []
        if gone:
            with self._write() as conn:
                for run_id in gone:
                    cursor = conn.execute(  # still running and still stale: a heartbeat may have just come
                        "UPDATE runs SET status = 'lost', ended_at = ?, error = 'worker process gone', revision = ?, "
                        # the attempt worked until its last sign of life
                        "worked_seconds = coalesce(worked_seconds, 0) + coalesce(heartbeat_at - started_at, 0) "
                        "WHERE id = ? AND status = 'running' AND coalesce(heartbeat_at, 0) < ?",
                        (now, self._bump_revision(conn), run_id, now - stale_after),
                    )
                    if cursor.rowcount:
                        changed.append(run_id)
        return changed

    def worker_gone(self, run: Run, stale_after: float = 30.0) -> bool:
        """Whether a `running` run's worker looks gone (what `reconcile` would mark lost), without writing."""
        now = time.time()
        stale = (run.heartbeat_at or 0) < now - stale_after
        return run.status == "running" and stale and self._worker_gone(run.to_dict(), now, stale_after)

    def _worker_gone(self, row: dict, now: float, stale_after: float) -> bool:
        if row["host"] == self._host:
            return not pid_alive(row["pid"])
        return (row["heartbeat_at"] or 0) < now - stale_after * REMOTE_STALE_FACTOR

    def runs(self, *, status: str | Sequence[str] | None = None, stage: str | Sequence[str] | None = None,
             dataset: str | Sequence[str] | None = None, tag: str | None = None, group: str | None = None,
             parent: str | None = None, where: str | None = None, sort: str = "-created_at",
             limit: int | None = None, config: bool = False) -> list[Run]:
        """Runs matching every filter given, each with latest_loss, best_f1 and test_f1.

        `where` is the `--where` language and `sort` its field names (see `ssnas.registry_query`).
        Rows leave out the config unless `config=True`: decoding it is most of the cost of a long
        listing, and a listing filters on it in SQL instead.
        """
        conditions: list[str] = []
        params: list[Any] = []
        for column, wanted in (("status", status), ("stage", stage), ("dataset", dataset)):
            if wanted is not None:
                values = [wanted] if isinstance(wanted, str) else list(wanted)
                conditions.append(f"runs.{column} IN ({', '.join('?' * len(values))})")
                params += values
        for condition, value in ((HAS_TAG.format(test="= ?"), tag), ("runs.group_id = ?", group),
                                 ("runs.parent_id = ?", parent)):
            if value is not None:
                conditions.append(condition)
                params.append(value)
        if where and where.strip():
            sql, where_params = compile_where(where, self._run_columns)
            conditions.append(sql)
            params += where_params
        order, order_params = compile_sort(sort, self._run_columns)
        try:
            return self._select_runs(conditions, params + order_params, order, limit, config)
        except sqlite3.OperationalError as error:  # a filter SQLite will not evaluate: too deep, too many values
            raise RegistryError(f"--where: {error}" if where else f"{self.path}: {error}") from None

    def corrupt_runs(self) -> dict[str, str]:
        """Runs whose stored JSON does not decode, each with what is wrong (`config is not valid JSON`). A filter
        on a corrupt column leaves its run out rather than failing; a listing names those runs with this."""
        checks = {column: f"json_valid(coalesce({column}, 'null'))" for column in JSON_COLUMNS}
        rows = self._rows(f"SELECT id, {', '.join(f'{sql} AS {name}' for name, sql in checks.items())} FROM runs "
                          f"WHERE NOT ({' AND '.join(checks.values())}) ORDER BY rowid")
        return {row["id"]: "; ".join(f"{name} is not valid JSON" for name in checks if not row[name]) for row in rows}

    def group(self, group_id: str) -> list[Run]:
        """The sibling runs of one sweep or pipeline, oldest first."""
        return self.runs(group=group_id, sort="created_at")

    def children(self, run_id: str) -> list[Run]:
        """The runs started from this one (pretrain from a search, finetune from a pretrain), oldest first."""
        return self.runs(parent=self.resolve(run_id), sort="created_at")

    def add_tags(self, run_id: str, tags: Iterable[str]) -> None:
        """Tag a run (tags it already has are kept once)."""
        self._edit_tags(run_id, lambda old: old + [t for t in _tag_list(tags) if t not in old])

    def remove_tags(self, run_id: str, tags: Iterable[str]) -> None:
        """Drop tags from a run (ones it lacks are ignored)."""
        dropped = set(_tag_list(tags))
        self._edit_tags(run_id, lambda old: [t for t in old if t not in dropped])

    def _edit_tags(self, run_id: str, edit: Callable[[list[str]], list[str]]) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT tags FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RegistryError(f"{self.path}: no run {run_id!r}")
            self._update(conn, run_id, {"tags": json.dumps(edit(json.loads(row[0])))})

    def delete_run(self, run_id: str) -> None:
        """Forget a run and every row it logged (its folder under runs/ is the caller's to remove)."""
        with self._write() as conn:
            for table in ("metrics", "arch_weights", "genotypes", "events"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            if conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount == 0:
                raise RegistryError(f"{self.path}: no run {run_id!r}")
            conn.execute("INSERT INTO deleted_runs VALUES (?, ?)", (run_id, self._bump_revision(conn)))

    def delete_rows_after(self, run_id: str, step: int) -> None:
        """Drop metrics, arch weights and genotypes logged after `step` (-1: all of them): a resumed run logs
        them again from its checkpoint (or from the start), and a series must not hold a step twice. Events
        stay (they are the log)."""
        with self._write() as conn:
            for table in ("metrics", "arch_weights", "genotypes"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ? AND step > ?", (run_id, step))

    def runs_changed_since(self, revision: int = 0) -> RunChanges:
        """Runs created or changed (status, heartbeat, tags, ...) and runs deleted after `revision`.

        A dashboard starts from 0 and passes back the `revision` it got: each poll is an indexed range
        read, and a counter (not a clock) means no change is missed to clock skew between hosts.
        """
        with self._lock:
            self._conn.execute("BEGIN")  # one snapshot for the three reads
            try:
                current = self._conn.execute("SELECT value FROM counters WHERE name = 'revision'").fetchone()[0]
                changed = self._select_runs(["runs.revision > ?"], [revision], "runs.revision", config=False)
                deleted = [row[0] for row in self._conn.execute(
                    "SELECT run_id FROM deleted_runs WHERE revision > ? ORDER BY revision", (revision,))]
            finally:
                self._conn.execute("COMMIT")
        return RunChanges(changed, deleted, current)

    # -- writes from workers, batched: one transaction each

    def add_metrics(self, rows: Iterable[tuple]) -> None:
        """Rows of (run_id, step, epoch, split, key, value, wall_time)."""
        self._insert_many("metrics", ("run_id", "step", "epoch", "split", "key", "value", "wall_time"), rows)

    def add_arch_weights(self, rows: Iterable[tuple]) -> None:
        """Rows of (run_id, step, epoch, kind, cell, step_index, slot, choice, weight)."""
        columns = ("run_id", "step", "epoch", "kind", "cell", "step_index", "slot", "choice", "weight")
        self._insert_many("arch_weights", columns, rows)

    def add_genotype(self, run_id: str, step: int, epoch: int, genotype_json: str) -> None:
        """The genotype derived at this point of a search, as `Genotype.to_json()` text."""
        self._insert_many("genotypes", ("run_id", "step", "epoch", "genotype"), [(run_id, step, epoch, genotype_json)])

    def add_events(self, rows: Iterable[tuple]) -> None:
        """Rows of (run_id, time, level, message)."""
        self._insert_many("events", ("run_id", "time", "level", "message"), rows)

    def _insert_many(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        with self._write() as conn:
            conn.executemany(sql, rows)

    # -- reads for the CLI and dashboard: `after` is the last rowid seen

    def metrics(self, run_id: str, key: str | None = None, split: str | None = None, after: int = 0) -> list[dict]:
        """A run's metric rows after `after`, in logged order; key/split None means any."""
        sql = f"SELECT {_METRIC_COLUMNS} FROM metrics WHERE run_id = ? AND id > ?"
        params: list[Any] = [run_id, after]
        for column, value in (("key", key), ("split", split)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        return self._rows(sql + " ORDER BY id", params)

    def metric_keys(self, run_id: str) -> list[tuple[str, str | None]]:
        """Which (key, split) series a run has logged."""
        with self._lock:
            return [tuple(row) for row in self._conn.execute(
                "SELECT DISTINCT key, split FROM metrics INDEXED BY metrics_run_key WHERE run_id = ? "
                "ORDER BY key, split", (run_id,))]

    def arch_weights(self, run_id: str, epoch: int | None = None) -> list[dict]:
        """Architecture-weight rows of one epoch (or all), in logged order."""
        if epoch is None:
            return self._rows(f"SELECT {_ARCH_COLUMNS} FROM arch_weights WHERE run_id = ? ORDER BY id", [run_id])
        return self._rows(f"SELECT {_ARCH_COLUMNS} FROM arch_weights WHERE run_id = ? AND epoch = ? ORDER BY id",
                          [run_id, epoch])

    def arch_epochs(self, run_id: str) -> list[int]:
        """The epochs that have architecture weights, ascending."""
        with self._lock:
            return [row[0] for row in self._conn.execute(
                "SELECT DISTINCT epoch FROM arch_weights WHERE run_id = ? ORDER BY epoch", (run_id,))]

    def genotypes(self, run_id: str) -> list[dict]:
        """Derived genotypes over time; `genotype` stays JSON text for `Genotype.from_json`."""
        return self._rows("SELECT id AS rowid, run_id, step, epoch, genotype FROM genotypes WHERE run_id = ? "
                          "ORDER BY id", [run_id])

    def latest_genotype(self, run_id: str) -> dict | None:
        """The last genotype logged, or None."""
        rows = self._rows("SELECT id AS rowid, run_id, step, epoch, genotype FROM genotypes WHERE run_id = ? "
                          "ORDER BY id DESC LIMIT 1", [run_id])
        return rows[0] if rows else None

    def events(self, run_id: str, after: int = 0) -> list[dict]:
        """A run's log events after `after`, in order."""
        return self._rows("SELECT id AS rowid, run_id, time, level, message FROM events WHERE run_id = ? AND id > ? "
                          "ORDER BY id", [run_id, after])


# -- helpers ---------------------------------------------------------------------------------------


def _check_file(path: Path, create: bool) -> None:
    """Refuse a missing file (unless creating) or a folder before SQLite would make a new database.

    The file is never opened here: closing any descriptor of it would drop every POSIX lock this
    process holds on it, those of its open SQLite connections included, and let other processes
    write under them (SQLite's "how to corrupt", 2.2). A file that is not SQLite is left to SQLite
    to refuse ("file is not a database").
    """
    if not path.exists():
        if not create:
            raise RegistryError(f"{path}: no such registry")
        return
    if path.is_dir():
        raise RegistryError(f"{path}: is a directory, not a registry file")


def _make_folders(folder: Path) -> list[Path]:
    """Make `folder` and its missing parents; returns those it made, outermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _undo_create(None, missing)
        raise RegistryError(f"{error.filename or folder}: cannot write ({error.strerror or error})") from None
    return missing


def _unwritable(folder: Path) -> str | None:
    """Why no file can be made in `folder` (`Permission denied`, `Read-only file system`), or None."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as error:
        return error.strerror or str(error)


def _undo_create(path: Path | None, folders: Sequence[Path]) -> None:
    """Remove what a failed create left: an empty registry file, then the folders made for it while empty."""
    with contextlib.suppress(OSError):
        if path is not None and path.stat().st_size == 0:
            path.unlink()
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def pid_alive(pid: int | None) -> bool:
    """Whether a process of this host still runs `pid` (a zombie counts as gone)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    except OverflowError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): os.kill said it exists


def _to_json(value: Any, column: str) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as error:
        raise RegistryError(f"{column}: not JSON-serialisable ({error})") from None


def _tag_list(tags: Iterable[str] | str) -> list[str]:
    return list(dict.fromkeys([tags] if isinstance(tags, str) else [str(t) for t in tags]))


def _decode_run(row: dict) -> dict:
    """JSON columns decoded; a corrupt one becomes None and is named in `corrupt`, so that one bad
    row never breaks a listing of all the others."""
    for column in JSON_COLUMNS:
        if row.get(column) is not None:
            try:
                row[column] = json.loads(row[column])
            except ValueError:
                row[column] = None
                row["corrupt"] = "; ".join(filter(None, (row.get("corrupt"), f"{column} is not valid JSON")))
    if "tags" in row and not isinstance(row["tags"], list):
        row["tags"] = []
    return row
