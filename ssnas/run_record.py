"""The typed run record every front end shares: one row of the registry's `runs` table, decoded.

Torch-free and import-light: the registry builds these, the run service, the CLI and the dashboard
read them. The record is a snapshot (frozen); a newer state comes from the registry again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

STAGES = ("search", "pretrain", "finetune")
STATUSES = ("queued", "running", "finished", "failed", "killed", "lost")
TERMINAL = ("finished", "failed", "killed", "lost")
ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class Run:
    """A run: its columns, its summaries (latest_loss, best_f1, test_f1) and what could not be decoded.

    `config` is None when the listing left it out (it is most of a row's decoding cost) or when the
    stored JSON is corrupt; `corrupt` names the columns that were.
    """

    id: str
    name: str
    stage: str
    status: str
    created_at: float
    config: dict[str, Any] | None = None
    parent_id: str | None = None
    group_id: str | None = None
    recipe_path: str | None = None
    objective: str | None = None
    dataset: str | None = None
    label_ratio: float | None = None
    seed: int | None = None
    device: str | None = None
    executor: str = "local"
    node: str | None = None
    pid: int | None = None
    host: str | None = None
    git_commit: str | None = None
    versions: dict[str, str] | None = None
    started_at: float | None = None
    ended_at: float | None = None
    heartbeat_at: float | None = None
    progress: float | None = None
    error: str | None = None
    run_dir: str | None = None
    tags: list[str] = field(default_factory=list)
    revision: int = 0
    ray_options: str | None = None  # its executor's options as JSON: RayOptions (ray) or SlurmOptions (slurm)
    worked_seconds: float | None = None  # what its ended attempts worked (started_at, ended_at: the last one's)
    latest_loss: float | None = None
    best_f1: float | None = None
    test_f1: float | None = None
    children: int = 0  # runs started from this one: several for a stage shared between chains
    corrupt: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Run:
        """A record from a decoded row; columns this version does not know (a newer schema) are dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        """Every field, for JSON output (the config included when it was read)."""
        return dataclasses.asdict(self)

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def setting(self, dotted: str, default: Any = None) -> Any:
        """A value of the resolved config by its recipe path (`run.device`, `search.epochs`)."""
        node: Any = self.config or {}
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def with_changes(self, **changes: Any) -> Run:
        return dataclasses.replace(self, **changes)

    # -- read access by column name, for code that picks columns by name (tables, sorting)

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)
