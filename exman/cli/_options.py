"""Options several commands share, declared once so they read and complete alike."""

from __future__ import annotations

import click

from exman.cli._runs import complete_marks


def mark_option(help: str = "only the runs marked KEY (a/b/c allowed)"):
    """``-m/--mark KEY``, completing the root's marks; the value arrives as ``mark``."""
    return click.option("-m", "--mark", "mark", metavar="KEY", shell_complete=complete_marks, help=help)


def where_option(help: str = 'pandas query on the runs table, e.g. "lr < 0.1"'):
    """``-w/--where EXPR`` (run it with ``filter_runs``); the value arrives as ``where``."""
    return click.option("-w", "--where", "where", metavar="EXPR", help=help)


def over_option(help: str = "replicate parameter (repeatable)"):
    """``--over KEY`` (repeatable, default ``seed``): the replicate keys; the value arrives as ``over``."""
    return click.option("--over", multiple=True, default=["seed"], show_default=True, metavar="KEY", help=help)


def format_option(*choices: str):
    """``--format [A|B|...]``, the first choice the default; the value arrives as ``fmt``."""
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=choices[0], show_default=True)
