"""The Index's on-disk cache: ``<root>/.exman/index-cache.pickle``.

It maps each run folder (relative to the root) to the entry read from it
(see ``exman.index.read``) and the stat key of the files the entry came from.
A warm ``info()`` re-reads only runs whose key changed, so the cache can never
serve stale data: it is a memo of file contents keyed by the files' stats.
``index-frame-*.pickle`` holds the last full answer (the stat keys it came
from first, then the packed frame and what ``Index`` needs to patch it).

Safety: a shared root may be writable by a whole team, so the file is loaded
with an unpickler that refuses every global: it can only build plain lists,
tuples, dicts, strings and numbers, never call code. A file that fails to load
for any reason (corrupt, truncated, another format, another exman) is ignored
and rewritten. Writes go through ``exman.fs.atomic_write``: concurrent writers
cannot corrupt it, the last one wins.
"""

from __future__ import annotations

import io
import os
import pickle
import time

from exman.fs import atomic_write, read_regular
from exman.layout import STATE

CACHE_FILE = "index-cache.pickle"
# The last full answer of info() (and of info(include_failed=True)), packed.
FRAME_FILE = "index-frame-{}.pickle"
# Bump when the entry layout in exman.index.read changes.
FORMAT = 7  # 2: an entry's PID holds (pid, boot id, pid namespace); 3: exman's own options are columns; 4: SLURM;
# 5: sweep_cell is a nullable integer column; 6, 7: a column holding unconverted defaults has one kind of value (7: text)


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in the index cache")


def cache_path(root, name: str = CACHE_FILE) -> str:
    return os.path.join(os.fspath(root), STATE, name)


def header(plugins: list[str]) -> dict:
    # Local times are cached as numbers, so a change of time zone invalidates them.
    return {"format": FORMAT, "plugins": sorted(plugins), "tz": [time.timezone, time.altzone, list(time.tzname)]}


def load(root, expected: dict, name: str = CACHE_FILE) -> dict:
    """The cached state, or an empty dict when there is no usable cache."""
    try:
        data = read_regular(cache_path(root, name))[0]
    except OSError:
        return {}
    try:
        head, entries = _PlainUnpickler(io.BytesIO(data)).load()
    except Exception:  # corrupt or foreign: rebuilt silently
        return {}
    if head != expected or not isinstance(entries, dict):
        return {}
    return entries


def save(root, head: dict, entries: dict, name: str = CACHE_FILE, tail=None) -> None:
    """Write ``(head, entries)``, then ``tail`` as a second pickle that ``load_tail`` reads on demand."""
    path = cache_path(root, name)
    if os.path.islink(os.path.dirname(path)):
        return  # .exman/ leads outside the root: keep no cache there
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = pickle.dumps((head, entries), protocol=pickle.HIGHEST_PROTOCOL)
        if tail is not None:
            data += pickle.dumps(tail, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write(path, data)
    except OSError:
        pass  # a read-only root (someone else's) still gets a correct, uncached answer


def load_split(root, expected: dict, name: str):
    """``(state, read_tail)``: the first pickle now, the second only when ``read_tail()`` is called."""
    try:
        data = read_regular(cache_path(root, name))[0]
    except OSError:
        return {}, None
    stream = io.BytesIO(data)
    unpickler = _PlainUnpickler(stream)
    try:
        head, state = unpickler.load()
    except Exception:
        return {}, None
    if head != expected or not isinstance(state, dict):
        return {}, None
    # A fresh unpickler: memo indices restart with each pickle.
    return state, _PlainUnpickler(stream).load
