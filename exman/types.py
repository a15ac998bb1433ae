"""Argument types and the plain-value rules for what exman records.

``to_plain`` decides how any parsed value is written; ``schema_of`` records what
argparse declared, so the Index types columns from the declaration, not from
the values it happens to see.
"""

from __future__ import annotations

import argparse
import enum
import math
import pathlib

ArgumentError = argparse.ArgumentError

TRUE = ("true", "t", "yes", "y", "on", "1")
FALSE = ("false", "f", "no", "n", "off", "0")


def boolean(text) -> bool:
    """``type=bool`` done right: ``bool("false")`` is True, this is False."""
    if isinstance(text, bool):
        return text
    low = str(text).strip().lower()
    if low in TRUE:
        return True
    if low in FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean ({'/'.join(TRUE + FALSE)}), got {text!r}")


boolean.__name__ = "bool"


def optional(type_):
    """Wrap ``type_`` so that ``none`` / ``null`` (any case) parse to ``None``."""

    def convert(text):
        if text is None or (isinstance(text, str) and text.strip().lower() in ("none", "null")):
            return None
        return type_(text)

    convert.__name__ = f"optional[{getattr(type_, '__name__', 'str')}]"
    convert.exman_optional = type_
    return convert


def type_name(type_) -> str:
    """The schema name of an argparse ``type`` callable."""
    if type_ is None or type_ is str:
        return "str"
    if type_ is boolean or type_ is bool:
        return "bool"
    if type_ in (int, float, complex):
        return type_.__name__
    if isinstance(type_, type) and issubclass(type_, pathlib.PurePath):
        return "path"
    inner = getattr(type_, "exman_optional", None)
    if inner is not None:
        return type_name(inner)
    if isinstance(type_, type) and issubclass(type_, enum.Enum):
        return "str"
    return getattr(type_, "__name__", "object")


def schema_of(action: argparse.Action) -> dict:
    """What argparse declared for one argument, as plain JSON."""
    const_type = None
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        const_type = "bool"
    elif isinstance(action, argparse._CountAction):
        const_type = "int"
    elif isinstance(action, argparse._StoreConstAction):
        const_type = type(action.const).__name__ if action.const is not None else "str"
    nargs = action.nargs
    listy = nargs not in (None, "?", 0) or isinstance(action, (argparse._AppendAction, argparse._ExtendAction))
    choices = None
    if action.choices is not None:
        try:
            choices = [to_plain(c) for c in action.choices]
        except TypeError:
            choices = None
    return {
        "type": const_type or type_name(action.type),
        "list": bool(listy),
        "nargs": nargs if isinstance(nargs, (int, str)) or nargs is None else str(nargs),
        "choices": choices,
        "nullable": bool(getattr(action.type, "exman_optional", None)) or action.default is None,
    }


def metric_value(value):
    """``to_plain`` for a logged metric: NaN and infinities stay floats.

    JSON lines hold them (``NaN``, ``Infinity``), and a diverged run's loss must
    stay a number in every table; params keep ``to_plain``'s text because
    ``run.json`` is strict JSON.
    """
    if isinstance(value, float):
        return float(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and not isinstance(value, (bool, int, str)):
        try:
            plain = item()
        except (TypeError, ValueError):
            plain = None
        if isinstance(plain, float):
            return plain
    return to_plain(value)


def to_plain(value):
    """Turn any parsed value into something YAML and JSON both represent exactly.

    Paths and every other unknown object become their string form: a run is
    never refused because a value cannot be written.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return to_plain(value.value) if isinstance(value.value, (int, str)) else str(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return to_plain(item())
        except (TypeError, ValueError):
            pass
    return str(value)
