"""Every setting of a run as a frozen dataclass, in modules that import no torch (DESIGN.md 9).

The recipe validator (`ssnas.recipe`) reads their fields and type hints and builds them directly, so
a field added here is a recipe key with no other change; the range checks in their `__post_init__`
are the recipe's. The torch-side modules that use them (stages, views, datasets) import them from here.
"""
