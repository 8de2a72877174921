"""The runs a shell offers for a RUN argument being typed: read-only, a few of them, newest first."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ssnas.registry_query import string_literal
from ssnas.run_record import Run

if TYPE_CHECKING:
    from ssnas.registry import Registry

OFFERED = 50  # a shell lists them all: more would only scroll


def run_completions(registry: Registry, typed: str, limit: int = OFFERED) -> list[Run]:
    """Runs whose id starts with `typed`; when none does, runs whose name does (their ids are offered, as a
    RUN argument takes ids only). Through the `--where` language, so `typed` stays a parameter."""
    pattern = string_literal(re.sub(r"[\\%_]", lambda match: "\\" + match.group(), typed) + "%")
    for field in ("id", "name"):
        found = registry.runs(where=f"{field} LIKE {pattern}", limit=limit)
        if found:
            return found
    return []
