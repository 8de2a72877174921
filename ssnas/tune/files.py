"""A study's files in the runs folder: `tune/NAME.journal` (Optuna's journal storage: appends under a file
lock, so it survives a killed tuner and a restart), `tune/NAME.json` (what the study optimizes, for readers
without optuna), `tune/NAME.lock` (held by the one tuner of the study) and `tune/NAME.out` (a detached
tuner's output)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ssnas.errors import SsnasError
from ssnas.recipe import Recipe

STUDY_NAME = re.compile(r"[A-Za-z0-9_.+-]+")  # goes into file names and the tag study:NAME


def check_study_name(name: str) -> str:
    if not STUDY_NAME.fullmatch(name) or name.startswith("."):
        raise SsnasError(f"study {name!r}: a study name is letters, digits, _, ., + and - (it names files and the "
                         "tag study:NAME)")
    return name


def study_name(recipe: Recipe, study: str | None) -> str:
    """The study's name: the one given, else the recipe's run name."""
    return check_study_name(study or recipe.run.name)


def study_file(runs_dir: Path, name: str, suffix: str) -> Path:
    return Path(runs_dir) / "tune" / f"{check_study_name(name)}{suffix}"


@dataclass(frozen=True)
class StudySpec:
    """What a study optimizes: written by its tuner, read by the report and a resumed tuner."""

    name: str
    recipe: str  # the recipe's path, absolute
    overrides: tuple[str, ...]  # --set overrides every trial was submitted with
    objective: str  # metric.dev.KEY
    direction: str
    keys: tuple[str, ...]  # the tuned keys

    def save(self, runs_dir: Path) -> None:
        path = study_file(runs_dir, self.name, ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(temporary, path)

    @classmethod
    def load(cls, runs_dir: Path, name: str) -> StudySpec | None:
        """The spec a tuner wrote, or None when there is none (or it does not read)."""
        try:
            d = json.loads(study_file(runs_dir, name, ".json").read_text())
            return cls(d["name"], d["recipe"], tuple(d["overrides"]), d["objective"], d["direction"], tuple(d["keys"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


@contextlib.contextmanager
def study_lock(runs_dir: Path, name: str) -> Iterator[None]:
    """Hold the study for one tuner: a second one would ask for trials the first is already running."""
    path = study_file(runs_dir, name, ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise SsnasError(f"study {name}: already being tuned by pid {holder} ({path} is locked)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
