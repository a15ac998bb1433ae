"""Figures of ``interest ~ parameters``: points with CI error bars, learning curves.

Owns turning a ``summary`` into matplotlib figures. matplotlib is the optional
extra ``exman[plot]``: it is imported inside functions only, and a missing
install is one clear ``ImportError`` naming the extra. Figures are built with
``matplotlib.figure.Figure``, never through pyplot, so no GUI backend or
display is needed (the Agg renderer draws them) and pyplot's global list of
open figures never grows; in Jupyter a figure shows itself as the last
expression of a cell.
"""

from __future__ import annotations

import functools
import math

from exman.analysis.summaries import (
    DEFAULT_INCLUDE,
    cell_keys,
    excluded_counts,
    group_keys,
    half_width,
    replicate_ids,
    replicate_keys,
    status_mask,
    summary,
    warn_copies,
    warn_excluded,
)

PLOT_EXTRA = "exman[plot]"
MAX_WRAP = 4  # panels per row


@functools.cache
def figure_class():
    """matplotlib's Figure with a PNG repr for Jupyter; a clear error without the extra."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            f"plotting needs matplotlib, the optional extra {PLOT_EXTRA}: pip install '{PLOT_EXTRA}'"
        ) from None

    class ExmanFigure(Figure):
        def _repr_png_(self):
            import io

            buf = io.BytesIO()
            self.savefig(buf, format="png", dpi=100)
            return buf.getvalue()

    return ExmanFigure


def _numeric_axis(values) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _label(value) -> str:
    """A tick or legend label: the one formatter (``exman.formatting``), missing said as such."""
    from exman.formatting import text

    return text(value, missing="missing")


def _wants_log(values) -> bool:
    """A positive numeric axis spanning more than two decades."""
    import numpy as np

    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    return len(arr) > 1 and arr.min() > 0 and arr.max() / arr.min() > 100.0


def _sorted_values(column) -> list:
    """Distinct values in axis order: a categorical's declared order (choices=...), else sorted."""
    import pandas as pd

    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.dropna().tolist())
        return [c for c in column.cat.categories if c in present] + ([math.nan] if column.isna().any() else [])
    values, seen = [], set()
    for v in column.tolist():
        key = "\0nan" if v is None or (isinstance(v, float) and math.isnan(v)) else v
        if key not in seen:  # NaN != NaN: dedupe missing values by one key
            seen.add(key)
            values.append(v)
    try:
        return sorted(values, key=lambda v: (v is None or (isinstance(v, float) and math.isnan(v)), v))
    except TypeError:  # mixed types: keep first-seen order
        return values


def _panels(n: int, height: float, width: float, sharey: bool = True):
    Figure = figure_class()
    ncols = min(n, MAX_WRAP)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _caption(over_keys, pooled, level, what="mean") -> str:
    parts = [
        f"{what} ± {level:.0%} CI over {', '.join(over_keys)}"
        if level and over_keys
        else f"{what} ± {level:.0%} CI over runs"
        if level
        else what
    ]
    if pooled:
        parts.append("pooled over " + ", ".join(pooled))
    return "; ".join(parts)


def _title(fig, text: str, fontsize: float = 9) -> None:
    """The caption as the figure's title, wrapped to the figure's width so no part is cut off.

    matplotlib never wraps a title: a caption wider than the figure loses its
    ends (the "pooled over ..." part) in notebooks, PNGs and the report alike.
    Constrained layout then makes room for however many lines it takes.
    """
    import textwrap

    # An average glyph of DejaVu Sans is about 0.6 em wide; keep a margin on both sides.
    chars = max(20, int(fig.get_figwidth() * 72 * 0.92 / (0.6 * fontsize)))
    fig.suptitle("\n".join(textwrap.wrap(text, chars, break_on_hyphens=False)), fontsize=fontsize)


def plot(
    df,
    y: str,
    x: str,
    hue: str | None = None,
    col: str | None = None,
    over="seed",
    include=DEFAULT_INCLUDE,
    ci: float | None = 0.95,
    logx: bool | None = None,
    height: float = 3.2,
    width: float = 4.2,
    warn: bool = True,
    stacklevel: int = 2,
):
    """Mean of ``y`` against ``x`` with CI error bars over replicates; returns a Figure.

    One line per ``hue`` value, one panel per ``col`` value. The x axis is
    logarithmic when ``logx`` is True, or by default when ``x`` is positive
    and spans more than two decades. Varying params that are none of x, hue,
    col or the replicate keys are pooled, and the caption says so.
    """
    _not_empty(df)
    keys = list(dict.fromkeys(k for k in (x, hue, col) if k is not None))
    table = summary(df, y, by=keys, over=over, include=include, ci=ci, agg=("mean", "std", "count"), warn=False)
    if warn:
        warn_excluded(table.attrs["excluded"], stacklevel=stacklevel)
    over_keys = table.attrs["over"]
    pooled = table.attrs["pooled"]
    if warn:
        warn_copies(table.attrs["copies"], [*keys, *pooled, *over_keys], stacklevel=stacklevel)

    drawn = table[table[f"{y}_count"] > 0]  # a cell with no completed run draws nothing
    # A None among numbers (optional(float) left unset) is a level of its own: draw categories.
    numeric = _numeric_axis(table[x]) and not drawn[x].isna().any()
    xs_all = _sorted_values(table[x])
    position: dict = {} if numeric else {_label(v): i for i, v in enumerate(xs_all)}
    log = _wants_log(drawn[x]) if (logx is None and numeric) else bool(logx and numeric)

    col_values = _sorted_values(table[col]) if col else [None]
    hue_values = _sorted_values(table[hue]) if hue else [None]
    fig, axes = _panels(len(col_values), height, width)
    for ax, cv in zip(axes, col_values):
        panel = table if col is None else table[_matches(table[col], cv)]
        for h_index, hv in enumerate(hue_values):
            rows = panel if hue is None else panel[_matches(panel[hue], hv)]
            rows = rows[rows[f"{y}_count"] > 0]
            if rows.empty:
                continue
            rows = rows.iloc[_order(rows[x], xs_all)]
            if numeric:
                xs = rows[x].to_numpy(dtype=float)
            else:  # categories: dodge the hues apart so their bars do not overlap
                shift = 0.08 * (h_index - (len(hue_values) - 1) / 2)
                xs = [position[_label(v)] + shift for v in rows[x]]
            mean = rows[f"{y}_mean"].to_numpy(dtype=float)
            yerr = None
            if ci:
                low = mean - rows[f"{y}_ci_low"].to_numpy(dtype=float)
                high = rows[f"{y}_ci_high"].to_numpy(dtype=float) - mean
                yerr = [_zero_nan(low), _zero_nan(high)]
            label = _label(hv) if hue else None
            ax.errorbar(
                xs,
                mean,
                yerr=yerr,
                marker="o",
                markersize=4,
                capsize=3,
                linewidth=1.4,
                label=label,
                linestyle="-" if numeric else "none",
            )
        if log:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(xs_all)))
            ax.set_xticklabels([_label(v) for v in xs_all])
            ax.set_xlim(-0.5, len(xs_all) - 0.5)
        if col:
            ax.set_title(f"{col}={_label(cv)}", fontsize=10)
        ax.set_xlabel(x)
        ax.grid(True, alpha=0.3)
        if hue:
            ax.legend(fontsize=8, title=hue, title_fontsize=8)
    axes[0].set_ylabel(y)
    _title(fig, _caption(over_keys, pooled, ci))
    return fig


def _not_empty(df) -> None:
    if len(df) == 0:
        raise ValueError("no runs to plot: the table is empty (check source=, --where or the mark)")


def _matches(column, value):
    if isinstance(value, float) and math.isnan(value):
        return column.isna()
    return column == value


def _order(column, ordered):
    rank = {_label(v): i for i, v in enumerate(ordered)}
    return sorted(range(len(column)), key=lambda i: rank.get(_label(column.iloc[i]), len(rank)))


def _zero_nan(arr):
    import numpy as np

    return np.where(np.isfinite(arr), arr, 0.0)


def metric_curves(info, metrics, metric: str, by=None, over="seed", include=DEFAULT_INCLUDE, ci: float | None = 0.95):
    """Per group and step: mean, std, count and CI of one metric over replicates (long table).

    The same replicate rule as ``summary``: runs sharing a cell and replicate
    key are one replicate (their mean at each step). ``count`` is the number
    of replicates behind a step, ``runs`` the runs; the CI is NaN below two
    replicates. When ``by`` leaves out a varying param, a ``pooled`` column
    (and ``attrs["pooled"]``) names the params pooled into each line.
    """
    import numpy as np
    import pandas as pd

    from exman.analysis.summaries import hashable

    _not_empty(info)
    keys = group_keys(info, by, over)
    over_keys = replicate_keys(info, over)
    cell = cell_keys(info, over, (), keys)
    rows = metrics[metrics["metric"] == metric]
    if rows.empty:
        known = sorted(metrics["metric"].unique()) if len(metrics) else []
        raise KeyError(f"no history for metric {metric!r}; logged metrics are: {', '.join(known) or '(none)'}")
    mask = status_mask(info, include)
    runs = info.loc[mask.to_numpy(), ["id", *dict.fromkeys([*cell, *over_keys])]]
    ids, copies = replicate_ids(runs, cell, over_keys)
    # Every run of a replicate is read as the replicate's first run; their values are averaged per step.
    runs = pd.DataFrame(
        {
            "id": runs["id"].to_numpy(),
            "__rep": runs["id"].to_numpy() if ids is None else runs["id"].to_numpy()[ids],
            **{k: hashable(runs[k]).to_numpy() for k in keys},
        }
    )
    data = rows[["id", "step", "value"]].merge(runs, on="id", how="inner")
    data["value"] = pd.to_numeric(data["value"], errors="coerce")
    data["__one"] = np.ones(len(data), dtype=np.int64)
    per_rep = (
        data.groupby(["__rep", "step"], sort=False).agg(value=("value", "mean"), runs=("__one", "sum")).reset_index()
    )
    per_rep = per_rep.merge(runs.drop(columns="id").drop_duplicates("__rep"), on="__rep", how="left")
    grouped = per_rep.groupby([*keys, "step"], dropna=False, sort=True, observed=True)
    out = grouped["value"].agg(["mean", "std", "count"])
    out["runs"] = grouped["runs"].sum()
    out = out.reset_index()
    if ci:
        half = half_width(out["std"].to_numpy(dtype=float), out["count"].to_numpy(dtype=float), ci)
        out["ci_low"] = out["mean"] - half
        out["ci_high"] = out["mean"] + half
    pooled = [c for c in cell if c not in keys]
    if pooled:
        out["pooled"] = ", ".join(pooled)
    out.attrs = {
        "by": keys,
        "over": over_keys,
        "pooled": pooled,
        "metric": metric,
        "level": ci,
        "excluded": excluded_counts(info, mask),
        "copies": copies,
        "replicate_keys": [*cell, *over_keys],
    }
    return out


def plot_metric(
    info,
    metrics,
    metric: str,
    by=None,
    over="seed",
    include=DEFAULT_INCLUDE,
    ci: float | None = 0.95,
    logy: bool = False,
    height: float = 3.6,
    width: float = 5.4,
    warn: bool = True,
    stacklevel: int = 2,
):
    """Learning curves: mean of ``metric`` per step, one line per ``by`` group, CI band over replicates.

    The band is drawn only where at least two replicates reach a step; the
    title names the params pooled into each line.
    """
    curves = metric_curves(info, metrics, metric, by=by, over=over, include=include, ci=ci)
    if warn:
        warn_excluded(curves.attrs["excluded"], stacklevel=stacklevel)
        warn_copies(curves.attrs["copies"], curves.attrs["replicate_keys"], stacklevel=stacklevel)
    keys = curves.attrs["by"]
    # A lone key as itself: pandas versions disagree on what a one-item list yields when iterated.
    by = keys[0] if len(keys) == 1 else keys
    groups = list(curves.groupby(by, dropna=False, sort=True, observed=True)) if keys else [((), curves)]
    many = len(groups) > 6
    # Many groups: legend beside the axes, and 20 colours so none repeats before the 21st line.
    fig, (ax,) = _panels(1, height, width + (2.6 if many else 0.0))
    colors = None
    if len(groups) > 10:
        from matplotlib import colormaps

        colors = colormaps["tab20"].colors  # type: ignore[attr-defined]  # tab20 is a ListedColormap
    for i, (key, rows) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{k}={_label(v)}" for k, v in zip(keys, key)) or metric
        color = colors[i % len(colors)] if colors else None
        (line,) = ax.plot(rows["step"], rows["mean"], linewidth=1.4, label=label, color=color)
        if ci:  # the CI is NaN below two replicates: no band there
            ax.fill_between(
                rows["step"],
                rows["ci_low"],
                rows["ci_high"],
                where=rows["count"].to_numpy() >= 2,
                color=line.get_color(),
                alpha=0.2,
                linewidth=0,
            )
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if keys and many:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    elif keys:
        ax.legend(fontsize=7)
    _title(fig, _caption(curves.attrs["over"], curves.attrs["pooled"], ci))
    return fig


__all__ = ["plot", "plot_metric", "metric_curves", "figure_class", "PLOT_EXTRA"]
