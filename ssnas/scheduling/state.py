"""Who runs a runs folder's queue, and with which settings.

- `runs/scheduler.lock`: the scheduler holds an exclusive `flock` on it for its whole life. A live
  lock is the one truth about whether a scheduler runs (the kernel drops it when the process dies,
  however it dies). Probing it takes the lock for an instant, so a starting scheduler retries for a
  moment before it concludes that another one holds it.
- `runs/scheduler.json`: the scheduler's pid, host and start time, and the folder's settings
  (`max_parallel`, `gpus`). Settings outlive schedulers: a submission that gives none keeps them.
  Every read and write holds a `flock` on the file itself, so a writer never loses another's change.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from ssnas.errors import ConfigError
from ssnas.scheduling.environment import detect_gpus

LOCK_FILE = "scheduler.lock"
STATE_FILE = "scheduler.json"
LOG_FILE = "scheduler.log"


@dataclass(frozen=True)
class Settings:
    """How a folder's queue runs locally (Ray runs are placed by Ray and count against neither)."""

    max_parallel: int | None = None  # local workers at once; None: one per GPU slot, or 1 on the CPU
    gpus: tuple[str, ...] | None = None  # GPU slots (CUDA_VISIBLE_DEVICES); None: every GPU found; (): the CPU

    def slots(self, found: Sequence[str]) -> list[str | None]:
        """One slot per GPU (of `gpus`, else of `found`); without GPUs, `max_parallel` CPU slots."""
        gpus = list(self.gpus if self.gpus is not None else found)
        return list(gpus) if gpus else [None] * (self.max_parallel or 1)

    def parallel(self, found: Sequence[str]) -> int:
        """Workers at once: `max_parallel`, at most one per slot."""
        slots = self.slots(found)
        return max(1, min(self.max_parallel or len(slots), len(slots)))

    def cpu_threads(self, found: Sequence[str], cores: int) -> int | None:
        """OMP threads of a CPU worker when several share the cores (None: the worker's own default)."""
        parallel = self.parallel(found)
        if self.slots(found)[0] is not None or parallel == 1:
            return None
        return max(1, cores // parallel)


@dataclass(frozen=True)
class SchedulerState:
    """What `scheduler.json` says, and whether its scheduler is alive now (it holds the lock)."""

    settings: Settings
    alive: bool = False
    pid: int | None = None
    host: str | None = None
    started_at: float | None = None
    parallel: int | None = None  # what the live scheduler applies: workers at once
    gpu_slots: tuple[str, ...] | None = None  # and its GPU slots (() on the CPU)


def parse_gpus(text: str | None) -> tuple[str, ...] | None:
    """`--gpus 0,1` as slots; "cpu" or "none" for the CPU only; None (not given) stays None.

    Anything else is refused, and so is a GPU that nvidia-smi does not list on this machine: a typo would
    otherwise run everything on the CPU, or on no device at all.
    """
    if text is None:
        return None
    if text.strip().lower() in ("cpu", "none"):
        return ()
    slots = tuple(g.strip() for g in text.split(","))
    bad = next((g for g in slots if not g.isdecimal() or not g.isascii()), None)
    if bad is not None:
        raise ConfigError(f"--gpus: {bad!r} is not a GPU index (give e.g. 0,1, or cpu)")
    present = detect_gpus()
    missing = [g for g in slots if str(int(g)) not in present]
    if missing:
        have = f"GPUs {', '.join(present)}" if present else "no GPU (nvidia-smi finds none)"
        raise ConfigError(f"--gpus: GPU {missing[0]} is not on this machine ({have})")
    return tuple(str(int(g)) for g in slots)


def check_max_parallel(value: int | None) -> None:
    """Workers at once are at least 1; None keeps the folder's setting."""
    if value is not None and value < 1:
        raise ConfigError(f"--max-parallel: {value} is not a number of workers (at least 1)")


# -- the state file ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _state_file(runs_dir: Path, write: bool) -> Iterator[IO[str] | None]:
    path = Path(runs_dir) / STATE_FILE
    try:
        file = open(path, "a+" if write else "r")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        yield None
        return
    with file:
        fcntl.flock(file, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
        file.seek(0)
        yield file


def _load(file: IO[str] | None) -> dict[str, Any]:
    if file is None:
        return {}
    try:
        data = json.loads(file.read() or "{}")
    except (ValueError, RecursionError):  # a broken or absurdly nested file reads as no state
        return {}
    return data if isinstance(data, dict) else {}


def _settings(data: dict[str, Any]) -> Settings:
    raw = data.get("settings")
    if not isinstance(raw, dict):
        raw = {}
    max_parallel = raw.get("max_parallel")
    gpus = raw.get("gpus")
    return Settings(max_parallel if isinstance(max_parallel, int) and max_parallel > 0 else None,
                    tuple(str(g) for g in gpus) if isinstance(gpus, list) else None)


def _edit(runs_dir: Path, change: dict[str, Any] | None = None, settings: dict[str, Any] | None = None) -> dict:
    """Read-modify-write of scheduler.json under its lock."""
    with _state_file(runs_dir, write=True) as file:
        assert file is not None
        data = _load(file)
        data.update(change or {})
        if settings:
            data["settings"] = {**asdict(_settings(data)), **settings}
            if data["settings"].get("gpus") is not None:
                data["settings"]["gpus"] = list(data["settings"]["gpus"])
        file.seek(0)
        file.truncate()
        file.write(json.dumps(data, indent=2) + "\n")
        file.flush()
        return data


def read_state(runs_dir: Path) -> SchedulerState:
    """The folder's scheduler (alive or not) and settings; never writes."""
    with _state_file(runs_dir, write=False) as file:
        data = _load(file)
    if not scheduler_alive(runs_dir) or not data.get("pid"):
        return SchedulerState(_settings(data))
    gpus = data.get("gpu_slots")
    return SchedulerState(_settings(data), True, data.get("pid"), data.get("host"), data.get("started_at"),
                          data.get("parallel"), tuple(gpus) if isinstance(gpus, list) else None)


def update_settings(runs_dir: Path, max_parallel: int | None = None, gpus: Sequence[str] | None = None) -> Settings:
    """Change the settings given (None leaves one as it is); returns them all."""
    check_max_parallel(max_parallel)
    changes: dict[str, Any] = {}
    if max_parallel is not None:
        changes["max_parallel"] = int(max_parallel)
    if gpus is not None:
        changes["gpus"] = list(gpus)
    if not changes:
        return read_settings(runs_dir)
    return _settings(_edit(runs_dir, settings=changes))


def read_settings(runs_dir: Path) -> Settings:
    with _state_file(runs_dir, write=False) as file:
        return _settings(_load(file))


def record_scheduler(runs_dir: Path, pid: int | None, host: str | None = None) -> None:
    """Say which process runs the queue now (None: none)."""
    _edit(runs_dir, {"pid": pid, "host": host, "started_at": time.time() if pid else None})


def record_applied(runs_dir: Path, parallel: int, gpu_slots: Sequence[str]) -> None:
    """Say what the live scheduler applies of the settings (every GPU found, when they name none)."""
    _edit(runs_dir, {"parallel": parallel, "gpu_slots": list(gpu_slots)})


# -- the lock ----------------------------------------------------------------------------------------


class FolderLock:
    """The exclusive lock a folder's scheduler holds for its life."""

    def __init__(self, runs_dir: Path) -> None:
        self.path = Path(runs_dir) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, patience: float = 1.0) -> bool:
        """Take the lock; False when another process holds it for longer than `patience` seconds (a probe
        holds it only for an instant)."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + patience
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return True
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    os.close(fd)
                    return False
            time.sleep(0.05)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def scheduler_alive(runs_dir: Path) -> bool:
    """Whether a process holds the folder's scheduler lock (a probe: takes and drops it when free)."""
    try:
        fd = os.open(Path(runs_dir) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if the probe took it
    return False

