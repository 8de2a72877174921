"""What a recipe key accepts, read from the type hint of the dataclass field behind it.

A hint is `int`, `float`, `bool`, `str`, a `Literal` of strings, `tuple[X, ...]` or `tuple[X, Y]` of
those, `dict[str, str]`, any of them `| None`, and any of them `Annotated` with a
`ssnas.config.kinds.Described` (how messages name it) or `FileReference` (a path, resolved against the
recipe file that wrote it). Any other hint is refused when the schema is built, so that a new field of
an unsupported type fails at import, not on a user's recipe.
"""

from __future__ import annotations

import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from ssnas.config.kinds import Described, FileReference
from ssnas.recipe.messages import Invalid, show

# How a message names one value of a scalar type, and several.
_SCALARS: dict[type, tuple[str, str]] = {
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    bool: ("true or false", "booleans"),
    str: ("a string", "strings"),
}
_COUNTS = {2: "two", 3: "three", 4: "four"}


@dataclass(frozen=True)
class Kind:
    """The values one key takes: `hint` without its `| None` and its annotations, and what they add."""

    hint: Any
    optional: bool = False
    described: Described | None = None

    @property
    def file(self) -> FileReference | None:
        """How a path-valued key tells paths from names; None for any other key."""
        return self.described if isinstance(self.described, FileReference) else None

    @property
    def is_text(self) -> bool:
        """Whether the key takes a string, which `--set` also accepts unquoted (`run.device=cpu`)."""
        return self.hint is str or typing.get_origin(self.hint) is Literal

    def text(self) -> str:
        """What the key takes, in words, for messages: "an integer", "a list of strings"."""
        if self.described is not None:
            return self.described.text
        if typing.get_origin(self.hint) is Literal:
            return _SCALARS[str][0]
        if self.hint in _SCALARS:
            return _SCALARS[self.hint][0]
        args = typing.get_args(self.hint)
        if args[-1] is Ellipsis:
            return f"a list of {_SCALARS[args[0]][1]}"
        return f"a list of {_COUNTS[len(args)]} {_SCALARS[args[0]][1]}"


def kind_of(hint: Any) -> Kind:
    """The kind of a field's type hint (read with `typing.get_type_hints(cls, include_extras=True)`)."""
    optional = False
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"{hint}: a recipe key takes one type, optionally | None")
        hint, optional = args[0], True
    described = None
    if typing.get_origin(hint) is Annotated:
        described = next((m for m in hint.__metadata__ if isinstance(m, Described)), None)
        hint = hint.__origin__
    if not _supported(hint):
        raise TypeError(f"{hint}: no recipe key takes this type (see ssnas.recipe.kinds)")
    return Kind(hint, optional, described)


def _supported(hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return all(isinstance(a, str) for a in args)
    if origin is tuple:
        items = args[:-1] if args[-1:] == (Ellipsis,) else args
        return len(set(items)) == 1 and items[0] in _SCALARS and (args[-1] is Ellipsis or len(args) in _COUNTS)
    if origin is dict:
        return args == (str, str)
    return hint in _SCALARS


def coerce(kind: Kind, value: Any, key: str) -> Any:
    """`value` checked against `kind`, in its JSON form: ints pass as floats, bools never pass as numbers,
    tuples become lists. Raises `Invalid` naming `key`."""
    if value is None:
        if kind.optional:
            return None
        raise Invalid(key, f"needs a value ({kind.text()})")
    if kind.hint is float and _is_int(value):
        value = float(value)
    if kind.hint is float and isinstance(value, float) and not math.isfinite(value):
        raise Invalid(key, f"{show(value)} is not a finite number")
    if isinstance(value, tuple):
        value = list(value)
    if not _has_kind(kind.hint, value):
        raise Invalid(key, f"expected {kind.text()}, got {show(value)}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _has_kind(hint: Any, value: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is int:
        return _is_int(value)
    if hint in (float, bool, str):
        return isinstance(value, hint)
    if origin is Literal:
        return isinstance(value, str)  # which strings: the dataclass's own check, with its message
    if origin is dict:
        return isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if not isinstance(value, list):
        return False
    if args[-1] is Ellipsis:
        return all(_has_kind(args[0], v) for v in value)
    return len(value) == len(args) and all(_has_kind(a, v) for a, v in zip(args, value, strict=True))


def names_a_file(kind: Kind, value: Any) -> bool:
    """Whether `value` of this key is a path (not another kind of value, nor a name such as 'random')."""
    return kind.file is not None and isinstance(value, str) and kind.file.names_a_file(value)


def resolve(kind: Kind, value: Any, base_dir: str) -> Any:
    """A path-valued key's relative path made absolute against `base_dir`; any other value unchanged."""
    if names_a_file(kind, value):
        return os.path.abspath(os.path.join(base_dir, os.path.expanduser(value)))
    return value


def plain(value: Any) -> Any:
    """A value in its JSON form (tuples as lists), as the resolved recipe holds it."""
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value
