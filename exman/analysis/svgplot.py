"""Small line charts as inline SVG for the HTML report, written directly (no matplotlib).

A report draws a dozen charts or more; through matplotlib each costs a layout
and a render (about a second for the whole page, plus the import). These are
plain ``<svg>`` elements with real ``<text>``: the browser lays out the
labels, they stay searchable and selectable, and the page needs no font of its
own. Titles and legends are HTML around the chart (``exman.analysis.report``), so long
names wrap instead of being cut. Values are written by ``exman.formatting``.
"""

from __future__ import annotations

import html
import math

from exman.formatting import text

# matplotlib's tab10, so a chart here looks like ``Index.plot`` in a notebook.
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MISSING = "missing"
LABEL = 14  # characters of a category's tick label before it is shortened (full text on hover)


def color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def label(v) -> str:
    """A category as the chart writes it: the one formatter, missing said as such."""
    return text(v, missing=MISSING)


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(0.0 if abs(t) < step * 1e-9 else t)
        t += step
    return ticks


def _log_ticks(lo: float, hi: float) -> list[float]:
    return [
        10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) if lo <= 10.0**e <= hi
    ] or [lo, hi]


class Axes:
    """Data to pixel coordinates: numeric (linear or log) or categorical x, linear y."""

    def __init__(
        self, width, height, xs, ys, categories=None, log=False, yrange=None, left=54, right=10, top=10, bottom=34
    ):
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = left, width - right, top, height - bottom
        self.categories, self.log = categories, log
        ys = [y for y in ys if y is not None and math.isfinite(y)]
        lo, hi = yrange or ((min(ys), max(ys)) if ys else (0.0, 1.0))
        pad = (hi - lo) * 0.06 or abs(hi) * 0.06 or 1.0
        self.y0, self.y1 = lo - pad, hi + pad
        if categories is None:
            xs = [x for x in xs if x is not None and math.isfinite(x) and (x > 0 or not log)]
            lo, hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
            if log:
                lo, hi = math.log10(lo), math.log10(hi)
            pad = (hi - lo) * 0.05 or 0.5
            self.x0, self.x1 = lo - pad, hi + pad
        else:
            self.x0, self.x1 = -0.5, len(categories) - 0.5

    def x(self, v: float) -> float:
        if self.log and self.categories is None:
            v = math.log10(v)
        return self.left + (v - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def y(self, v: float) -> float:
        return self.bottom - (v - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)

    def frame(self, xlabel: str, ylabel: str) -> list[str]:
        out = [
            f'<rect x="{self.left}" y="{self.top}" width="{self.right - self.left}" '
            f'height="{self.bottom - self.top}" fill="none" stroke="#999"/>'
        ]
        for t in _nice_ticks(self.y0, self.y1):
            y = self.y(t)
            out.append(f'<line x1="{self.left}" x2="{self.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
            out.append(f'<text x="{self.left - 4}" y="{y + 4:.1f}" text-anchor="end">{html.escape(text(t))}</text>')
        if self.categories is not None:
            ticks: list = [(i, label(c)) for i, c in enumerate(self.categories)]
        elif self.log:
            ticks = [(t, text(t)) for t in _log_ticks(10**self.x0, 10**self.x1)]
        else:
            ticks = [(t, text(t)) for t in _nice_ticks(self.x0, self.x1)]
        for t, name in ticks:
            x = self.x(t)
            short = name if len(name) <= LABEL else name[: LABEL - 1] + "…"
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.top}" y2="{self.bottom}" stroke="#eee"/>')
            out.append(
                f'<text x="{x:.1f}" y="{self.bottom + 14}" text-anchor="middle">'
                f"<title>{html.escape(name)}</title>{html.escape(short)}</text>"
            )
        out.append(
            f'<text x="{(self.left + self.right) / 2:.1f}" y="{self.height - 3}" '
            f'text-anchor="middle">{html.escape(xlabel)}</text>'
        )
        out.append(
            f'<text transform="translate(12 {(self.top + self.bottom) / 2:.1f}) rotate(-90)" '
            f'text-anchor="middle">{html.escape(ylabel)}</text>'
        )
        return out


def _svg(width: int, height: int, body: list[str], name: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{html.escape(name)}" font-size="11" '
        f'font-family="system-ui, sans-serif">{"".join(body)}</svg>'
    )


def points(series, *, xlabel: str, ylabel: str, categories=None, log=False, width=420, height=280) -> str:
    """Means with interval bars: ``series`` is ``[(color, [(x, mean, low, high), ...]), ...]``;
    x is a number, or an index into ``categories``. Numeric series are joined by lines."""
    xs = [p[0] for _, pts in series for p in pts]
    ys = [v for _, pts in series for p in pts for v in p[1:]]
    ax = Axes(width, height, xs, ys, categories=categories, log=log)
    body = ax.frame(xlabel, ylabel)
    n = len(series)
    for i, (c, pts) in enumerate(series):
        shift = 0.08 * (i - (n - 1) / 2) if categories is not None else 0.0  # dodge overlapping bars
        coords = [(ax.x(x + shift), ax.y(m), low, high) for x, m, low, high in pts if _finite(m)]
        if categories is None and len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in coords)
            body.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="1.4"/>')
        for x, y, low, high in coords:
            if _finite(low) and _finite(high):
                body.append(
                    f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{ax.y(low):.1f}" y2="{ax.y(high):.1f}" stroke="{c}"/>'
                )
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{c}"/>')
    return _svg(width, height, body, f"{ylabel} against {xlabel}")


def curves(series, *, xlabel: str, ylabel: str, bands: bool = True, width=420, height=280, yrange=None) -> str:
    """Lines over steps: ``series`` is ``[(color, steps, means, lows, highs), ...]``; a band
    between low and high when ``bands``; ``yrange`` (low, high) to share a scale between charts."""
    xs = [s for _, steps, *_ in series for s in steps]
    ys = [v for _, _, means, lows, highs in series for v in (*means, *(lows + highs if bands else []))]
    ax = Axes(width, height, xs, ys, yrange=yrange)
    body = ax.frame(xlabel, ylabel)
    for c, steps, means, lows, highs in series:
        if bands:
            upper = [(ax.x(s), ax.y(h)) for s, h in zip(steps, highs) if _finite(h)]
            lower = [(ax.x(s), ax.y(lo)) for s, lo in zip(steps, lows) if _finite(lo)]
            if len(upper) > 1 and len(lower) == len(upper):
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in upper + lower[::-1])
                body.append(f'<polygon points="{path}" fill="{c}" fill-opacity="0.18" stroke="none"/>')
        line = " ".join(f"{ax.x(s):.1f},{ax.y(m):.1f}" for s, m in zip(steps, means) if _finite(m))
        body.append(f'<polyline points="{line}" fill="none" stroke="{c}" stroke-width="1.4"/>')
    return _svg(width, height, body, f"{ylabel} per {xlabel}")


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


__all__ = ["points", "curves", "color", "label", "COLORS", "MISSING"]
