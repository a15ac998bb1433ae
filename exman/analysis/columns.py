"""The column rules of an ``Index.info()`` frame, read from the frame alone.

``Index.info()`` records in ``df.attrs`` which columns are params, metrics and
metadata; the Index, the analysis and the commands all ask here, so they agree
on what varies and where metadata went. A leaf: it takes a DataFrame and never
imports pandas or the Index.
"""

from __future__ import annotations

from exman.layout import BASE_COLUMNS, GIT_COLUMNS, META_COLUMNS, OPTION_KEYS, SLURM_COLUMNS


def meta_column(df, key: str) -> str:
    """The column of ``df`` that holds run metadata ``key`` (``status``, ``start``, ``host``, ...).

    A parameter always keeps its own name, so metadata moves to ``exman_<key>``
    in a root whose script has an argument of the same name (``--user``): code
    that reads metadata from an ``info()`` table asks here instead of assuming.
    """
    return df.attrs.get("meta", {}).get(key, key)


def varying(df) -> list:
    """Param columns whose values differ within ``df``, in declaration order.

    The param columns are ``df.attrs["params"]`` (set by ``Index.info``); a
    frame that lost its attrs falls back to every column that is not run
    metadata. Missing values count as a value (NaN vs 1 differs); lists are
    compared by content.
    """
    names = df.attrs.get("params")
    if names is None:
        skip = (
            set(BASE_COLUMNS)
            | set(META_COLUMNS)
            | set(GIT_COLUMNS)
            | set(SLURM_COLUMNS)
            | set(OPTION_KEYS)
            | set(df.attrs.get("metrics", ()))
            | set(df.attrs.get("plugins", ()))
        )
        names = [c for c in df.columns if c not in skip]
    out = []
    for name in names:
        if name not in df.columns:
            continue
        seen = set()
        for value in df[name].tolist():
            seen.add(value_key(value))
            if len(seen) > 1:
                out.append(name)
                break
    return out


def value_key(value):
    """``value`` as a set member: missing values are one value, lists compare by content."""
    if isinstance(value, float) and value != value:
        return ("nan",)  # NaN != NaN, but two missing values are the same value
    if value is None:
        return ("nan",)
    if isinstance(value, list):
        return ("list", tuple(value_key(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return ("repr", repr(value))
    return value
