"""What a SLURM run asks for (`--slurm KEY=VALUE`, stored with the run), and where its job's files go.

Torch-free and submitit-free: the command line parses and checks the settings before anything is
queued; the executor (slurm_executor.py) turns them into submitit's parameters. A run keeps the
settings it was submitted with (in `runs.ray_options`, the column of the run's executor's options),
so the folder's scheduler submits it as asked, and `ssnas resume` / `rerun` submit it the same way
unless told otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ssnas.errors import ClusterError

INSTALL_HINT = "submitit is not installed: pip install -e '.[slurm]'"
CLUSTERS = ("slurm", "local")  # local: submitit's jobs as processes of this machine (tries the path without SLURM)
DEFAULT_TIME_MIN = 24 * 60
DEFAULT_FOLDER = Path("~/.ssnas/slurm")
OWN_KEYS = ("partition", "time", "gpus", "cpus", "mem", "account", "folder", "cluster")
SBATCH_NAME = re.compile(r"[a-z][a-z0-9-]*")
MEMORY = re.compile(r"\d+[KMGT]?", re.IGNORECASE)
TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")


def import_submitit() -> ModuleType:
    """submitit, or a one-line error saying how to install it."""
    try:
        import submitit
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
    return submitit


@dataclass(frozen=True)
class SlurmOptions:
    """A SLURM run's job settings; None is "not given" (the default, or the run's stored setting on resume)."""

    partition: str | None = None
    time: int | None = None  # minutes (--time)
    gpus: int | None = None  # per run; default: 1 when run.device is cuda, else none
    cpus: int | None = None  # per run (its worker's threads); default 1
    mem: str | None = None  # as sbatch takes it: 16G, 4000M
    account: str | None = None
    folder: str | None = None  # the job folder's base, shared with the compute nodes (absolute)
    cluster: str | None = None  # "slurm" (default) or "local"
    sbatch: dict[str, str] = field(default_factory=dict)  # any other sbatch option, e.g. {"qos": "high"}

    def merged(self, given: SlurmOptions) -> SlurmOptions:
        """These settings with the ones `given` sets in their place (its sbatch options added)."""
        changes: dict[str, Any] = {f.name: getattr(given, f.name) for f in dataclasses.fields(given)
                                   if f.name != "sbatch" and getattr(given, f.name) is not None}
        return dataclasses.replace(self, **changes, sbatch={**self.sbatch, **given.sbatch})

    def to_json(self) -> str:
        """As stored with each SLURM run, for the runs folder's scheduler."""
        return json.dumps({k: v for k, v in dataclasses.asdict(self).items() if v not in (None, {})})

    @classmethod
    def from_json(cls, text: str | None) -> SlurmOptions:
        """Settings stored by `to_json`; the defaults for a run stored without them (or with broken ones)."""
        try:
            data = json.loads(text) if text else {}
            return parse_settings([f"{key}={value}" for key, value in data.items() if key != "sbatch"]).merged(
                cls(sbatch={str(k): str(v) for k, v in (data.get("sbatch") or {}).items()}))
        except (ValueError, TypeError, AttributeError, ClusterError):
            return cls()

    @property
    def cluster_name(self) -> str:
        return self.cluster or "slurm"

    def gpus_for(self, device: str) -> int:
        """GPUs a run on `device` asks for: as set, else one for a CUDA device (auto takes none: say gpus=N)."""
        return self.gpus if self.gpus is not None else int(device.startswith("cuda"))

    def job_folder(self, runs_dir: Path) -> Path:
        """This runs folder's job folder: under `folder` (default ~/.ssnas/slurm), one per runs folder and host."""
        from ssnas.cluster.head import head_name

        return Path(self.folder or DEFAULT_FOLDER).expanduser() / head_name(runs_dir)


def parse_settings(pairs: Sequence[str]) -> SlurmOptions:
    """`KEY=VALUE` pairs (`--slurm partition=gpu`) as settings; a bad one is a ClusterError naming it."""
    own: dict[str, Any] = {}
    sbatch: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = (part.strip() for part in pair.partition("="))
        key = key.lower().removeprefix("--")
        if not equals or not key or not value:
            raise ClusterError(f"--slurm {pair}: expected KEY=VALUE, e.g. partition=gpu")
        if key in OWN_KEYS:
            own[key] = _checked(key, value, pair)
        elif SBATCH_NAME.fullmatch(key):
            sbatch[key] = value
        else:
            raise ClusterError(f"--slurm {pair}: {key!r} is not an sbatch option name")
    return SlurmOptions(**own, sbatch=sbatch)


def _checked(key: str, value: str, pair: str) -> Any:
    """One of ssnas's own settings, converted (or a ClusterError saying what was expected)."""
    if key in ("gpus", "cpus"):
        least = 0 if key == "gpus" else 1
        if not value.isdigit() or int(value) < least:
            raise ClusterError(f"--slurm {pair}: expected a whole number of at least {least}")
        return int(value)
    if key == "time":
        return _minutes(value, pair)
    if key == "mem" and not MEMORY.fullmatch(value):
        raise ClusterError(f"--slurm {pair}: expected a size as sbatch --mem takes it, e.g. 16G")
    if key == "cluster" and value not in CLUSTERS:
        raise ClusterError(f"--slurm {pair}: expected one of {', '.join(CLUSTERS)}")
    if key == "folder":
        return str(Path(value).expanduser().resolve())
    return value


def _minutes(value: str, pair: str) -> int:
    """sbatch's --time forms (MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) in whole minutes, rounded up."""
    match = TIME.fullmatch(value)
    if match is None:
        raise ClusterError(f"--slurm {pair}: expected a time as sbatch --time takes it, e.g. 90 or 8:00:00")
    days, first, second, third = (int(part) if part else 0 for part in match.groups())
    if match.group(1) is not None:  # D-HH[:MM[:SS]]
        seconds = ((days * 24 + first) * 60 + second) * 60 + third
    elif match.group(4) is not None:  # HH:MM:SS
        seconds = (first * 60 + second) * 60 + third
    else:  # MINUTES[:SS]
        seconds = first * 60 + second
    if seconds <= 0:
        raise ClusterError(f"--slurm {pair}: the time must be more than 0")
    return -(-seconds // 60)


def check_submission(options: SlurmOptions) -> None:
    """What can be checked on this machine before runs are queued: submitit installed, and SLURM's commands here
    when the jobs go to SLURM (ssnas runs on a login node)."""
    import_submitit()
    missing = [command for command in ("sbatch", "srun") if shutil.which(command) is None]
    if options.cluster_name == "slurm" and missing:
        raise ClusterError(f"no {missing[0]} on this machine: run ssnas on a login node of the SLURM cluster "
                           "(or --slurm cluster=local to run the jobs here)")
