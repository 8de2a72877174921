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

    A search logs its genotype per epoch (its last one wins); a pretrain or finetune run trains the one in its
    genotype.json (what it logged is read only when the file is gone). A broken genotype is a message, never
    an exception.
    """
    from ssnas.errors import SsnasError
    from ssnas.nas.genotype import Genotype

    try:
        path = run_folder(runs_dir, run) / GENOTYPE_FILE
        if run.stage != "search" and path.is_file():  # the network it trained, not a search's epoch
            return GenotypeFound(Genotype.load(path), str(path), brief=f"run {run.short_id}, {GENOTYPE_FILE}")
        row = registry.latest_genotype(run.id)
        if row is not None:
            genotype = Genotype.from_json(row["genotype"], where=f"run {run.short_id} epoch {row['epoch']}")
            if run.stage != "search":
                return GenotypeFound(genotype, "as the run logged it", brief=f"run {run.short_id}")
            brief = f"run {run.short_id}, epoch {row['epoch']}"
            return GenotypeFound(genotype, f"epoch {row['epoch']}, step {row['step']}", brief=brief)
        if path.is_file():
            return GenotypeFound(Genotype.load(path), str(path), brief=f"run {run.short_id}, {GENOTYPE_FILE}")
        return GenotypeFound(None, f"run {run.short_id}", brief=f"run {run.short_id}")
    except (SsnasError, OSError, ValueError) as error:
        return GenotypeFound(None, f"run {run.short_id}", str(error), brief=f"run {run.short_id}")


def test_scores(registry: Registry, run: Run) -> dict[str, float]:
    """The run's test metrics, last value per key, with the decision threshold they were scored at: the
    fine-tuning chose it on dev (and logged it there), the test split was scored once with it."""
    scores: dict[str, float] = {}
    for row in registry.metrics(run.id, split="test"):
        scores[row["key"]] = row["value"]
    if scores and "threshold" not in scores:
        chosen = registry.metrics(run.id, key="threshold", split="dev")
        if chosen:
            scores["threshold"] = chosen[-1]["value"]
    return scores
