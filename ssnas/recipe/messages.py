"""How a recipe's problems are named: one key, one problem, values and paths as the user wrote them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


class Invalid(Exception):
    """A problem with one key; validation turns it into a `RecipeError` naming the file that set the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def show(value: Any) -> str:
    """A value as the user wrote it, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def display(path: str) -> str:
    """A path relative to the working folder when it is inside it, else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
