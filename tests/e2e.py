"""Helpers for end-to-end tests: real `ssnas` subprocesses on a tiny recipe in a temporary folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RECIPES = Path(__file__).resolve().parent.parent / "recipes"

TINY = """\
extends = "{base}"

[run]
name = "tiny"
stage = "{stage}"
seed = 0

[data]
batch_size = 32

[data.synthetic]
train = 192
dev = 64
test = 64
image_channels = 8
image_side = 2
text_dims = [6, 10]
classes = 5

[space]
channels = 8
positions = 4

[search]
epochs = {epochs}
min_steps = 0

[pretrain]
epochs = 1
min_steps = 0

[finetune]
epochs = 2
min_steps = 0
mode = "full"
"""


def tiny_recipe(folder: Path, stage: str = "search", epochs: int = 2, extra: str = "") -> Path:
    path = folder / f"tiny_{stage}.toml"
    path.write_text(TINY.format(base=RECIPES / "base.toml", stage=stage, epochs=epochs) + extra)
    return path


def ssnas(runs: Path, *args: str, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "ssnas.cli", "--runs", str(runs), *args],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if check and done.returncode != 0:
        raise AssertionError(f"ssnas {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def runs_json(runs: Path, *args: str) -> list[dict]:
    return json.loads(ssnas(runs, "runs", "--json", "--limit", "1000", *args, check=True).stdout)


def registry_rows(runs: Path) -> list:
    """The folder's runs, oldest first ([] while its registry is not there yet)."""
    import sqlite3

    from ssnas.errors import SsnasError
    from ssnas.registry import Registry

    try:
        with Registry(runs / "registry.db", create=False, readonly=True) as registry:
            return registry.runs(sort="created_at")
    except (SsnasError, sqlite3.Error):
        return []


def running_with_steps(runs: Path, run_id: str, steps: int):
    """A `wait_for` condition: the run, once it is running and has logged `steps` losses."""
    from ssnas.registry import Registry

    def check():
        with Registry(runs / "registry.db", create=False, readonly=True) as registry:
            run = registry.get_run(run_id)
            return run if run.status == "running" and len(registry.metrics(run_id, key="loss")) >= steps else None
    return check


def all_ended(runs: Path, count: int):
    """A `wait_for` condition: the folder's runs, once there are `count` and every one has ended."""
    def check():
        now = registry_rows(runs)
        return now if len(now) == count and all(r.terminal for r in now) else None
    return check


def wait_for(condition, timeout: float = 120, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


def scheduler_pid(runs: Path) -> int | None:
    """The pid of the runs folder's live scheduler, or None when none holds its lock."""
    from ssnas.scheduling.state import read_state

    return read_state(runs).pid


def stop_schedulers(folder: Path) -> list[int]:
    """Kill what tests started under `folder`: every scheduler process of a runs folder there, and every
    worker and fork server of one (found by the `--runs` folder on their command line). Returns the pids killed."""
    root = str(Path(folder).resolve())
    found: list[tuple[int, bool]] = []  # (pid, is the scheduler)
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = [a.decode(errors="replace") for a in cmdline.read_bytes().split(b"\0")]
        except OSError:
            continue
        if "--runs" not in argv or argv.index("--runs") + 1 >= len(argv):
            continue
        runs = argv[argv.index("--runs") + 1]
        ours = runs == root or runs.startswith(root + os.sep) or str(Path(runs).resolve()).startswith(root + os.sep)
        # a fork server's workers have its command line (ssnas.scheduling.warm)
        module = next((a for a in argv if a in ("ssnas.scheduling.daemon", "ssnas.worker", "ssnas.forkserver")), None)
        if ours and module is not None and int(cmdline.parent.name) != os.getpid():
            found.append((int(cmdline.parent.name), module == "ssnas.scheduling.daemon"))
    killed = []
    for pid, _ in sorted(found, key=lambda item: not item[1]):  # schedulers first: they start no more workers
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    return killed
