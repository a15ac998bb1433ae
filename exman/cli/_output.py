"""How the commands print: tables fitted to the terminal, aligned pairs, headings.

The implementation of ``exman.cli``'s printing toolkit (import the names from
there); values are written by ``exman.formatting``, the one formatter.

On a terminal a table is drawn with ``rich`` when it is installed
(``pip install exman[rich]``); piped, or without rich, it is plain text in
aligned columns that ``cut``/``awk`` can read. rich is imported only here and
only when a terminal table is drawn.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Collection

import click


def is_terminal() -> bool:
    # sys.stdout, not click.get_text_stream (deprecated in click 8.5): click's test runner swaps it too.
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def width() -> int | None:
    """The width to fit tables in: $COLUMNS, else the terminal's; None when piped (no limit)."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if is_terminal():
        return shutil.get_terminal_size().columns
    return None


LONG = 16  # a text cell longer than this is shortened before any column is left out


def fit(headers: list[str], rows: list[list[str]], limit: int, *, right=frozenset(), drop_order=None):
    """Make a table at most ``limit`` characters wide: shorten text cells longer
    than ``LONG`` (ending in "…"), then leave out whole columns in ``drop_order``
    (default: from the right, never the first). Numbers are never cut: a cut
    number reads as another number. Returns (headers, rows, right, left out).
    """
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    keep = list(range(len(headers)))

    def total():
        return sum(widths[i] for i in keep) + 2 * (len(keep) - 1)

    for i in sorted(keep, key=lambda i: -widths[i]):
        if total() <= limit:
            break
        if i not in right and widths[i] > LONG:
            widths[i] = max(len(headers[i]), LONG, widths[i] - (total() - limit))
    order = list(reversed(keep[1:])) if drop_order is None else list(drop_order)
    dropped = set()
    for i in order:
        if total() <= limit:
            break
        keep.remove(i)
        dropped.add(i)

    def cut(cell, w):
        return cell if len(cell) <= w else cell[: w - 1] + "…"

    new_rows = [[cut(r[i], widths[i]) for i in keep] for r in rows]
    new_right = {j for j, i in enumerate(keep) if i in right}
    return [headers[i] for i in keep], new_rows, new_right, [headers[i] for i in sorted(dropped)]


def table(
    headers: list[str], rows: list[list], *, right: Collection[int] = frozenset(), title: str | None = None
) -> None:
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
            t = Table(
                title=title,
                header_style="bold",
                box=box.SIMPLE_HEAD,
                show_edge=False,
                pad_edge=False,
                collapse_padding=True,
            )
            for i, h in enumerate(headers):
                t.add_column(h, justify="right" if i in right else "left", no_wrap=True)
            for row in rows:
                t.add_row(*row)
            # The table was fitted to the terminal by the caller (or asked to be wide): never
            # let rich fold or cut values; a wide table runs on, as plain text would.
            needed = sum(widths) + 2 * (len(widths) - 1)
            console = Console(markup=False, highlight=False)
            console = Console(markup=False, highlight=False, width=max(needed, console.width))
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
    return bool(getattr(sys.stdin, "isatty", lambda: False)())
