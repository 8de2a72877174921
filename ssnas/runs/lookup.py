"""Where a run's files are, and which genotype a run has: the one lookup every front end uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ssnas.run_record import Run

if TYPE_CHECKING:
    from ssnas.nas.genotype import Genotype
    from ssnas.registry import Registry

GENOTYPE_FILE = "genotype.json"


def run_folder(runs_dir: Path, run: Run) -> Path:
    """Where the registry says, else runs_dir/RUN_ID: the first that exists (the recorded one when neither).

    A runs folder that was moved or copied keeps working: its registry still names the old paths.
    """
    candidates = [Path(run.run_dir)] if run.run_dir else []
    candidates.append(Path(runs_dir) / run.id)
    return next((path for path in candidates if path.is_dir()), candidates[0])


@dataclass(frozen=True)
class GenotypeFound:
    """A run's genotype and where it came from (`where`), or why there is none (`error` for a broken one)."""

    genotype: Genotype | None
    where: str  # in full: "epoch 3, step 40" or the genotype.json path
    error: str | None = None
    brief: str = ""  # for a narrow screen: "run 3f2a9c01, epoch 3" or "run 3f2a9c01, genotype.json"


def run_genotype(registry: Registry, runs_dir: Path, run: Run) -> GenotypeFound:
    """The genotype a run has: a search's last logged one, else the genotype.json in its folder.

    A search logs its genotype per epoch; pretrain and finetune runs (and a search before its
    first epoch ends) have only the file. A broken genotype is a message, never an exception.
    """
    from ssnas.errors import SsnasError
    from ssnas.nas.genotype import Genotype

    try:
        row = registry.latest_genotype(run.id)
        if row is not None:
            genotype = Genotype.from_json(row["genotype"], where=f"run {run.short_id} epoch {row['epoch']}")
            brief = f"run {run.short_id}, epoch {row['epoch']}"
            return GenotypeFound(genotype, f"epoch {row['epoch']}, step {row['step']}", brief=brief)
        path = run_folder(runs_dir, run) / GENOTYPE_FILE
        if path.is_file():
            return GenotypeFound(Genotype.load(path), str(path), brief=f"run {run.short_id}, {GENOTYPE_FILE}")
        return GenotypeFound(None, f"run {run.short_id}", brief=f"run {run.short_id}")
    except (SsnasError, OSError, ValueError) as error:
        return GenotypeFound(None, f"run {run.short_id}", str(error), brief=f"run {run.short_id}")
