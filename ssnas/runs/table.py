"""Runs as rows of chosen fields: what `ssnas runs --columns` prints as a table, CSV, JSON or Parquet.

A column is any field `--where` can name, resolved by the same `resolve_field`, plus two that only
outputs have: `tags` (the list) and `elapsed_s` (`elapsed_seconds`). Its values are what a filter on it
compares: a run column or summary as the registry computed it, a config path walked in the run's config
as SQLite's json_extract walks it, a metric's last logged value. A column reads `None` where a run has
no value; a config path or metric that no listed run has is named by `unfilled`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ssnas.errors import SsnasError
from ssnas.registry_query import SUMMARIES, Field, did_you_mean, resolve_field
from ssnas.run_record import Run
from ssnas.runs.format import SHORT_ID, elapsed_seconds, flatten, local_time

if TYPE_CHECKING:
    from ssnas.registry import Registry

# What `--csv` and `--format parquet` print without --columns.
DEFAULT_COLUMNS = ("id", "name", "stage", "objective", "dataset", "label_ratio", "seed", "status", "progress",
                   "elapsed_s", "latest_loss", "best_f1", "test_f1", "created_at", "started_at", "ended_at",
                   "group_id", "parent_id", "device", "host", "tags", "error")
OUTPUT_ONLY = ("tags", "elapsed_s")
# The stored run columns a column may name: every attribute of the record but the summaries (resolved as those).
RUN_COLUMNS = tuple(f.name for f in dataclasses.fields(Run) if f.name not in (*SUMMARIES, "corrupt"))
PARQUET_EXTRA = "--format parquet needs pyarrow: pip install 'ssnas[parquet]'"


@dataclass(frozen=True)
class Column:
    """One output column: its field (None for an output-only one) and its type.

    `dtype` is float, int, str, bool, time (Unix seconds), tags (a list of strings), json (any JSON value),
    or `any` for a config path, whose type its values decide (`value_dtype`).
    """

    name: str
    field: Field | None
    dtype: str


def resolve_columns(text: str) -> list[Column]:
    """`id,search.arch_lr,metric.dev.f1_weighted` as columns; an unknown or repeated name is an error."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise SsnasError(f"--columns: an empty field name in {text!r}")
    columns: list[Column] = []
    for name in names:
        if name in (c.name for c in columns):
            raise SsnasError(f"--columns: {name!r} is named twice")
        columns.append(_column(name))
    return columns


def default_columns() -> list[Column]:
    return [_column(name) for name in DEFAULT_COLUMNS]


def _column(name: str) -> Column:
    if name == "tags":
        return Column(name, None, "tags")
    if name == "elapsed_s":
        return Column(name, None, "float")
    field = resolve_field(name, RUN_COLUMNS, flag="--columns", also=OUTPUT_ONLY)
    if field.is_tag:
        raise SsnasError("--columns: 'tag' is a filter; the column of a run's tags is 'tags'")
    if field.kind == "metric":
        return Column(name, field, "float")
    if field.kind == "config":
        return Column(name, field, "any")
    return Column(name, field, _declared_dtype(name))


def _declared_dtype(attribute: str) -> str:
    """The type `Run` declares for an attribute; `*_at` columns are times."""
    if attribute.endswith("_at"):
        return "time"
    hint = typing.get_type_hints(Run)[attribute]
    declared = typing.get_args(hint) or (hint,)
    return next((name for python, name in ((float, "float"), (int, "int"), (str, "str")) if python in declared),
                "json")


def reads_config(columns: Sequence[Column]) -> bool:
    """Whether the listing must decode the runs' configs (it leaves them out otherwise)."""
    return any(c.field is not None and c.field.kind == "config" for c in columns)


# -- values ----------------------------------------------------------------------------------------


def column_rows(registry: Registry, runs: Sequence[Run], columns: Sequence[Column], now: float) -> list[dict]:
    """One dict per run, column name to raw value (None where the run has none)."""
    return [{c.name: _value(registry, run, c, now) for c in columns} for run in runs]


def _value(registry: Registry, run: Run, column: Column, now: float) -> Any:
    field = column.field
    if field is None:
        return list(run.tags) if column.name == "tags" else elapsed_seconds(run, now)
    if field.kind == "config":
        return config_value(run.config, field.parts)
    if field.kind == "metric":
        split, key = (None, *field.parts) if len(field.parts) == 1 else field.parts
        series = registry.metrics(run.id, key=key, split=split)
        return series[-1]["value"] if series else None  # in logged order: the last, as a filter reads it
    return run[field.name]


def config_value(config: Any, parts: Sequence[str]) -> Any:
    """The value at a dotted path, as json_extract finds it: a digit indexes a list, a name keys an object."""
    node = config
    for part in parts:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and not part.isdigit() and part in node:
            node = node[part]
        else:
            return None
    return node


def unfilled(registry: Registry, runs: Sequence[Run], rows: Sequence[dict], columns: Sequence[Column]) -> list[str]:
    """A warning per config path or metric that no listed run has a value for, with the nearest name they
    have: most likely a typo, which would otherwise pass for a column of missing values."""
    empty = [c for c in columns if c.field is not None and c.field.kind in ("config", "metric")
             and rows and all(row[c.name] is None for row in rows)]
    warnings = []
    for column in empty:
        assert column.field is not None
        if column.field.kind == "config":
            known = [key for run in runs for key in flatten(run.config or {})]
        else:
            known = [".".join(filter(None, ("metric", split, key)))
                     for run in runs for key, split in registry.metric_keys(run.id)]
        warnings.append(f"warning: --columns: no run listed has a value for {column.name!r}"
                        f"{did_you_mean(column.name, known)}")
    return warnings


# -- formats ---------------------------------------------------------------------------------------


def people_rows(rows: Sequence[dict], columns: Sequence[Column]) -> list[dict[str, str]]:
    """Cells for a table: short ids, local times, 4 significant digits, `-` for nothing."""
    return [{c.name: _people_text(row[c.name], c) for c in columns} for row in rows]


def _people_text(value: Any, column: Column) -> str:
    if value is None:
        return "-"
    if column.dtype == "time":
        return local_time(value, "%Y-%m-%d %H:%M")
    if column.name in ("id", "parent_id"):
        return value[:SHORT_ID]
    if column.name == "tags":
        return ", ".join(value) or "-"
    if isinstance(value, float):
        return format(value, ".4g")
    return _plain_text(value)


def _plain_text(value: Any) -> str:
    """A value in a text cell: strings bare, booleans lowercase, lists and objects as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def csv_text(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """A header and a line per run: full ids, Unix seconds, tags joined by commas, nothing for no value."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c.name for c in columns])
    for row in rows:
        writer.writerow(["" if row[c.name] is None else ",".join(row[c.name]) if c.name == "tags"
                         else _plain_text(row[c.name]) for c in columns])
    return buffer.getvalue()


def parquet_bytes(rows: Sequence[dict], columns: Sequence[Column]) -> bytes:
    """A Parquet file of one column per field, typed: float64, int64, string, bool, list<string> for tags,
    times as UTC timestamps (microseconds); a config path takes its values' type (JSON text when mixed)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise SsnasError(PARQUET_EXTRA) from None
    types = {"float": pa.float64(), "int": pa.int64(), "str": pa.string(), "bool": pa.bool_(),
             "json": pa.string(), "tags": pa.list_(pa.string()), "time": pa.timestamp("us", tz="UTC")}
    arrays = []
    for column in columns:
        values = [row[column.name] for row in rows]
        dtype = value_dtype(values) if column.dtype == "any" else column.dtype
        if dtype == "time":
            values = [None if v is None else round(v * 1_000_000) for v in values]
        elif dtype == "json":
            values = [None if v is None else json.dumps(v) for v in values]
        arrays.append(pa.array(values, types[dtype]))
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(arrays, names=[c.name for c in columns]), sink)
    return sink.getvalue().to_pybytes()


def value_dtype(values: Sequence[Any]) -> str:
    """The one type of a config path's values: bool, int, float (ints and floats mixed), str, else json."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    numbers = [v for v in present if isinstance(v, int | float) and not isinstance(v, bool)]
    if present and len(numbers) == len(present):
        return "int" if all(isinstance(v, int) and -(2**63) <= v < 2**63 for v in numbers) else "float"
    return "str" if all(isinstance(v, str) for v in present) else "json"
