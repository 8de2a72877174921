"""Dashboard widgets: plain data in, drawing out; the screens read the registry and feed them.

Exports are lazy so that importing one widget does not load the others (plotext in particular).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui.widgets.curves import MetricCurves
    from tui.widgets.genotype_view import GenotypeDiffView, GenotypeGraph
    from tui.widgets.heatmap import ArchHeatmap
    from tui.widgets.log_view import LogView

_HOMES = {
    "MetricCurves": "tui.widgets.curves",
    "ArchHeatmap": "tui.widgets.heatmap",
    "GenotypeGraph": "tui.widgets.genotype_view",
    "GenotypeDiffView": "tui.widgets.genotype_view",
    "LogView": "tui.widgets.log_view",
}

__all__ = ["ArchHeatmap", "GenotypeDiffView", "GenotypeGraph", "LogView", "MetricCurves"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
