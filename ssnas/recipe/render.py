"""A resolved recipe as TOML, for `ssnas recipe show`: every default written out, unset optional keys as
comments, so that the output loads back as the same recipe."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ssnas.recipe.model import Recipe
from ssnas.recipe.schema import CONFIG_SECTIONS


def format_recipe(recipe: Recipe) -> str:
    """The resolved recipe as TOML (unset optional keys as comments), for `ssnas recipe show`."""
    d = recipe.to_dict()
    tables: list[tuple[str, dict[str, Any]]] = [("run", d["run"])]
    data = d["data"]
    tables.append(("data", {k: v for k, v in data.items() if not isinstance(v, dict)}))
    tables += [(f"data.{k}", v) for k, v in data.items() if isinstance(v, dict)]
    tables += [(name, d[name]) for name in CONFIG_SECTIONS]
    if d["sweep"]:
        tables.append(("sweep", d["sweep"]))
    tables += [(f"arms.{_toml_key(name)}", overrides) for name, overrides in d["arms"].items()]
    if recipe.tune is not None:
        tune = recipe.tune.to_dict()
        tables += [("tune", {k: v for k, v in tune.items() if k != "space"}), ("tune.space", tune["space"])]
    lines = [f"# {recipe.path}, resolved: every default filled in, paths absolute"]
    for name, values in tables:
        lines += ["", f"[{name}]"]
        for key, value in values.items():
            if value is None:
                lines.append(f"# {_toml_key(key)} is not set")
            else:
                lines.append(f"{_toml_key(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_value(value: Any) -> str:
    """A value in TOML syntax: what `--set KEY=...` reads back as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {value!r}")
