"""``interest ~ parameters``: replicate-aware summaries of an ``Index.info()`` table.

Owns the grouping rules (group by the varying parameters minus the replicate
keys, keep completed runs unless asked), the replicate rule (runs that share a
cell and replicate key count once, as their mean) and the aggregates with
their t-based confidence intervals (t quantiles from scipy, the optional extra
``exman[stats]``). Tests and models live in ``exman.analysis.inference``, plotting in
``exman.analysis.plotting``; this module imports pandas and scipy only inside functions.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

from exman.analysis.columns import varying

DEFAULT_AGG = ("mean", "std", "count")
DEFAULT_INCLUDE = ("completed",)

STATS_EXTRA = 'pip install "exman[stats]"'


def scipy_stats():
    """``scipy.stats``, or one clear ImportError naming the extra."""
    try:
        from scipy import stats
    except ImportError:
        raise ImportError(
            f"confidence intervals and tests need scipy, the optional extra exman[stats]: {STATS_EXTRA}"
        ) from None
    return stats


# ---------------------------------------------------------------------------
# grouping rules
# ---------------------------------------------------------------------------


def names(value) -> list[str]:
    """``None`` -> [], ``"a"`` -> ["a"], an iterable -> list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def replicate_keys(df, over) -> list[str]:
    """The replicate columns of ``over`` that ``df`` has (``seed`` may be absent)."""
    return [c for c in names(over) if c in df.columns]


def group_keys(df, by=None, over="seed", interest=()) -> list[str]:
    """Explicit ``by``, else the varying params that are neither replicate keys nor interest."""
    if by is not None:
        keys = names(by)
        missing = [k for k in keys if k not in df.columns]
        if missing:
            raise KeyError(f"no column(s) {', '.join(missing)}; params are: {', '.join(df.attrs.get('params', []))}")
        return keys
    skip = set(replicate_keys(df, over)) | set(names(interest))
    return [c for c in varying(df) if c not in skip]


def status_mask(df, include):
    """Rows whose status is in ``include``; ``include=None`` or ``"all"`` keeps every row."""
    import pandas as pd

    from exman.analysis.columns import meta_column

    status = meta_column(df, "status")
    if include is None or include == "all" or status not in df.columns:
        return pd.Series(True, index=df.index)
    return df[status].isin(names(include))


def hashable(col):
    """List- and dict-valued params (nargs, ``type=json.loads``) cannot be group keys:
    lists become tuples, dicts their JSON text (keys sorted). A column whose values
    cannot be ordered together (a number beside a text, a hand-edited file) groups
    by their text."""
    if col.dtype != object:
        return col
    out = col.map(_frozen)
    kinds = {type(v) for v in out if v is not None and v == v}
    if len(kinds) > 1 and not kinds <= {int, float, bool}:
        out = out.map(lambda v: v if v is None or v != v else str(v))
    return out


def _frozen(value):
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        import json

        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return value


def _check_interest(df, interest: Sequence[str]) -> None:
    missing = [c for c in interest if c not in df.columns]
    if missing:
        known = df.attrs.get("metrics") or [c for c in df.columns if c not in df.attrs.get("params", [])]
        raise KeyError(f"no column(s) {', '.join(missing)}; metrics are: {', '.join(known) or '(none logged)'}")


def _numeric(df, interest: Sequence[str]):
    import pandas as pd

    out = {}
    for c in interest:
        col = df[c]
        if col.dtype == bool:
            col = col.astype(float)
        converted = pd.to_numeric(col, errors="coerce")
        if converted.notna().sum() < col.notna().sum():
            raise TypeError(f"interest column {c!r} holds non-numeric values")
        out[c] = converted.astype(float)
    return out


def _agg_name(func) -> str:
    return func if isinstance(func, str) else getattr(func, "__name__", str(func))


# ---------------------------------------------------------------------------
# replicates
# ---------------------------------------------------------------------------


def cell_keys(df, over="seed", interest=(), by=(), vary=None) -> list[str]:
    """What makes one grid cell: ``by`` plus every varying param but the replicate keys and interest.

    ``vary``: ``varying(df)`` when the caller has it already (it reads every param column).
    """
    skip = set(replicate_keys(df, over)) | set(names(interest))
    vary = varying(df) if vary is None else vary
    return list(dict.fromkeys([*names(by), *[c for c in vary if c not in skip]]))


def replicate_ids(df, cell: Sequence[str], over_keys: Sequence[str]):
    """Per row of ``df``, the number of its replicate, or None when every run is its own.

    A replicate is one value of the ``over_keys`` within a cell: runs sharing
    both (a re-run sweep, a demo run twice) are copies, not independent
    replicates. Returns ``(ids, copies)``: ``ids`` an int array (rows with the
    same id are one replicate), ``copies`` {runs per replicate: replicates},
    only for the replicates with more than one run.
    """
    import numpy as np
    import pandas as pd

    from exman.analysis.columns import value_key

    over_keys = [k for k in over_keys if k not in cell]
    if not over_keys or len(df) < 2:
        return None, {}
    keys = list(dict.fromkeys([*cell, *over_keys]))
    frame = pd.DataFrame({k: hashable(df[k]) for k in keys}, index=df.index)
    dup = frame.duplicated(keep=False).to_numpy()
    if not dup.any():
        return None, {}
    ids = np.arange(len(df), dtype=np.int64)
    first: dict = {}
    # Only the few duplicated rows take the slow path; NaN and lists compare by value there.
    rows = frame.to_numpy(dtype=object)
    for i in np.flatnonzero(dup):
        key = tuple(value_key(v) for v in rows[i])
        ids[i] = first.setdefault(key, i)
    sizes = np.bincount(ids, minlength=len(df))
    copies: dict = {}
    for size in sizes[sizes > 1].tolist():
        copies[size] = copies.get(size, 0) + 1
    return ids, copies


def warn_copies(copies: dict, keys: Sequence[str], stacklevel: int = 2) -> None:
    """One warning: how many runs repeat a replicate, and the rule that combined them."""
    if not copies:
        return
    runs = sum(size * count for size, count in copies.items())
    detail = ", ".join(f"{count} recorded {size} times" for size, count in sorted(copies.items()))
    warnings.warn(
        f"{runs} run(s) share a replicate with another run (same {', '.join(keys)}): {detail}; "
        "each replicate counts once, as the mean of its runs",
        stacklevel=stacklevel + 1,
    )


def collapse(data, ids, values: Sequence[str]):
    """One row per replicate: the mean of ``values``, ``runs`` = how many runs it had.

    ``data`` holds the included runs; ``ids`` come from ``replicate_ids``
    (None: nothing to combine). Other columns keep their first row's value,
    which every run of a replicate shares for the keys.
    """
    import numpy as np

    if ids is None:
        out = data.copy()
        out["__runs"] = np.ones(len(out), dtype=np.int64)
        return out
    grouped = data.groupby(ids, sort=False)
    rest = [c for c in data.columns if c not in set(values)]
    out = data.iloc[np.unique(ids, return_index=True)[1]][rest].copy()
    order = np.unique(ids)
    means = grouped[list(values)].mean() if values else {}
    for c in values:
        out[c] = means[c].reindex(order).to_numpy()
    out["__runs"] = grouped.size().reindex(order).to_numpy()
    return out


# ---------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------


def summary(
    df,
    interest,
    by=None,
    over="seed",
    agg: Iterable = DEFAULT_AGG,
    include=DEFAULT_INCLUDE,
    ci: float | None = 0.95,
    warn: bool = True,
    stacklevel: int = 2,
):
    """One row per group of runs, with aggregates of each interest column.

    ``df`` is an ``Index.info()`` table. Groups are the distinct values of the
    ``by`` columns (default: the varying params minus the replicate keys in
    ``over``). Only runs whose status is in ``include`` are aggregated; the
    others still make their group appear, counted in ``excluded``. Runs that
    share a cell and replicate key are one replicate, their mean (a warning
    says how many). Columns: the group keys, ``runs`` (included runs),
    ``replicates``, ``excluded``, ``missing_replicates`` (fewer replicates
    than the largest group), ``pooled`` (only when ``by`` leaves out a varying
    param: the params whose cells were pooled into one group), then
    ``<interest>_<agg>`` for each aggregate over replicates and
    ``<interest>_ci_low`` / ``<interest>_ci_high`` (t-based, level ``ci``; NaN
    below two values). ``attrs`` records ``interest``, ``by``, ``over``,
    ``pooled``, ``level``, ``excluded`` ({status: count}) and ``copies``
    ({runs per replicate: replicates}); warnings report excluded and repeated
    runs (``warn=False`` to silence them; ``stacklevel`` is for wrappers).
    Non-finite values (a diverged run's NaN or inf loss) are numbers: NaN is
    skipped by every aggregate and by ``count`` (as in pandas), while ±inf is
    counted and carried into ``mean``/``max``/... (so a mean may be inf or NaN).
    """
    import numpy as np
    import pandas as pd

    interest = names(interest)
    if not interest:
        raise ValueError("summary() needs at least one interest column, e.g. summary('acc')")
    _check_interest(df, interest)
    keys = group_keys(df, by, over, interest)
    over_keys = replicate_keys(df, over)
    # With no by, the group keys are the cell: no second pass over the param columns.
    cell = keys if by is None else cell_keys(df, over, interest, keys)
    pooled = [c for c in cell if c not in keys]
    mask = status_mask(df, include)
    excluded = excluded_counts(df, mask)
    aggs = list(agg)
    names_ = [_agg_name(a) for a in aggs]
    values = _numeric(df, interest)
    data = pd.DataFrame({c: hashable(df[c]) for c in dict.fromkeys([*cell, *over_keys])}, index=df.index)
    for c in interest:
        data["__v_" + c] = values[c]
    included = data[mask.to_numpy()]
    ids, copies = replicate_ids(included, cell, over_keys)
    reps = collapse(included, ids, ["__v_" + c for c in interest])
    # Excluded runs keep their group alive but contribute no values.
    out_rows = data[~mask.to_numpy()].copy()
    for c in interest:
        out_rows["__v_" + c] = np.nan
    out_rows["__runs"] = 0
    reps["__rep"], out_rows["__rep"] = 1, 0
    reps["__out"], out_rows["__out"] = 0, 1
    data = pd.concat([reps, out_rows]) if len(out_rows) else reps
    for c in ("__runs", "__rep", "__out"):
        data[c] = data[c].astype(np.int64)
    if keys:
        grouped = data.groupby(keys, dropna=False, sort=True, observed=True)
    else:
        grouped = data.groupby(np.zeros(len(data), dtype=np.int64))

    need = list(dict.fromkeys(names_ + (["mean", "std", "count"] if ci else [])))
    plain = [a for a in need if isinstance(a, str)]
    sources = ["__v_" + c for c in interest]
    # One reduction per aggregate over all interest columns, and one frame built at the end:
    # agg([...]) goes column by column, and each column set on a frame copies its index.
    aggregated = {func: grouped[sources].agg(func) for func in plain}
    counts = grouped[["__runs", "__rep", "__out"]].sum()
    columns: dict = {"runs": counts["__runs"], "replicates": counts["__rep"], "excluded": counts["__out"]}
    columns["missing_replicates"] = counts["__rep"] < (counts["__rep"].max() if len(counts) else 0)
    if pooled:
        columns["pooled"] = ", ".join(pooled)
    for c in interest:
        source = "__v_" + c
        for func, label in zip(aggs, names_):
            columns[f"{c}_{label}"] = aggregated[func][source] if isinstance(func, str) else grouped[source].agg(func)
        if ci:
            n = aggregated["count"][source].to_numpy(dtype=float)
            half = half_width(aggregated["std"][source].to_numpy(dtype=float), n, ci)
            mean = aggregated["mean"][source].to_numpy(dtype=float)
            columns[f"{c}_ci_low"] = mean - half
            columns[f"{c}_ci_high"] = mean + half
    out = pd.DataFrame(columns, index=counts.index)
    out = out.reset_index(drop=not keys)
    out.attrs = {
        "interest": interest,
        "by": keys,
        "over": over_keys,
        "pooled": pooled,
        "level": ci,
        "include": include,
        "excluded": excluded,
        "copies": copies,
    }
    if warn:
        warn_excluded(excluded, stacklevel=stacklevel)
        warn_copies(copies, [*cell, *over_keys], stacklevel=stacklevel)
    return out


def excluded_counts(df, mask) -> dict:
    """{status: runs} of the rows ``mask`` leaves out."""
    from exman.analysis.columns import meta_column

    status = meta_column(df, "status")
    if status not in df.columns:
        return {}
    return {str(k): int(v) for k, v in df.loc[~mask, status].value_counts().items()}


def excluded_message(excluded: dict, keep: str = "include=[...] or include='all'") -> str:
    """What ``warn_excluded`` says; ``keep`` names the way to keep the runs (a command's option)."""
    counts = ", ".join(f"{v} {k}" for k, v in sorted(excluded.items()))
    return f"{sum(excluded.values())} run(s) left out by status ({counts}); pass {keep} to keep them"


def warn_excluded(excluded: dict, stacklevel: int = 2) -> None:
    """One warning naming how many runs the status filter left out, by status.

    ``stacklevel`` counts from the caller of ``warn_excluded``: 2 points at
    whoever called that caller, i.e. the user's line.
    """
    if excluded:
        warnings.warn(excluded_message(excluded), stacklevel=stacklevel + 1)


def half_width(std, n, level, stats=None):
    """t_{(1+level)/2, n-1} * std / sqrt(n), NaN where n < 2.

    scipy.stats is imported only when some n is at least 2 and the quantile is not
    remembered (``exman.analysis.statcache``); ``stats`` is scipy.stats if the caller has it.
    """
    import numpy as np

    n = np.asarray(n, dtype=float)
    half = np.full(len(n), np.nan)
    ok = np.isfinite(n) & (n >= 2)
    if ok.any():
        half[ok] = t_quantile((1.0 + level) / 2.0, n[ok] - 1, stats) * np.asarray(std, dtype=float)[ok] / np.sqrt(n[ok])
    return half


def t_quantile(q, dof, stats=None):
    """``scipy.stats.t.ppf(q, dof)``, element by element (remembered in an active statcache)."""
    from exman.analysis import statcache

    return statcache.elementwise("scipy.stats.t.ppf", lambda q, dof: (stats or scipy_stats()).t.ppf(q, dof), q, dof)[0]


__all__ = [
    "summary",
    "group_keys",
    "cell_keys",
    "replicate_keys",
    "replicate_ids",
    "collapse",
    "status_mask",
    "varying",
    "half_width",
    "t_quantile",
    "scipy_stats",
    "STATS_EXTRA",
]
