"""Runs side by side: a row per field with a column per run, and the config keys that differ; the same as
plain values for programs (`Comparison.to_dict`, `ssnas compare --json`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssnas.errors import SsnasError
from ssnas.registry import Registry
from ssnas.run_record import Run
from ssnas.runs.format import duration, elapsed_seconds, flatten, number, plain, short_ids, status_text
from ssnas.runs.lookup import GenotypeFound, run_genotype, test_scores

CONFIG_COLUMN = "config that differs"


@dataclass(frozen=True)
class Comparison:
    """What `ssnas compare` prints and the dashboard's compare screen draws, and the values behind it."""

    runs: list[Run]
    labels: list[str]  # the shortest id prefixes that tell the runs apart
    summary: list[dict[str, str]]  # per field: {"": field, label: value, ...}
    config: list[dict[str, str]]  # per differing key: {CONFIG_COLUMN: key, label: value, ...}
    genotypes: list[GenotypeFound]
    tests: list[dict[str, float]]  # per run: the last value of each test metric
    similarities: list[float | None]  # per run: its genotype's similarity to the first run's
    differing: list[str]  # the flattened config keys whose values are not the same in every run

    def to_dict(self) -> dict[str, Any]:
        """Plain values for programs: per run its fields, test metrics, similarity and differing config
        values (a key its recipe lacks left out), and the differing keys."""
        runs = []
        for run, label, tests, similarity, found in zip(self.runs, self.labels, self.tests, self.similarities,
                                                        self.genotypes, strict=True):
            flat = flatten(run.config or {})
            runs.append({
                "id": run.id, "label": label, "name": run.name, "stage": run.stage, "status": run.status,
                "elapsed_s": elapsed_seconds(run), "test": tests, "best_f1": run.best_f1,
                "latest_loss": run.latest_loss, "genotype_similarity": similarity, "genotype_error": found.error,
                "config": {key: flat[key] for key in self.differing if key in flat},
            })
        return {"runs": runs, "config_differs": self.differing}


def compare(registry: Registry, runs_dir: Path, runs: Sequence[Run]) -> Comparison:
    if len(runs) < 2:
        raise SsnasError("compare needs at least two runs")
    labels = short_ids([r.id for r in runs])
    if len(set(labels)) < len(labels):
        raise SsnasError("the same run is named twice")
    genotypes = [run_genotype(registry, runs_dir, r) for r in runs]
    tests = [test_scores(registry, r) for r in runs]
    similarities = genotype_similarities(genotypes)
    differing = differing_keys(runs)
    summary = summary_rows(runs, labels, tests, similarities, genotypes)
    return Comparison(list(runs), labels, summary, config_difference_rows(runs, labels, differing), genotypes,
                      tests, similarities, differing)


def genotype_similarities(genotypes: Sequence[GenotypeFound]) -> list[float | None]:
    """Each genotype's similarity to the first (None where either is missing or broken)."""
    from ssnas.nas.genotype import diff

    first = genotypes[0].genotype
    return [None if found.genotype is None or first is None else diff(first, found.genotype).similarity
            for found in genotypes]


def summary_rows(runs: Sequence[Run], labels: Sequence[str], tests: Sequence[dict[str, float]],
                 similarities: Sequence[float | None], genotypes: Sequence[GenotypeFound]) -> list[dict[str, str]]:
    """Status, duration, final metrics and genotype similarity to the first run."""
    test_keys = list(dict.fromkeys(k for values in tests for k in values))

    def row(field: str, values: Iterable[str]) -> dict[str, str]:
        return {"": field, **dict(zip(labels, values, strict=True))}

    return [
        row("name", [r.name for r in runs]),
        row("stage", [r.stage for r in runs]),
        row("status", [status_text(r.status) for r in runs]),
        row("duration", [duration(elapsed_seconds(r)) for r in runs]),
        *[row(f"test {key}", [number(values.get(key), ".4f") for values in tests]) for key in test_keys],
        row("best dev F1", [number(r.best_f1, ".4f") for r in runs]),
        row("last loss", [number(r.latest_loss) for r in runs]),
        row("genotype similarity", ["broken" if found.error else number(similarity, ".2f")
                                    for similarity, found in zip(similarities, genotypes, strict=True)]),
    ]


def differing_keys(runs: Sequence[Run]) -> list[str]:
    """The flattened config keys whose values (or presence) are not the same in every run."""
    flats = [flatten(r.config or {}) for r in runs]
    missing = object()
    keys = dict.fromkeys(k for flat in flats for k in flat)
    return [key for key in keys if any(flat.get(key, missing) != flats[0].get(key, missing) for flat in flats[1:])]


def config_difference_rows(runs: Sequence[Run], labels: Sequence[str], keys: Sequence[str]) -> list[dict[str, Any]]:
    """The differing config keys, a row each: the value per run, `-` where its recipe lacks the key."""
    flats = [flatten(r.config or {}) for r in runs]
    return [{CONFIG_COLUMN: key, **{label: plain(flat[key]) if key in flat else "-"
                                   for label, flat in zip(labels, flats, strict=True)}} for key in keys]
