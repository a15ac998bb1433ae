"""A third-party-style plugin with settings of its own: ``greeting`` and ``greeting_count``."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from exman import hookimpl

written: WeakKeyDictionary = WeakKeyDictionary()  # run -> the file written for it


@hookimpl
def add_settings(register):
    register("greeting", "hello")
    register("greeting_count", 1, convert=int)


@hookimpl
def on_run_start(run):
    settings = run.parser.settings
    path = run.path / "greeting.txt"
    path.write_text(" ".join([settings["greeting"]] * settings["greeting_count"]))
    written[run] = path
