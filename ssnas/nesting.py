"""How deeply a parsed document (JSON, TOML) nests, measured without recursion.

Code that walks a user's document recursively (merging, validating, printing it) would hit Python's
recursion limit on one nested a thousand levels deep; readers check the depth first and refuse such a
document in one line instead.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 32  # far more than any recipe or genotype needs


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` holds tables or lists more than `limit` levels inside each other (a scalar: 0 levels)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            inner = list(item.values())
        elif isinstance(item, (list, tuple)):
            inner = list(item)
        else:
            continue
        if depth == limit:
            return True
        stack.extend((child, depth + 1) for child in inner)
    return False
