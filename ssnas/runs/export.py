"""A run's genotype, metrics and resolved recipe written to a folder, for papers and other tools."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ssnas.errors import SsnasError
from ssnas.registry import Registry
from ssnas.run_record import Run
from ssnas.runs.lookup import run_folder, run_genotype

if TYPE_CHECKING:
    from ssnas.nas.genotype import Genotype

METRIC_CSV_COLUMNS = ("step", "epoch", "split", "key", "value", "wall_time")
WRITTEN = ("genotype.json", "metrics.csv", "config.json")  # all an export ever writes
LEFT_IN_PLACE = ("checkpoint.pt", "pretrained.pt")  # large; named, not copied


def export(registry: Registry, runs_dir: Path, run: Run, folder: Path, force: bool = False) -> list[str]:
    """Write genotype.json (when the run has one), metrics.csv and config.json; one line per file.

    A folder that holds anything is refused: two runs' files mixed in one folder would pass for one
    export. `force` replaces an earlier export, and only that: a folder with other files stays refused.
    """
    found = run_genotype(registry, runs_dir, run)
    if found.error:
        raise SsnasError(found.error)
    try:
        _clear(folder, force)
        folder.mkdir(parents=True, exist_ok=True)
        lines = _write(registry, run, found.genotype, folder)
    except OSError as error:
        raise SsnasError(f"{folder}: cannot write ({error.strerror or error})") from None
    source = run_folder(runs_dir, run)
    lines += [f"{source / name}  (in the run folder, not copied)" for name in LEFT_IN_PLACE
              if (source / name).is_file()]
    return lines


def _clear(folder: Path, force: bool) -> None:
    """Make way for an export: nothing to do for a missing or empty folder; an earlier export's files removed
    with `force`; anything else refused."""
    if not folder.is_dir():
        return
    there = sorted(path.name for path in folder.iterdir())
    if not there:
        return
    if not force:
        raise SsnasError(f"{folder}: not empty ({', '.join(there[:3])}{', ...' if len(there) > 3 else ''}); "
                         "--force replaces an earlier export")
    foreign = [name for name in there if name not in WRITTEN or not (folder / name).is_file()]
    if foreign:
        raise SsnasError(f"{folder}: holds {foreign[0]}, which no export writes; --force replaces only an "
                         "earlier export")
    for name in there:
        (folder / name).unlink()


def _write(registry: Registry, run: Run, genotype: Genotype | None, folder: Path) -> list[str]:
    lines = []
    if genotype is None:
        lines.append(f"(no genotype: run {run.short_id} has none yet)")
    else:
        genotype.save(folder / "genotype.json")
        lines.append(str(folder / "genotype.json"))
    with (folder / "metrics.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(METRIC_CSV_COLUMNS)
        for metric in registry.metrics(run.id):
            writer.writerow(["" if metric[c] is None else metric[c] for c in METRIC_CSV_COLUMNS])
    lines.append(str(folder / "metrics.csv"))
    (folder / "config.json").write_text(json.dumps(run.config, indent=2) + "\n")
    lines.append(str(folder / "config.json"))
    return lines
