"""The foreground view of `ssnas run`: a live progress line per launch and status changes as lines.

It reads the registry (what the workers wrote), like every other reader; on a terminal the live
line redraws in place, into a file or pipe it is written at each tenth of a stage.
"""

from __future__ import annotations

import sys
from typing import TextIO

from ssnas.registry import Registry


class LaunchView:
    def __init__(self, registry: Registry, run_ids: list[str], stream: TextIO = sys.stderr) -> None:
        self.registry = registry
        self.run_ids = run_ids
        self.stream = stream
        self.interactive = stream.isatty()
        self.statuses: dict[str, str] = {}
        self.tenths: dict[str, int] = {}
        self.width = 0

    def _loss(self, run_id: str) -> float | None:
        rows = self.registry.metrics(run_id, key="loss", split="train", after=0)[-1:]
        return rows[0]["value"] if rows else None

    def _clear(self) -> None:
        if self.interactive and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.width = 0

    def tick(self) -> None:
        live = []
        for index, run_id in enumerate(self.run_ids, start=1):
            run = self.registry.get_run(run_id)
            status = run["status"]
            if self.statuses.get(run_id) != status:
                self.statuses[run_id] = status
                if status != "queued":
                    self._clear()
                    detail = f": {run['error']}" if run.get("error") and status != "finished" else ""
                    self.stream.write(f"[{index}/{len(self.run_ids)}] {run_id[:8]} {run['name']} {status}{detail}\n")
            if status == "running":
                progress = run.get("progress") or 0.0
                loss = self._loss(run_id)
                bar = "#" * int(20 * progress) + "." * (20 - int(20 * progress))
                line = f"{run_id[:8]} {run['stage']:<8} [{bar}] {100 * progress:3.0f}%" + (
                    f" loss {loss:.4f}" if loss is not None else "")
                live.append(line)
                tenth = int(10 * progress)
                if not self.interactive and tenth > self.tenths.get(run_id, 0):
                    self.tenths[run_id] = tenth
                    self.stream.write(line + "\n")
        if self.interactive:
            text = "  |  ".join(live)
            self.stream.write("\r" + text.ljust(self.width))
            self.width = len(text)
        self.stream.flush()

    def close(self) -> None:
        self._clear()
        self.stream.flush()
