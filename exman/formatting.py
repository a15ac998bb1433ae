"""One way to write a value for people: terminal tables, the HTML report, plot labels.

``text`` is the one formatter: short floats (4 significant digits, whole
numbers without ``.0``), ``True``/``False``, lists as ``[64, 64]`` (a tuple
made hashable for grouping reads the same), times to the second, and one
chosen text for a missing value (None, NaN, NaT, pd.NA). ``plain`` is its
counterpart for JSON: real types, missing as null. No pandas or numpy import:
values are recognised by duck typing, so ``import exman`` stays cheap.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path

TIME = "%Y-%m-%d %H:%M:%S"
SHORT_TIME = "%m-%d %H:%M"


def is_missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, float):
        return math.isnan(v)
    return type(v).__name__ in ("NaTType", "NAType") or (type(v).__module__ == "numpy" and v != v)


def _scalar(v):
    """numpy scalars as Python values (numpy is never imported here)."""
    if type(v).__module__ == "numpy" and getattr(v, "ndim", None) == 0 and hasattr(v, "item"):
        return v.item()
    return v


def text(v, missing: str = "", short_time: bool = False) -> str:
    """``v`` as a person reads it."""
    v = _scalar(v)
    if is_missing(v):
        return missing
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e6:
            return str(int(v))
        return f"{v:.4g}"
    if isinstance(v, (datetime.datetime, datetime.date)):
        if hasattr(v, "to_pydatetime"):  # pandas Timestamp
            v = v.to_pydatetime()
        return v.strftime(SHORT_TIME if short_time else TIME)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(text(x, missing="None") for x in v) + "]"
    return str(v)


def plain(v):
    """A JSON-ready Python value: numpy scalars unwrapped, missing as None, times in ISO 8601."""
    v = _scalar(v)
    if is_missing(v):
        return None
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def duration(seconds) -> str:
    """``0.08s``, ``12.3s``, ``4m05s``, ``3h20m``, ``2d04h``; empty when unknown."""
    seconds = _scalar(seconds)
    if is_missing(seconds):
        return ""
    seconds = float(seconds)
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


__all__ = ["text", "plain", "duration", "is_missing"]
