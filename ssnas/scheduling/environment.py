"""What a submission records of this machine, and what the scheduler finds on it: git commit, host,
package versions, group ids, GPUs. Nothing here imports torch (it would cost seconds)."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

NVIDIA_SMI_TIMEOUT_S = 20.0  # a wedged driver can hang nvidia-smi: no GPUs rather than no answer


def detect_gpus() -> list[str]:
    """GPU indices on this machine, asked of nvidia-smi (importing torch here would cost seconds); none when
    nvidia-smi is missing, fails or hangs."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=NVIDIA_SMI_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def cpu_count() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def git_commit(path: Path) -> str | None:
    done = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def package_versions() -> dict[str, str]:
    """Versions recorded with every run (read from metadata: importing torch here would be slow)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("ssnas", "torch", "torchvision", "transformers"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            pass
    return versions


def new_group_id() -> str:
    return "g" + uuid.uuid4().hex[:11]


def host_name() -> str:
    return socket.gethostname()
