"""How the commands print: tables, values, durations.

On a terminal a table is drawn with ``rich`` when it is installed
(``pip install exman[rich]``); piped, or without rich, it is plain text in
aligned columns that ``cut``/``awk`` can read. rich is imported only here and
only when a terminal table is drawn.
"""
from __future__ import annotations

import datetime
import math

import click


def is_terminal() -> bool:
    stream = click.get_text_stream("stdout")
    return bool(getattr(stream, "isatty", lambda: False)())


def duration(seconds) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
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


def value(v) -> str:
    """One cell: short floats, readable times, empty for missing."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:.4g}"
    if hasattr(v, "item") and not isinstance(v, (str, bytes)) and getattr(v, "ndim", None) == 0:
        return value(v.item())  # numpy scalar
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    text = str(v)
    if text in ("NaT", "nan", "<NA>"):
        return ""
    return text


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) or type(v).__module__ == "numpy" and not isinstance(v, str)


def table(headers: list[str], rows: list[list], *, right: set[int] = frozenset(), title: str | None = None) -> None:
    """Print rows (already strings) under headers; columns in ``right`` are right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    if is_terminal():
        try:
            from rich import box
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            pass
        else:
            t = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                      collapse_padding=True)
            for i, h in enumerate(headers):
                t.add_column(h, justify="right" if i in right else "left", no_wrap=True)
            for row in rows:
                t.add_row(*row)
            console = Console(markup=False, highlight=False)
            # Too wide for the terminal: let lines run on, as plain text would, rather
            # than fold or cut values.
            needed = sum(widths) + 2 * (len(widths) - 1)
            if needed > console.width:
                console = Console(markup=False, highlight=False, width=needed)
            console.print(t)
            return
    if title:
        click.echo(title)

    def line(cells):
        out = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return "  ".join(out).rstrip()

    click.echo(line(headers))
    for row in rows:
        click.echo(line(row))


def pairs(items: list[tuple[str, str]], indent: str = "") -> None:
    """``key  value`` lines with the keys aligned."""
    if not items:
        return
    width = max(len(k) for k, _ in items)
    for k, v in items:
        click.echo(f"{indent}{k:<{width}}  {v}".rstrip())


def heading(text: str) -> None:
    click.secho(text, bold=True)


def can_prompt() -> bool:
    """Only ask when someone can answer: stdin is a terminal."""
    stdin = click.get_text_stream("stdin")
    return bool(getattr(stdin, "isatty", lambda: False)())
