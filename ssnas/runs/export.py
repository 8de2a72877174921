"""A run's genotype, metrics and resolved recipe written to a folder, for papers and other tools."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ssnas.errors import SsnasError
from ssnas.registry import Registry
from ssnas.run_record import Run
from ssnas.runs.lookup import run_folder, run_genotype

METRIC_CSV_COLUMNS = ("step", "epoch", "split", "key", "value", "wall_time")
LEFT_IN_PLACE = ("checkpoint.pt", "pretrained.pt")  # large; named, not copied


def export(registry: Registry, runs_dir: Path, run: Run, folder: Path) -> list[str]:
    """Write genotype.json (when the run has one), metrics.csv and config.json; one line per file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lines = _write(registry, runs_dir, run, folder)
    except OSError as error:
        raise SsnasError(f"{folder}: cannot write ({error.strerror or error})") from None
    source = run_folder(runs_dir, run)
    lines += [f"{source / name}  (in the run folder, not copied)" for name in LEFT_IN_PLACE
              if (source / name).is_file()]
    return lines


def _write(registry: Registry, runs_dir: Path, run: Run, folder: Path) -> list[str]:
    lines = []
    found = run_genotype(registry, runs_dir, run)
    if found.error:
        raise SsnasError(found.error)
    if found.genotype is None:
        lines.append(f"(no genotype: run {run.short_id} has none yet)")
    else:
        found.genotype.save(folder / "genotype.json")
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
