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
import re
import warnings

from exman.analysis import replicate_keys, summary, varying
from exman.formatting import text

MAX_ROWS = 2000  # runs table rows; beyond that the page gets slow to open
MAX_CURVES = 16  # groups in one learning-curve plot before it is skipped

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; }
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
figure { margin: 0; } figure svg { max-width: 100%; height: auto; }
figcaption { color: #666; font-size: 12px; }
.note { color: #666; font-size: 12.5px; }
"""


def _is_text(value) -> bool:
    return isinstance(value, str) or value is None


def table_html(df, columns, row_class=None, status_column="status") -> str:
    """A plain HTML table of ``df[columns]``, every cell escaped."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for i, row in enumerate(df[columns].itertuples(index=False, name=None)):
        cells = []
        for col, value in zip(columns, row):
            cls = "s" if _is_text(value) else ""
            if col == status_column and isinstance(value, str):
                cls += f" status-{html.escape(value)}"
            cells.append(f'<td class="{cls.strip()}">{html.escape(text(value))}</td>')
        extra = f' class="{row_class(i)}"' if row_class and row_class(i) else ""
        body.append(f"<tr{extra}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_ID = re.compile(r'\bid="([^"]+)"')


def scoped_svg(svg: str, prefix: str) -> str:
    """Prefix every id in one SVG so several can share a page without clashing."""
    for ident in set(_ID.findall(svg)):
        new = f"{prefix}-{ident}"
        svg = svg.replace(f'id="{ident}"', f'id="{new}"')
        svg = svg.replace(f'#{ident}"', f'#{new}"').replace(f"#{ident})", f"#{new})")
    return svg


def _figure(fig, prefix: str, caption: str) -> str:
    from exman.plotting import to_svg

    svg = scoped_svg(to_svg(fig), prefix)
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def pick_hue(info, x: str, params: list[str], most: int = 6) -> str | None:
    """The other varying param with the fewest values (at most ``most``), to draw as lines."""
    from exman.analysis import hashable

    counts = [(hashable(info[p]).nunique(dropna=False), i, p) for i, p in enumerate(params) if p != x]
    counts = [c for c in counts if c[0] <= most]
    return min(counts)[2] if counts else None


def interest_columns(df, interest=None) -> list[str]:
    """Given interest columns, else every numeric metric column."""
    import pandas as pd

    if interest:
        return list(interest)
    return [m for m in df.attrs.get("metrics", []) if m in df and pd.api.types.is_numeric_dtype(df[m])]


def render(info, metrics=None, interest=None, over="seed", title="exman report", subtitle="") -> str:
    """The page, as a string. ``info`` is ``Index.info()``; ``metrics`` is ``Index.metrics()`` or None."""
    from exman.plotting import figure_class, plot, plot_metric

    interest = interest_columns(info, interest)
    missing = [c for c in interest if c not in info.columns]
    if missing:
        raise KeyError(f"no column(s) {', '.join(missing)}; metrics are: {', '.join(info.attrs.get('metrics', []))}")
    figure_class()  # fail early, with the extra's name, before any work
    params = varying(info)
    over_keys = replicate_keys(info, over)
    xs = [p for p in params if p not in over_keys]
    counts = info["status"].value_counts().to_dict() if "status" in info else {}
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<div class="meta">{html.escape(subtitle)}{" · " if subtitle else ""}{len(info)} runs '
        f"({html.escape(', '.join(f'{v} {k}' for k, v in counts.items()))}) · generated {html.escape(now)}</div>",
    ]
    if over_keys:
        parts.append(f'<p class="note">Means and 95% t-intervals over {html.escape(", ".join(over_keys))}; '
                     "only completed runs are aggregated.</p>")

    figure_no = 0
    for y in interest:
        parts.append(f"<h2>{html.escape(y)}</h2>")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the header already counts runs by status
            table = summary(info, y, over=over, warn=False)
        columns = [*table.attrs["by"], "runs", "excluded", f"{y}_mean", f"{y}_std", f"{y}_ci_low", f"{y}_ci_high"]
        flags = table["missing_replicates"].tolist()
        parts.append(table_html(table, columns, row_class=lambda i: "missing" if flags[i] else ""))
        if any(flags):
            parts.append('<p class="note">Highlighted rows have fewer runs than the largest group.</p>')
        figures = []
        for x in xs:
            figure_no += 1
            hue = pick_hue(info, x, xs)
            fig = plot(info, y, x, hue=hue, over=over, warn=False)
            caption = f"{y} against {x}" + (f", one line per {hue}" if hue else "")
            figures.append(_figure(fig, f"f{figure_no}", caption))
        if metrics is not None and len(metrics) and (metrics["metric"] == y).any():
            groups = len(table)
            if groups <= MAX_CURVES:
                figure_no += 1
                fig = plot_metric(info, metrics, y, over=over, warn=False)
                figures.append(_figure(fig, f"f{figure_no}", f"{y} per step"))
            else:
                parts.append(f'<p class="note">Learning curves left out: {groups} groups is too many lines.</p>')
        if figures:
            parts.append(f'<div class="plots">{"".join(figures)}</div>')
        elif not xs:
            parts.append('<p class="note">No parameter varies across these runs: nothing to plot against.</p>')

    parts.append("<h2>Runs</h2>")
    shown = info if len(info) <= MAX_ROWS else info.tail(MAX_ROWS)
    if len(shown) < len(info):
        parts.append(f'<p class="note">The {MAX_ROWS} most recent of {len(info)} runs.</p>')
    base = [c for c in ("id", "name", "status", "start", "duration") if c in info.columns]
    last = [m for m in info.attrs.get("metrics", []) if m in info.columns]
    parts.append(table_html(shown, [*base, *params, *last]))
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


__all__ = ["render", "table_html", "scoped_svg", "interest_columns"]
