"""One self-contained static HTML page about a set of runs.

Owns the page: a header, per interest column its summary table and its plot
against each varying parameter (inline SVG), learning curves, and the table
of runs. No script, no stylesheet or font from elsewhere, no network: the file
can be mailed or archived and still open. Reading runs is the caller's job
(``exman report`` passes ``Index.info()`` and ``Index.metrics()``).
"""

from __future__ import annotations

import datetime
import html
import warnings

from exman.analysis import significance
from exman.analysis.summaries import replicate_keys, summary, varying
from exman.analysis.svgplot import label
from exman.analysis.tables import table_html
from exman.runinfo import given_name

MAX_ROWS = 2000  # runs table rows; beyond that the page gets slow to open
MAX_CURVES = 8  # groups drawn as lines of one learning-curve chart; more get a chart each
BANDS = 4  # interval bands drawn in one chart up to this many lines (more overlap into a block)
MAX_PANELS = 100  # one small chart per group up to this many groups

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222;
       overflow-wrap: anywhere; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: #666; margin-bottom: 12px; }
table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 12px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; position: sticky; top: 0; }
td.s { text-align: left; }
tr.missing td { background: #fff4e0; }
.status-completed { color: #1a7f37; } .status-failed { color: #cf222e; }
.status-running { color: #0969da; } .status-interrupted, .status-crashed, .status-stale { color: #9a6700; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; max-width: 100%; } figure svg { display: block; max-width: 100%; height: auto; }
figcaption { color: #666; font-size: 12px; max-width: 420px; }
figure .title { font-weight: 600; font-size: 13px; max-width: 420px; }
.legend { font-size: 12px; max-width: 420px; } .legend span { display: inline-block; margin-right: 10px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 10px; }
.panels figure .title { font-weight: normal; font-size: 12px; }
.scroll { overflow: auto; max-width: 100%; max-height: 80vh; margin: 6px 0 12px; }
.scroll table { margin: 0; }
td.na { color: #999; text-align: center; }
.note { color: #666; font-size: 12.5px; }
"""


def pick_hue(info, x: str, params: list[str], most: int = 6) -> str | None:
    """The other varying param with the fewest values (at most ``most``), to draw as lines."""
    from exman.analysis.summaries import hashable

    counts = [(hashable(info[p]).nunique(dropna=False), i, p) for i, p in enumerate(params) if p != x]
    counts = [c for c in counts if c[0] <= most]
    return min(counts)[2] if counts else None


def counters(metrics) -> set:
    """Metrics that only count steps (``epoch``, ``global_step``): in every run a whole
    number growing by the same amount each logged step. They are not results to study."""
    import numpy as np
    import pandas as pd

    if metrics is None or not len(metrics):
        return set()
    out = set()
    for name, rows in metrics.groupby("metric", sort=False):
        value = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=float)
        step = rows["step"].to_numpy(dtype=float)
        ids = rows["id"].to_numpy()
        if len(rows) < 2 or not np.isfinite(value).all() or (value != np.round(value)).any():
            continue
        frame = pd.DataFrame({"id": ids, "step": step, "value": value}).sort_values(["id", "step"])
        first = frame.groupby("id").transform("first")
        last = frame.groupby("id").transform("last")
        span = (last["step"] - first["step"]).to_numpy()
        if not (span > 0).any():
            continue
        slope = np.where(span > 0, (last["value"] - first["value"]).to_numpy() / np.where(span > 0, span, 1), 0)
        line = first["value"].to_numpy() + slope * (frame["step"] - first["step"]).to_numpy()
        if (slope[span > 0] > 0).all() and np.allclose(line, frame["value"].to_numpy()):
            out.add(name)
    return out


def interest_columns(df, interest=None, metrics=None) -> list[str]:
    """Given interest columns, else every numeric metric that is not a step counter."""
    import pandas as pd

    if interest:
        return list(interest)
    skip = counters(metrics)
    return [
        m for m in df.attrs.get("metrics", []) if m in df and m not in skip and pd.api.types.is_numeric_dtype(df[m])
    ]


def _legend(entries) -> str:
    items = "".join(f'<span><i style="background:{c}"></i>{html.escape(name)}</span>' for c, name in entries)
    return f'<div class="legend">{items}</div>' if entries else ""


def _chart(title: str, svg: str, legend=(), note: str = "") -> str:
    caption = f"<figcaption>{html.escape(note)}</figcaption>" if note else ""
    return f'<figure><div class="title">{html.escape(title)}</div>{svg}{_legend(legend)}{caption}</figure>'


def _against(info, y, x, hue, over, pooled, table) -> str:
    """``y`` against ``x``: means and intervals over ``over``, one colour per ``hue`` value.

    ``table`` is ``summary(info, [..., y, ...], by=[x, hue], over=over)``: one for every interest."""
    from exman.analysis import svgplot
    from exman.analysis.plotting import _caption, _numeric_axis, _sorted_values

    table = table[table[f"{y}_count"] > 0]
    numeric = _numeric_axis(table[x]) and not table[x].isna().any()
    categories = None if numeric else _sorted_values(table[x])
    where = {} if categories is None else {svgplot.label(v): i for i, v in enumerate(categories)}
    log = False
    if numeric and len(table) > 1:
        xs_num = table[x].to_numpy(dtype=float)
        log = bool(xs_num.min() > 0 and xs_num.max() / xs_num.min() > 100)
    hues = _sorted_values(table[hue]) if hue else [None]
    series, legend = [], []
    for i, hv in enumerate(hues):
        rows = (
            table
            if hue is None
            else table[table[hue].isna() if svgplot.label(hv) == svgplot.MISSING else table[hue] == hv]
        )
        pts = []
        for xv, m, lo, hi in zip(rows[x], rows[f"{y}_mean"], rows[f"{y}_ci_low"], rows[f"{y}_ci_high"]):
            pts.append((float(xv) if numeric else where[svgplot.label(xv)], m, lo, hi))
        pts.sort()
        series.append((svgplot.color(i), pts))
        if hue:
            legend.append((svgplot.color(i), f"{hue}={svgplot.label(hv)}"))
    svg = svgplot.points(series, xlabel=x, ylabel=y, categories=categories, log=log)
    return _chart(
        f"{y} against {x}" + (f", one colour per {hue}" if hue else ""),
        svg,
        legend,
        _caption(replicate_keys(info, over), pooled, 0.95),
    )


def _learning_curves(info, metrics, y, over) -> tuple[str, str, str]:
    """(chart, panels, note): one chart of every group's mean per step when there are few
    groups (intervals drawn for up to ``BANDS`` of them), else one small chart per group."""
    from exman.analysis import svgplot
    from exman.analysis.plotting import metric_curves

    curves = metric_curves(info, metrics, y, over=over)
    attrs, curves.attrs = curves.attrs, {}  # else pandas deep-copies them into every group below
    keys = attrs["by"]
    groups = list(curves.groupby(keys, dropna=False, sort=True, observed=True)) if keys else [((), curves)]
    if len(groups) > MAX_PANELS:
        return "", "", f"Learning curves left out: {len(groups)} groups is too many to draw."
    series, legend = [], []
    for i, (key, rows) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        name = ", ".join(f"{k}={svgplot.label(v)}" for k, v in zip(keys, key)) or y
        series.append(
            (
                svgplot.color(i),
                rows["step"].tolist(),
                rows["mean"].tolist(),
                rows["ci_low"].tolist(),
                rows["ci_high"].tolist(),
            )
        )
        legend.append((svgplot.color(i), name))
    # without a replicate key each run is one
    note = f"mean ± 95% CI over {', '.join(attrs['over'])}" if attrs["over"] else "mean ± 95% CI over runs"
    if len(groups) <= MAX_CURVES:
        bands = len(groups) <= BANDS
        if not bands:
            note = note.replace("mean ± 95% CI", "mean") + f" (no CI bands: more than {BANDS} lines)"
        svg = svgplot.curves(series, xlabel="step", ylabel=y, bands=bands)
        return _chart(f"{y} per step", svg, legend, note), "", ""
    # Many groups: small multiples on one y scale, so the panels compare at a glance.
    ys = [v for _, _, means, lows, highs in series for v in (*means, *lows, *highs)]
    ys = [v for v in ys if v == v]
    panels = []
    for (_color, steps, means, lows, highs), (_, name) in zip(series, legend):
        svg = svgplot.curves(
            [(svgplot.color(0), steps, means, lows, highs)],
            xlabel="step",
            ylabel=y,
            width=240,
            height=160,
            yrange=(min(ys), max(ys)) if ys else None,
        )
        panels.append(_chart(name, svg))
    title = f"<h3>{html.escape(y)} per step, one chart per group ({len(groups)}); {html.escape(note)}</h3>"
    return "", f'{title}<div class="panels">{"".join(panels)}</div>', ""


def _slim(info):
    """``info`` with only the attrs the page reads: pandas deep-copies a frame's attrs into
    every column and slice taken from it, hundreds of times a page."""
    attrs = {
        "params": list(info.attrs.get("params", [])),
        "metrics": list(info.attrs.get("metrics", [])),
        # meta_column reads a missing key as itself: only the moved ones (a clash with a param) count
        "meta": {k: v for k, v in info.attrs.get("meta", {}).items() if k != v},
    }
    slim = info.copy(deep=False)
    slim.attrs = attrs
    return slim


def render(info, metrics=None, interest=None, over="seed", title="exman report", subtitle="", volatile=()) -> str:
    """The page, as a string. ``info`` is ``Index.info()``; ``metrics`` is ``Index.metrics()`` or None.

    ``volatile``: params that do not change a result (declared ``volatile=True``):
    never plotted against, pooled like replicates.
    """
    from exman.analysis.columns import meta_column
    from exman.analysis.summaries import names

    info = _slim(info)
    interest = interest_columns(info, interest, metrics)
    missing = [c for c in interest if c not in info.columns]
    if missing:
        raise KeyError(f"no column(s) {', '.join(missing)}; metrics are: {', '.join(info.attrs.get('metrics', []))}")
    params = varying(info)
    over = [*names(over), *[v for v in volatile if v in params and v not in names(over)]]
    over_keys = replicate_keys(info, over)
    xs = [p for p in params if p not in over_keys]
    status = meta_column(info, "status")
    counts = info[status].value_counts().to_dict() if status in info else {}
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<div class="meta">{html.escape(subtitle)}{" · " if subtitle else ""}{len(info)} runs '
        f"({html.escape(', '.join(f'{v} {k}' for k, v in counts.items()))}) · generated {html.escape(now)}</div>",
    ]
    if over_keys:
        parts.append(
            f'<p class="note">Means and 95% t-intervals over {html.escape(", ".join(over_keys))}; '
            "only completed runs are aggregated.</p>"
        )

    hues = {x: pick_hue(info, x, xs) for x in xs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the header already counts runs by status
        # One summary for every interest at once (the groups are the same), and one per plot axis.
        table = summary(info, interest, over=over, warn=False) if interest else None
        against = (
            {
                x: summary(
                    info,
                    interest,
                    by=[k for k in (x, hues[x]) if k],
                    over=over,
                    agg=("mean", "std", "count"),
                    warn=False,
                )
                for x in xs
            }
            if interest
            else {}
        )
    for t in against.values():
        t.attrs = {}  # not read below; pandas would deep-copy them into every column taken
    by, copies = [], {}
    if table is not None:
        by, copies, table.attrs = table.attrs["by"], table.attrs["copies"], {}
        for key in by:  # a group without the param (added later) says so
            if table[key].isna().any():
                table[key] = [label(v) for v in table[key].tolist()]
        flags = table["missing_replicates"].tolist()

    for y in interest:
        assert table is not None  # there is an interest
        parts.append(f"<h2>{html.escape(y)}</h2>")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the header already counts runs by status
            columns = [
                *by,
                "runs",
                "replicates",
                "excluded",
                f"{y}_mean",
                f"{y}_std",
                f"{y}_ci_low",
                f"{y}_ci_high",
            ]
            parts.append(table_html(table, columns, row_class=lambda i: "missing" if flags[i] else ""))
            parts.extend(significance.copies_note(copies))
            if any(flags):
                parts.append('<p class="note">Highlighted rows have fewer replicates than the largest group.</p>')
            figures = []
            for x in xs:
                pooled = [p for p in xs if p not in (x, hues[x])]
                figures.append(_against(info, y, x, hues[x], over, pooled, against[x]))
            panels = note = ""
            if metrics is not None and len(metrics) and (metrics["metric"] == y).any():
                chart, panels, note = _learning_curves(info, metrics, y, over)
                figures += [chart] if chart else []
        if figures:
            parts.append(f'<div class="plots">{"".join(figures)}</div>')
        elif not xs:
            parts.append('<p class="note">No parameter varies across these runs: nothing to plot against.</p>')
        parts += [panels] if panels else []
        parts += [f'<p class="note">{html.escape(note)}</p>'] if note else []
        parts.extend(significance.section(info, y, xs, over))

    parts.append("<h2>Runs</h2>")
    shown = info if len(info) <= MAX_ROWS else info.tail(MAX_ROWS)
    if len(shown) < len(info):
        parts.append(f'<p class="note">The {MAX_ROWS} most recent of {len(info)} runs.</p>')
    shown = shown.copy()
    name = meta_column(info, "name")
    if name in shown.columns:
        shown[name] = [given_name(v) for v in shown[name].tolist()]
    base = [
        c for c in (meta_column(info, k) for k in ("id", "name", "status", "start", "duration")) if c in info.columns
    ]
    if name in base and shown[name].isna().all():
        base.remove(name)  # nobody named a run
    last = [m for m in info.attrs.get("metrics", []) if m in info.columns]
    parts.append(table_html(shown, [*base, *params, *last], status_column=status))
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


__all__ = ["render", "table_html", "interest_columns"]
