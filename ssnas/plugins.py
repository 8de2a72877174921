"""Plugins: what installed packages add to ssnas through entry points (DESIGN.md 9; docs/plugins.md).

Trying a new fusion primitive, dataset, self-supervised loss, view policy or tracking sink should
need a package, not a fork. A package declares its objects under the groups of `GROUPS` in its
metadata (`[project.entry-points."ssnas.primitives"]`), and ssnas finds them by name.

Names are read from the installed distributions' metadata alone, never by importing the plugin's
module: recipe validation needs only the names, and stays torch-free. The object behind a name is
loaded (`Plugin.load`) where it is used: in the worker, by preflight for a dataset, and by
`ssnas plugins --check`. Workers are separate processes (local, or on a Ray node) that find the same
plugins through the same installed metadata; nothing registered at run time would reach them, which
is why there is no registration call.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ssnas.errors import SsnasError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoints

PRIMITIVES_GROUP = "ssnas.primitives"
DATASETS_GROUP = "ssnas.datasets"
OBJECTIVES_GROUP = "ssnas.objectives"
VIEW_POLICIES_GROUP = "ssnas.view_policies"
TRACKING_SINKS_GROUP = "ssnas.tracking_sinks"

# Every entry-point group ssnas reads -> where its built-in names live ("module:attribute", read only to
# refuse a plugin that takes a built-in's name; None: nothing is built in). A new group is one line here.
GROUPS: dict[str, str | None] = {
    PRIMITIVES_GROUP: "ssnas.nas.vocabulary:PRIMITIVES",
    DATASETS_GROUP: "ssnas.config.data:DATASET_KINDS",
    OBJECTIVES_GROUP: "ssnas.config.stages:SSL_LOSSES",
    VIEW_POLICIES_GROUP: "ssnas.config.views:VIEW_POLICIES",
    TRACKING_SINKS_GROUP: None,
}


class PluginError(SsnasError):
    """A plugin that cannot be used: a name taken twice, a module that fails to import, a bad object."""


@dataclass(frozen=True)
class Plugin:
    """One installed entry point: its name in a group, the object it points at, and who declared it."""

    group: str
    name: str
    value: str  # "module:object", as the metadata writes it
    distribution: str
    version: str

    @property
    def origin(self) -> str:
        """Who declared it, for messages: "my-plugin 0.1"."""
        return f"{self.distribution} {self.version}"

    def error(self, problem: str) -> PluginError:
        """An error about this plugin, in one line: "ssnas.primitives: plugin 'x' of my-plugin 0.1 <problem>"."""
        return PluginError(f"{self.group}: plugin {self.name!r} of {self.origin} {problem}")

    def load(self) -> Any:
        """Import the plugin's module and return its object; any failure is one line naming the plugin."""
        from importlib.metadata import EntryPoint

        try:
            return EntryPoint(self.name, self.value, self.group).load()
        except Exception as error:  # noqa: BLE001 - whatever a plugin's import raises, the user gets one line
            raise self.error(f"failed to load ({self.value}): {one_line(error)}") from error


def one_line(error: BaseException) -> str:
    """`ModuleNotFoundError: No module named 'x'`: an exception's type and the first line of its message."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def builtin_names(group: str) -> tuple[str, ...]:
    """The names ssnas itself defines in `group` (torch-free modules, read lazily to avoid import cycles)."""
    where = GROUPS[group]
    if where is None:
        return ()
    module, _, attribute = where.partition(":")
    return tuple(getattr(importlib.import_module(module), attribute))


@functools.cache
def _entry_points() -> dict[str, EntryPoints]:
    """The installed entry points of every group of `GROUPS`, read once per process (a read scans every
    installed distribution, whichever group it asks for)."""
    from importlib.metadata import entry_points

    every = entry_points()
    return {group: every.select(group=group) for group in GROUPS}


@functools.cache
def installed(group: str) -> tuple[Plugin, ...]:
    """The plugins installed in `group`, in metadata order. A name that a built-in or another plugin
    already has is a `PluginError` naming both distributions: which one a recipe means would be a guess."""
    taken = {name: "ssnas (built in)" for name in builtin_names(group)}
    found: list[Plugin] = []
    for entry in _entry_points()[group]:
        dist = entry.dist
        plugin = Plugin(group, entry.name, entry.value, dist.name if dist else "<unknown distribution>",
                        dist.version if dist else "?")
        if plugin.name in taken:
            raise plugin.error(f"collides with {plugin.name!r} of {taken[plugin.name]}; uninstall one of them")
        taken[plugin.name] = plugin.origin
        found.append(plugin)
    return tuple(found)


def rescan() -> None:
    """Forget what was read of the installed metadata: for a process that installs a plugin and goes on."""
    _entry_points.cache_clear()
    installed.cache_clear()


def known_names(group: str) -> tuple[str, ...]:
    """The built-in names of `group`, then its plugins' names: what a recipe may name. Imports no plugin."""
    return (*builtin_names(group), *(plugin.name for plugin in installed(group)))


def find(group: str, name: str) -> Plugin:
    """The installed plugin `name` of `group`; a `PluginError` listing the known names if there is none."""
    for plugin in installed(group):
        if plugin.name == name:
            return plugin
    raise PluginError(f"{group}: no plugin {name!r} is installed (known: {', '.join(known_names(group))})")


def load_callable(group: str, name: str, contract: str) -> Callable[..., Any]:
    """The object of plugin `name` of `group`, its module imported now; refused unless it can be called.
    `contract` says what it should be, for the message: "a loss (z_a, z_b, temperature) -> tensor"."""
    plugin = find(group, name)
    loaded = plugin.load()
    if not callable(loaded):
        raise plugin.error(f"is a {type(loaded).__name__}, not {contract}")
    return loaded
