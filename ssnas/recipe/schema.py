"""Which keys a recipe has, read from the dataclasses behind its sections: no field is listed twice.

A section's keys are the fields of its dataclass (their type hints say what each takes, `kinds.py`);
`[search]`, `[pretrain]` and `[finetune]` leave out the keys `[data]` holds for every stage.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ssnas.config.stages import FinetuneConfig, PretrainConfig, SearchConfig
from ssnas.config.views import ViewConfig
from ssnas.nas.space import SpaceConfig
from ssnas.recipe.kinds import Kind, kind_of
from ssnas.recipe.model import DATA_TABLES, SHARED_KEYS, DataSection, RunSection


@dataclass(frozen=True)
class Key:
    """One key of a section: its name, what it takes, and its field's default (None: none)."""

    name: str
    kind: Kind
    default: Any


def keys_of(cls: type, without: Sequence[str] = ()) -> tuple[Key, ...]:
    """The keys of a dataclass's fields, in field order; fields with a `table` in their metadata are
    subtables, not keys."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return tuple(Key(f.name, kind_of(hints[f.name]), _default(f))
                 for f in dataclasses.fields(cls) if f.name not in without and "table" not in f.metadata)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


# The config dataclass behind each section the recipe holds as a dict, in the order they are checked.
CONFIG_SECTIONS: dict[str, type] = {
    "space": SpaceConfig,
    "search": SearchConfig,
    "views": ViewConfig,
    "pretrain": PretrainConfig,
    "finetune": FinetuneConfig,
}
SECTIONS: dict[str, tuple[Key, ...]] = {
    "run": keys_of(RunSection),
    "data": keys_of(DataSection),
    **{name: keys_of(cls, without=SHARED_KEYS) for name, cls in CONFIG_SECTIONS.items()},
}
SUBTABLES: dict[str, tuple[Key, ...]] = {f"data.{name}": keys_of(cls) for name, cls in DATA_TABLES.items()}
TOP_LEVEL: tuple[str, ...] = (*SECTIONS, "sweep", "arms", "tune")

# Every settable key, dotted, with its kind: what --set, [sweep] and [arms] may name.
LEAVES: dict[str, Kind] = {
    f"{table}.{key.name}": key.kind
    for table, keys in (*SECTIONS.items(), *SUBTABLES.items())
    for key in keys
}
SWEEP_ALIASES: dict[str, str] = {"label_ratio": "data.label_ratio", "seed": "run.seed"}
UNSWEPT: tuple[str, ...] = ("run.name", "run.stage", "run.stages", "run.executor")
UNARMED: tuple[str, ...] = ("run.name",)  # an arm's runs are named after the recipe and the arm
ARM_NAME = re.compile(r"[A-Za-z0-9_+-]+")  # goes into run names and the tag arm:NAME

# Problems that deserve more than "unknown key".
HINTS: dict[str, str] = {
    **{f"{s}.{k}": f"set data.{k} instead (one value feeds every stage)"
       for s in ("search", "pretrain", "finetune") for k in SHARED_KEYS},
    "space.C": "unknown key (did you mean channels?)",
    "space.L": "unknown key (did you mean positions?)",
    "data.features": "a features file takes no options",
    "finetune.freeze_encoder": "unknown key (replaced by finetune.mode = \"probe\", \"full\" or \"auto\")",
}


def unknown(dotted: str, name: str, known: Sequence[str], what: str) -> str:
    """The problem with an unknown key or section: a hint, the closest known name, or all of them."""
    if dotted in HINTS:
        return HINTS[dotted]
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"unknown {what} (did you mean {close[0]}?)" if close else f"unknown {what} (known: {', '.join(known)})"
