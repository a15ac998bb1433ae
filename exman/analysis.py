"""``interest ~ parameters``: replicate-aware summaries of an ``Index.info()`` table.

Owns the grouping rules (group by the varying parameters minus the replicate
keys, keep completed runs unless asked), the aggregates with their t-based
confidence intervals, and the Student t quantile those need (scipy is not a
core dependency). Plotting lives in ``exman.plotting``; this module never
imports matplotlib, and pandas only inside functions.
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import Iterable, Sequence

DEFAULT_AGG = ("mean", "std", "count")
DEFAULT_INCLUDE = ("completed",)

# ---------------------------------------------------------------------------
# Student t quantile without scipy
# ---------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 20000):
        m2 = 2 * m
        # even step
        num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        # odd step
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    # The continued fraction converges fast only on this side of the mode.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, dof: float) -> float:
    """Upper tail P(T > t) of Student's t with ``dof`` degrees of freedom."""
    tail = 0.5 * betainc(dof / 2.0, 0.5, dof / (dof + t * t))
    return tail if t >= 0 else 1.0 - tail


@functools.lru_cache(maxsize=1024)
def t_ppf(q: float, dof: float) -> float:
    """Quantile of Student's t: the ``t`` with P(T <= t) = q. Accurate to ~1e-12."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {q}")
    if not dof > 0:
        raise ValueError(f"degrees of freedom must be positive, got {dof}")
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -t_ppf(1.0 - q, dof)
    tail = 1.0 - q
    if dof == 1.0:  # Cauchy: exact
        return math.tan(math.pi * (q - 0.5))
    if dof == 2.0:  # exact closed form
        a = 4.0 * q * (1.0 - q)
        return 2.0 * (q - 0.5) * math.sqrt(2.0 / a)
    if q < 0.75:
        # Near the median 1 - tail cancels; compare the mass between 0 and t instead.
        def below(t):
            return 0.5 * betainc(0.5, dof / 2.0, t * t / (dof + t * t)) < q - 0.5
    else:
        def below(t):
            return t_sf(t, dof) > tail
    lo, hi = 0.0, 1.0
    while below(hi):
        lo, hi = hi, hi * 2.0
    # Bisection: both criteria are monotone in t, so this cannot miss the root.
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if below(mid):
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-14 * hi:
            break
    return 0.5 * (lo + hi)

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


def varying(df) -> list[str]:
    """The parameter columns whose values differ within ``df``."""
    # The Index owns this rule; this module defers to it so `exman ls` and
    # the analysis always agree.
    from exman.index import varying as index_varying

    return index_varying(df)


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

    from exman.index import meta_column

    status = meta_column(df, "status")
    if include is None or include == "all" or status not in df.columns:
        return pd.Series(True, index=df.index)
    return df[status].isin(names(include))


def hashable(col):
    """List-valued params (nargs) cannot be group keys: make them tuples."""
    if col.dtype != object:
        return col
    return col.map(lambda v: tuple(v) if isinstance(v, list) else v)


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
    others still make their group appear, counted in ``excluded``. Columns:
    the group keys, ``runs`` (included runs), ``excluded``,
    ``missing_replicates`` (fewer runs than the largest group), then
    ``<interest>_<agg>`` for each aggregate and ``<interest>_ci_low`` /
    ``<interest>_ci_high`` (t-based, level ``ci``; NaN below two values).
    ``attrs`` records ``interest``, ``by``, ``over``, ``level`` and
    ``excluded`` ({status: count}); a warning reports excluded runs
    (``warn=False`` to silence it; ``stacklevel`` is for wrappers).
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
    mask = status_mask(df, include)
    excluded = {str(k): int(v) for k, v in df.loc[~mask, "status"].value_counts().items()} if "status" in df else {}
    aggs = list(agg)
    names_ = [_agg_name(a) for a in aggs]

    values = _numeric(df, interest)
    data = pd.DataFrame({c: hashable(df[c]) for c in keys}, index=df.index)
    for c in interest:
        # Excluded runs keep their group alive but contribute no values.
        data["__v_" + c] = values[c].where(mask)
    data["__in"] = mask.astype(np.int64)
    data["__out"] = (~mask).astype(np.int64)
    if keys:
        grouped = data.groupby(keys, dropna=False, sort=True, observed=True)
    else:
        grouped = data.groupby(np.zeros(len(data), dtype=np.int64))

    need = list(dict.fromkeys(names_ + (["mean", "std", "count"] if ci else [])))
    plain = [a for a in need if isinstance(a, str)]
    stats = grouped[["__v_" + c for c in interest]].agg(plain)
    out = pd.DataFrame(index=stats.index)
    out["runs"] = grouped["__in"].sum()
    out["excluded"] = grouped["__out"].sum()
    out["missing_replicates"] = out["runs"] < (out["runs"].max() if len(out) else 0)
    for c in interest:
        source = "__v_" + c
        for func, label in zip(aggs, names_):
            if isinstance(func, str):
                out[f"{c}_{label}"] = stats[(source, func)]
            else:
                out[f"{c}_{label}"] = grouped[source].agg(func)
        if ci:
            n = stats[(source, "count")].to_numpy(dtype=float)
            half = _half_width(stats[(source, "std")].to_numpy(dtype=float), n, ci)
            mean = stats[(source, "mean")].to_numpy(dtype=float)
            out[f"{c}_ci_low"] = mean - half
            out[f"{c}_ci_high"] = mean + half
    out = out.reset_index(drop=not keys)
    out.attrs = {
        "interest": interest,
        "by": keys,
        "over": over_keys,
        "level": ci,
        "include": include,
        "excluded": excluded,
    }
    if warn:
        warn_excluded(excluded, stacklevel=stacklevel)
    return out


def warn_excluded(excluded: dict, stacklevel: int = 2) -> None:
    """One warning naming how many runs the status filter left out, by status.

    ``stacklevel`` counts from the caller of ``warn_excluded``: 2 points at
    whoever called that caller, i.e. the user's line.
    """
    if excluded:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(excluded.items()))
        warnings.warn(
            f"{sum(excluded.values())} run(s) left out by status ({counts}); "
            f"pass include=[...] or include='all' to keep them",
            stacklevel=stacklevel + 1,
        )


def _half_width(std, n, level):
    """t_{(1+level)/2, n-1} * std / sqrt(n), NaN where n < 2."""
    import numpy as np

    q = (1.0 + level) / 2.0
    half = np.full(len(n), np.nan)
    for count in np.unique(n[np.isfinite(n)]):
        if count >= 2:
            sel = n == count
            half[sel] = t_ppf(q, float(count - 1)) * std[sel] / math.sqrt(count)
    return half


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a 1-D sequence; the bounds are NaN below two values."""
    import numpy as np

    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[np.isfinite(arr)]
    if len(arr) == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(arr.mean())
    if len(arr) < 2:
        return (mean, math.nan, math.nan)
    half = t_ppf((1.0 + level) / 2.0, len(arr) - 1) * float(arr.std(ddof=1)) / math.sqrt(len(arr))
    return (mean, mean - half, mean + half)


__all__ = ["summary", "t_ppf", "t_sf", "betainc", "mean_ci", "group_keys", "replicate_keys", "status_mask", "varying"]
