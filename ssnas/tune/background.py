"""`ssnas tune --detach`: the same tuner in a session of its own, so that closing the terminal stops nothing;
its output goes to `RUNS/tune/STUDY.out`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ssnas.tune.files import study_file


def start_detached(runs_dir: Path, study: str, tune_args: Sequence[str]) -> tuple[int, Path]:
    """Start `ssnas --runs RUNS tune TUNE_ARGS` in the background; (its pid, its output file)."""
    out = study_file(runs_dir, study, ".out")
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ssnas.cli", "--runs", str(Path(runs_dir).resolve()), "tune", *tune_args]
    with open(out, "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return process.pid, out
