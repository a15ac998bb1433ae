"""The Index's on-disk cache: ``<root>/.exman/index-cache.pickle``.

It maps each run folder (relative to the root) to the entry read from it
(see ``exman.index_read``) and the stat key of the files the entry came from.
A warm ``info()`` re-reads only runs whose key changed, so the cache can never
serve stale data: it is a memo of file contents keyed by the files' stats.

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

from exman.fs import atomic_write

CACHE_FILE = "index-cache.pickle"
# Bump when the entry layout in exman.index_read changes.
FORMAT = 1


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in the index cache")


def cache_path(root) -> str:
    return os.path.join(os.fspath(root), ".exman", CACHE_FILE)


def header(plugins: list[str]) -> dict:
    # Local times are cached as numbers, so a change of time zone invalidates them.
    return {"format": FORMAT, "plugins": sorted(plugins), "tz": [time.timezone, time.altzone, list(time.tzname)]}


def load(root, expected: dict) -> dict:
    """The cached entries, or an empty dict when there is no usable cache."""
    try:
        with open(cache_path(root), "rb") as fh:
            data = fh.read()
    except OSError:
        return {}
    try:
        head, entries = _PlainUnpickler(io.BytesIO(data)).load()
    except Exception:  # corrupt or foreign: rebuilt silently
        return {}
    if head != expected or not isinstance(entries, dict):
        return {}
    return entries


def save(root, head: dict, entries: dict) -> None:
    path = cache_path(root)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, pickle.dumps((head, entries), protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        pass  # a read-only root (someone else's) still gets a correct, uncached answer
