"""A run's files between the scratch folder of a Ray node and the head's `runs/RUN_ID/`.

A worker on a Ray node writes into a scratch folder; its Ray task ships what changed to the head
after every flush and checkpoint and before the run ends, so that checkpoints, TensorBoard event
files, genotypes, results and the log are under the head's run folder as the run goes. The log and
event files only grow, so they ship their new bytes; every other file ships whole and replaces the
head's copy atomically. Before the stage starts, what it reads is fetched the same way: its own
checkpoint and log (a resumed run goes on from them) and its parent's outputs.

No Ray here: the moves are given as functions (`send`, `read`), which node.py binds to the head.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

RUN_INPUTS = ("checkpoint.pt", "log.txt")  # checkpoint: ssnas.tracking.CHECKPOINT
PARENT_OUTPUTS = ("genotype.json", "pretrained.pt")  # ssnas.execution.GENOTYPE_FILE, PRETRAINED_FILE
UNFINISHED = (".tmp", ".part")  # files still being written (a checkpoint before its rename)

Send = Callable[[str, bytes, int | None], None]  # (name, data, offset: None replaces the file)


def grows(name: str) -> bool:
    """Whether a run file is only ever appended to: the log and TensorBoard event files."""
    return name == "log.txt" or name.startswith("tb/")


def checked_name(name: str) -> str:
    """`name` as a path inside a run folder, or ValueError (a shipped name must not climb out)."""
    path = PurePosixPath(name)
    if not path.parts or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{name!r} is not a path inside a run folder")
    return path.as_posix()


def store(run_dir: Path, name: str, data: bytes, offset: int | None) -> None:
    """Head side: write shipped bytes into the run folder, at `offset`, or as the whole file."""
    target = Path(run_dir) / checked_name(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    if offset is None:
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        os.replace(partial, target)
        return
    with open(target, "r+b" if target.exists() else "wb") as file:
        file.seek(offset)
        file.write(data)
        file.truncate()


def read(run_dir: Path, name: str) -> bytes | None:
    """Head side: a run file's bytes, or None when it has none of that name."""
    path = Path(run_dir) / checked_name(name)
    return path.read_bytes() if path.is_file() else None


def fetch(read_remote: Callable[[str], bytes | None], names: Iterable[str], folder: Path) -> None:
    """Node side: copy the named files that exist on the head into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        data = read_remote(name)
        if data is not None:
            (folder / checked_name(name)).write_bytes(data)


class Shipment:
    """Node side: what of a scratch run folder the head has, and sending it the rest."""

    def __init__(self, folder: Path, send: Send) -> None:
        self.folder = Path(folder)
        self.send = send
        self._sent: dict[str, tuple[int, int]] = {}  # name -> (bytes the head has, mtime shipped)

    def mark_present(self) -> None:
        """Count the files in the folder now as on the head already (they were fetched from it)."""
        for name, path in self._files():
            stat = path.stat()
            self._sent[name] = (stat.st_size, stat.st_mtime_ns)

    def ship(self) -> None:
        """Send every file that changed since it was last sent."""
        for name, path in self._files():
            stat = path.stat()
            sent = self._sent.get(name)
            if sent == (stat.st_size, stat.st_mtime_ns):
                continue
            offset = sent[0] if grows(name) and sent is not None and stat.st_size >= sent[0] else 0
            with open(path, "rb") as file:
                file.seek(offset)
                data = file.read()
            self.send(name, data, offset if grows(name) else None)
            self._sent[name] = (offset + len(data), stat.st_mtime_ns)

    def _files(self) -> list[tuple[str, Path]]:
        if not self.folder.is_dir():
            return []
        return [(path.relative_to(self.folder).as_posix(), path) for path in sorted(self.folder.rglob("*"))
                if path.is_file() and path.suffix not in UNFINISHED]
