"""exman: record every run of an argparse script, find it again, analyse it.

Writing a plugin takes three steps::

    # my_plugin.py
    import exman
    from exman.fs import atomic_write

    @exman.hookimpl
    def on_run_start(run):
        atomic_write(run.path / "hello.txt", f"run {run.id}\\n")

    # pyproject.toml of your distribution
    [project.entry-points.exman]
    hello = "my_plugin"

Every hook is listed, with who calls it and when, in ``exman.hookspecs``.
Importing this package stays cheap: pandas loads only when ``Index`` is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exman.markers import hookimpl
from exman.types import ArgumentError, optional
from exman.version import __version__

if TYPE_CHECKING:  # pragma: no cover - loaded lazily below
    from exman.index import Index
    from exman.parser import ExParser, simpleroot
    from exman.sweeps import sweep


__all__ = ["ExParser", "Index", "simpleroot", "optional", "ArgumentError", "hookimpl", "sweep", "__version__"]


def __getattr__(name):
    # Lazy: a plugin's `from exman import hookimpl` must not load the parser (configargparse),
    # and pandas costs ~0.6 s that a training script never needs.
    if name in ("ExParser", "simpleroot"):
        from exman import parser

        return getattr(parser, name)
    if name == "Index":
        from exman.index import Index

        return Index
    if name == "sweep":
        # A plain function, with .resume, .status, .decisions and .expand.
        from exman.sweeps import sweep

        return sweep
    raise AttributeError(f"module 'exman' has no attribute {name!r}")
