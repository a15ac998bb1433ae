"""Answers of scipy.stats and statsmodels calls, remembered on disk and keyed on their exact inputs.

A report re-rendered over unchanged runs asks the libraries the same questions again:
the same t quantiles, the same Welch tests on the same means, SDs and sizes, the same
Holm correction of the same p-values. Answering them from a file spares importing
scipy.stats (a second or more, most of the command). Nothing here computes a statistic:
every answer was computed by the library, in an earlier process.

A key is the call's name and the exact value of every input (``repr`` of a float
round-trips its bits), so a changed sample is a new key and can never get an old
answer. A file is used only with the scipy and statsmodels it was written with
(their installed files' path, size and modification time, as Python's bytecode cache
checks a source); any other file (missing, damaged, foreign) is an empty memo.
Only code run inside ``using(memo)`` consults it: elsewhere the calls go straight to the library.
Reading no root, this module is given its file (``exman report`` keeps it in the root's ``.exman/``).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os

FORMAT = 1
LIBRARIES = ("scipy", "statsmodels")
MAX_ENTRIES = 20000  # about 2 MB of JSON; the least recently used answers go first

_active: contextvars.ContextVar[Memo | None] = contextvars.ContextVar("exman_statcache", default=None)


class Memo:
    """``{key: [float, ...]}`` answers; ``used`` keeps this process's keys in order of use."""

    def __init__(self, entries: dict | None = None, stamp: list | None = None):
        self.entries = dict(entries or {})
        self.stamp = stamp
        self.used: dict = {}
        self.added = 0

    def get(self, key: str):
        found = self.entries.get(key)
        if found is not None:
            self.used[key] = None
        return found

    def put(self, key: str, values: list) -> None:
        self.entries[key] = values
        self.used[key] = None
        self.added += 1


@contextlib.contextmanager
def using(memo: Memo | None):
    """Within the block, ``elementwise`` and ``whole`` answer from ``memo`` and remember new answers in it."""
    token = _active.set(memo)
    try:
        yield memo
    finally:
        _active.reset(token)


def _key(name: str, values) -> str:
    return name + ":" + ",".join(repr(float(v)) for v in values)


def elementwise(name: str, compute, *columns, outputs: int = 1) -> list:
    """``compute(*columns)`` for a function that works element by element on broadcast arrays
    and returns ``outputs`` arrays (one, or a tuple); a list of 1-d float arrays, one per output.

    With a memo active, only the elements whose exact inputs it does not know are computed
    (one call, on those elements), so ``compute`` (and its import) is skipped when it knows them all.
    """
    import numpy as np

    memo = _active.get()
    if memo is None:
        return [np.ravel(out) for out in _outputs(compute(*columns))]
    cols = [np.ravel(c) for c in np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in columns])]
    keys = [_key(name, row) for row in zip(*cols)]
    found = [memo.get(k) for k in keys]
    todo = [i for i, f in enumerate(found) if f is None or len(f) != outputs]
    if todo:
        fresh = _outputs(compute(*[c[todo] for c in cols]))
        for j, i in enumerate(todo):
            found[i] = [float(np.ravel(out)[j]) for out in fresh]
            memo.put(keys[i], found[i])
    return [np.array([f[k] for f in found], dtype=float) for k in range(outputs)]


def whole(name: str, compute, values, outputs: int | None = None):
    """``compute(values)`` for a function of a whole 1-d vector returning a vector: as long as
    ``values`` (a multiple-testing correction), or ``outputs`` long (a test of the samples in
    ``values``). Answered from the active memo when it has seen exactly this vector."""
    import numpy as np

    memo = _active.get()
    if memo is None:
        return compute(values)
    values = np.asarray(values, dtype=float)
    key = _key(name, values)
    found = memo.get(key)
    if found is None or len(found) != (len(values) if outputs is None else outputs):
        found = [float(v) for v in np.asarray(compute(values), dtype=float)]
        memo.put(key, found)
    return np.array(found, dtype=float)


def _outputs(result) -> list:
    import numpy as np

    if isinstance(result, tuple):
        return [np.asarray(r, dtype=float) for r in result]
    return [np.asarray(result, dtype=float)]


def stamp() -> list | None:
    """What identifies the installed scipy and statsmodels, without importing them; None if one is missing."""
    import importlib.util

    out = []
    for name in LIBRARIES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.origin:
            return None
        try:
            st = os.stat(spec.origin)
        except OSError:
            return None
        out.append([name, spec.origin, st.st_size, st.st_mtime_ns])
    return out


def load(path) -> Memo:
    """The memo saved at ``path`` if it was written with the libraries installed now, else an empty one."""
    from exman.fs import read_regular

    current = stamp()
    try:
        data = json.loads(read_regular(path)[0])  # a FIFO planted there must not hang the report
        ok = data["format"] == FORMAT and data["stamp"] == current and current is not None
        entries = data["entries"] if ok else {}
        if not isinstance(entries, dict) or not all(
            isinstance(v, list) and all(isinstance(x, float) for x in v) for v in entries.values()
        ):
            entries = {}
    except (OSError, ValueError, KeyError, TypeError):  # none yet, damaged or foreign: start empty
        entries = {}
    return Memo(entries, current)


def save(path, memo: Memo) -> None:
    """Write ``memo`` when it learnt something: the answers used now last, at most ``MAX_ENTRIES``.

    Skipped when the folder is a link leading elsewhere or cannot be written (someone else's root)."""
    from exman.fs import atomic_write

    if not memo.added or memo.stamp is None:
        return
    order = [k for k in memo.entries if k not in memo.used] + [k for k in memo.used if k in memo.entries]
    entries = {k: memo.entries[k] for k in order[-MAX_ENTRIES:]}
    folder = os.path.dirname(os.fspath(path))
    if os.path.islink(folder):
        return
    try:
        os.makedirs(folder, exist_ok=True)
        atomic_write(path, json.dumps({"format": FORMAT, "stamp": memo.stamp, "entries": entries}))
    except OSError:
        pass


__all__ = ["Memo", "using", "elementwise", "whole", "load", "save", "stamp"]
