"""A stored run config with `--set KEY=VALUE` overrides applied: what `ssnas rerun --set` runs.

The overrides are parsed and checked as `ssnas run --set` checks them, so an error names the override.
A rerun runs each run once, at its own stage: keys that would expand it into several runs (`sweep.`,
`arms.`) or change its stage (`run.stage`, `run.stages`) are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ssnas.errors import RecipeError
from ssnas.recipe.load import apply_override, recipe_from_dict
from ssnas.recipe.model import Recipe
from ssnas.recipe.validate import checked

FIXED_PREFIXES = ("sweep.", "arms.")
FIXED_KEYS = ("run.stage", "run.stages")


def with_overrides(config: Mapping[str, Any], overrides: Sequence[str], where: str) -> Recipe:
    """The recipe of `config` (`Recipe.to_dict`'s form) with `overrides` applied, checked with its files; `where`
    names the config in errors that no override caused."""
    tree = recipe_from_dict(config, where).to_dict()
    origins: dict[str, str] = {}
    for text in overrides:
        key = text.partition("=")[0].strip()
        if key.startswith(FIXED_PREFIXES) or key in FIXED_KEYS:
            raise RecipeError(f"--set {key}=...: a rerun runs each run once, at its own stage "
                              "(sweeps, arms and stages are for ssnas run)")
        apply_override(tree, origins, text)
    return checked(tree, origins, where, default_name=None, check_files=True)
