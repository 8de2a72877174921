"""Datasets that plugins add (entry-point group `ssnas.datasets`): the one place ssnas calls them.

The contract (docs/plugins.md). The entry point names an object (a module, an instance, or a class
whose methods are static or class methods) with:
- `node_names(path, options) -> tuple[str, ...]`: the input-node names `load` gives, in node order
  (`modality[k]`, modality by modality), without loading the data and without importing torch:
  `ssnas run` calls it before any run exists, to bind a given genotype and in preflight;
- `load(path, options) -> ssnas.data.pyramids.FeatureSet`: the data, in the worker;
- optionally `check(path, options, needs) -> list[str]`: preflight's look at the data before any run
  exists; `needs` is a `SplitNeeds` (`min_rows`: split -> rows the stages need at least; `labeled`:
  the splits whose labels they read); raise `ssnas.errors.DatasetError` to refuse, return warnings;
- optionally `needs_path = True`: the dataset reads `data.path`, which must then be set.
`path` is the recipe's `data.path` (absolute, as given: ssnas does not check it; None when not set) and
`options` its `[data.<name>]` table as a plain dict ({} when absent). Errors of type `SsnasError` pass
as they are; any other exception becomes one line naming the plugin.

Torch-free: torch is imported only when `load` runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ssnas import plugins
from ssnas.errors import DatasetError, SsnasError

if TYPE_CHECKING:
    from ssnas.data.feature_check import SplitNeeds
    from ssnas.data.pyramids import FeatureSet


@dataclass(frozen=True)
class DatasetPlugin:
    """An installed dataset plugin, loaded: its entry point and the object it names."""

    plugin: plugins.Plugin
    source: Any

    @classmethod
    def named(cls, name: str) -> DatasetPlugin:
        """The plugin dataset `name`, its module imported now; one without `load` and `node_names` is refused."""
        plugin = plugins.find(plugins.DATASETS_GROUP, name)
        source = plugin.load()
        for method in ("load", "node_names"):
            if not callable(getattr(source, method, None)):
                raise plugin.error(f"has no {method}(path, options) method")
        return cls(plugin, source)

    def node_names(self, path: str | None, options: Mapping[str, Any]) -> tuple[str, ...]:
        names = self._call("node_names", path, options)
        if not (isinstance(names, (tuple, list)) and names and all(isinstance(n, str) and n for n in names)):
            raise self.plugin.error(f"node_names returned {names!r}, not a non-empty sequence of names")
        return tuple(names)

    def load(self, path: str | None, options: Mapping[str, Any]) -> FeatureSet:
        """The plugin's data, checked to be a FeatureSet whose nodes are the ones `node_names` promised."""
        from ssnas.data.pyramids import FeatureSet

        features = self._call("load", path, options)
        if not isinstance(features, FeatureSet):
            raise self.plugin.error(f"load returned a {type(features).__name__}, not a FeatureSet")
        promised = self.node_names(path, options)
        if features.node_names != promised:
            raise self.plugin.error(f"load gave the nodes {list(features.node_names)}, but node_names says "
                                    f"{list(promised)}")
        return features

    def check(self, path: str | None, options: Mapping[str, Any], needs: SplitNeeds) -> list[str]:
        """Preflight: the nodes can be named and the plugin's own `check` (if any) passes; its warnings."""
        self.node_names(path, options)
        if getattr(self.source, "check", None) is None:
            return []
        warnings = self._call("check", path, options, needs)
        if not (isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)):
            raise self.plugin.error(f"check returned {warnings!r}, not a list of warnings")
        return warnings

    def _call(self, method: str, path: str | None, options: Mapping[str, Any], *more: Any) -> Any:
        if path is None and getattr(self.source, "needs_path", False):
            raise DatasetError(f"data.path: the {self.plugin.name} dataset ({self.plugin.origin}) needs a path")
        try:
            return getattr(self.source, method)(path, dict(options), *more)
        except SsnasError:
            raise
        except Exception as error:  # noqa: BLE001 - a plugin's failure is one line naming it
            raise self.plugin.error(f"{method} failed: {plugins.one_line(error)}") from error
