"""Runs side by side: a row per field with a column per run, and the config keys that differ."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssnas.errors import SsnasError
from ssnas.registry import Registry
from ssnas.run_record import Run
from ssnas.runs.format import duration, elapsed_seconds, flatten, last_values, number, plain, short_ids, status_text
from ssnas.runs.lookup import GenotypeFound, run_genotype

CONFIG_COLUMN = "config that differs"


@dataclass(frozen=True)
class Comparison:
    """What `ssnas compare` prints and the dashboard's compare screen draws."""

    runs: list[Run]
    labels: list[str]  # the shortest id prefixes that tell the runs apart
    summary: list[dict[str, str]]  # per field: {"": field, label: value, ...}
    config: list[dict[str, str]]  # per differing key: {CONFIG_COLUMN: key, label: value, ...}
    genotypes: list[GenotypeFound]


def compare(registry: Registry, runs_dir: Path, runs: Sequence[Run]) -> Comparison:
    if len(runs) < 2:
        raise SsnasError("compare needs at least two runs")
    labels = short_ids([r.id for r in runs])
    if len(set(labels)) < len(labels):
        raise SsnasError("the same run is named twice")
    genotypes = [run_genotype(registry, runs_dir, r) for r in runs]
    summary = summary_rows(registry, runs, labels, genotypes)
    return Comparison(list(runs), labels, summary, config_difference_rows(runs, labels), genotypes)


def summary_rows(registry: Registry, runs: Sequence[Run], labels: Sequence[str],
                 genotypes: Sequence[GenotypeFound]) -> list[dict[str, str]]:
    """Status, duration, final metrics and genotype similarity to the first run."""
    from ssnas.nas.genotype import diff

    tests = [last_values(registry.metrics(r.id, split="test")) for r in runs]
    test_keys = list(dict.fromkeys(k for values in tests for k in values))
    first = genotypes[0].genotype

    def row(field: str, values: Iterable[str]) -> dict[str, str]:
        return {"": field, **dict(zip(labels, values, strict=True))}

    def similarity(found: GenotypeFound) -> str:
        if found.error:
            return "broken"
        if found.genotype is None or first is None:
            return "-"
        return f"{diff(first, found.genotype).similarity:.2f}"

    return [
        row("name", [r.name for r in runs]),
        row("stage", [r.stage for r in runs]),
        row("status", [status_text(r.status) for r in runs]),
        row("duration", [duration(elapsed_seconds(r)) for r in runs]),
        *[row(f"test {key}", [number(values.get(key), ".4f") for values in tests]) for key in test_keys],
        row("best dev F1", [number(r.best_f1, ".4f") for r in runs]),
        row("last loss", [number(r.latest_loss) for r in runs]),
        row("genotype similarity", [similarity(found) for found in genotypes]),
    ]


def config_difference_rows(runs: Sequence[Run], labels: Sequence[str]) -> list[dict[str, Any]]:
    """The flattened config keys whose values are not the same in every run."""
    flats = [flatten(r.config or {}) for r in runs]
    keys = list(dict.fromkeys(k for flat in flats for k in flat))
    missing = object()
    rows = []
    for key in keys:
        values = [flat.get(key, missing) for flat in flats]
        if any(v != values[0] for v in values[1:]):
            rows.append({CONFIG_COLUMN: key,
                         **{label: "-" if v is missing else plain(v) for label, v in zip(labels, values, strict=True)}})
    return rows
