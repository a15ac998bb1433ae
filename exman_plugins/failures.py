"""Failed runs: ``traceback.txt`` in the run folder, then the folder moves to ``fails/``."""

from __future__ import annotations

import os

from exman import hookimpl
from exman.fs import atomic_write
from exman.layout import TRACEBACK_FILE


@hookimpl
def on_run_end(run, status, exc_info):
    if exc_info is not None and status in ("failed", "interrupted"):
        import traceback  # only an ending with an exception needs it

        atomic_write(run.path / TRACEBACK_FILE, "".join(traceback.format_exception(*exc_info)))


@hookimpl(trylast=True)
def on_fail(run):
    # Last, so index and mark links are already gone when the folder moves.
    target = run.parser.fails / run.path.name
    os.rename(run.path, target)
    run.path = target
