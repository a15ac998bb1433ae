"""Beside every scenario script: ``show(args)`` records what the script got from parse_args,
``note(label, ...)`` anything else it saw.

One JSON line per call, appended to the file named by ``$EXMAN_COMPAT_SHOW``:
each attribute's type name and, for plain data, its repr. Objects (the
safe_experiment context, ...) are recorded by type name only: their repr
carries a module path and an address.
"""
import json
import os
import pathlib

PLAIN = (type(None), bool, int, float, str, pathlib.PurePath)


def _plain(value):
    if isinstance(value, PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _append(record):
    with open(os.environ["EXMAN_COMPAT_SHOW"], "a") as fh:
        fh.write(json.dumps(record) + "\n")


def show(args, label=""):
    values = {
        key: {"type": type(value).__name__, "repr": repr(value) if _plain(value) else "<object>"}
        for key, value in vars(args).items()
    }
    _append({"label": label, "values": values, "root in args": "root" in args})


def note(label, **facts):
    """Something the script saw that is not a namespace: an exception it caught, a value it computed."""
    _append({"label": label, **{k: repr(v) for k, v in facts.items()}})
