"""``automark=[...]``: link each run under ``marked/<arg>/<value>/.../<run name>``.

A name that is not an argument adds a path level of its own (a constant
label); a value is made a safe single path component first.
"""

from __future__ import annotations

import os

from exman import hookimpl
from exman.fs import is_control, make_folders, relative_symlink


def safe_value(value) -> str:
    # A control character (a newline in a value) would make a mark no command can name.
    text = "".join("_" if c in "/\\" or is_control(c) else c for c in str(value))
    if text in ("", ".", ".."):
        text = f"_{text}_"
    # File names are limited in bytes (255 on most file systems), not characters.
    return text.encode("utf-8")[:200].decode("utf-8", "ignore")


def mark_parts(automark, params) -> list[str]:
    parts = []
    for key in automark:
        parts.append(safe_value(key))
        if key in params:
            parts.append(safe_value(params[key]))
    return parts


@hookimpl
def add_settings(register):
    register("automark", [], convert=list)


@hookimpl
def on_run_start(run):
    automark = run.parser.settings["automark"]
    if run.tmp or not automark:
        return
    folder = make_folders(run.parser.marked, mark_parts(automark, run.params))
    link = folder / run.name
    try:
        relative_symlink(link, run.path, directory=True)
    except FileExistsError:
        # A run continued in its folder (a requeued SLURM task) was marked when it first started.
        if not (run.restarts and os.path.realpath(link) == os.path.realpath(run.path)):
            raise
    run.links.append(link)
