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

from exman.hookspecs import hookimpl
from exman.parser import ExParser, simpleroot
from exman.types import ArgumentError, optional

__version__ = "0.2.0"

__all__ = ["ExParser", "Index", "simpleroot", "optional", "ArgumentError", "hookimpl", "sweep", "__version__"]


def __getattr__(name):
    # Lazy: pandas costs ~0.6 s and a training script never needs it.
    if name == "Index":
        from exman.index import Index

        return Index
    if name == "sweep":
        # The module itself: callable as exman.sweep(...), with .status and .resume.
        import exman.sweep as module

        return module
    raise AttributeError(f"module 'exman' has no attribute {name!r}")
