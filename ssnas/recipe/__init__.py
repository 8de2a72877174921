"""TOML recipes -> one validated, fully defaulted description of a run (DESIGN.md 5; docs/recipes.md).

A recipe is read in three steps (`load.py`): the `extends` chain of files is merged (child wins, tables
merge, lists replace) with every relative path resolved against the file that wrote it; `--set
KEY=VALUE` overrides are applied; the merged tree is checked key by key (`validate.py`, `rules.py`) and
becomes a `Recipe` (`model.py`) whose section dicts hold every value, defaulted, as plain JSON types.
That dict form (`Recipe.to_dict`) is what the registry stores and the worker rebuilds with
`recipe_from_dict`; `format_recipe` (`render.py`) writes it back as TOML.

A recipe may name `[arms.NAME]` (variants of itself: dotted keys -> values, e.g. a supervised search
beside the self-supervised one) and a `[sweep]` (lists whose product expands into sibling runs);
`expand_sweep` (`load.py`, over `expand.py`'s points) turns it into one plain recipe per arm x sweep point,
every one checked at load.

The keys are not listed here: each section's are the fields of a torch-free dataclass (`ssnas.config`,
`SpaceConfig`, `RunSection`, `DataSection`), read with their type hints (`schema.py`, `kinds.py`) and
checked by building the dataclass. So no torch, even indirectly: `ssnas recipe show` and `ssnas run`
validate recipes before anything heavy is imported. Every error is a `RecipeError` of one line:
`FILE: KEY: PROBLEM`, where FILE is the file (or `--set ...` override) that set the key.
"""

from ssnas.recipe.expand import ARM_TAG, arm_of, pipeline_stages, point_label, run_points
from ssnas.recipe.load import expand_sweep, load_recipe, recipe_from_dict
from ssnas.recipe.model import STAGES, DataSection, Recipe, RunSection
from ssnas.recipe.render import format_recipe
from ssnas.recipe.schema import LEAVES

__all__ = [
    "ARM_TAG",
    "LEAVES",
    "STAGES",
    "DataSection",
    "Recipe",
    "RunSection",
    "arm_of",
    "expand_sweep",
    "format_recipe",
    "load_recipe",
    "pipeline_stages",
    "point_label",
    "recipe_from_dict",
    "run_points",
]
