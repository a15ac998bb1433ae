"""File-system primitives every writer in exman shares.

Atomic writes, relative links and name checks live here so that no plugin
writes a file in place or builds a path from user input by hand.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Set by ExParser(shared=True): files 0o664 and folders 0o2775 instead of the umask's choice.
_SHARED = {"on": False}


def set_shared(on: bool) -> None:
    _SHARED["on"] = bool(on)
    if on:
        # umask 002 semantics: group-writable, never world-writable.
        os.umask(0o002)


def atomic_write(path: os.PathLike, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename in the same folder.

    A reader sees the old file or the new one, never half of either.
    """
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as fh:
            fh.write(data)
        # mkstemp makes 0600 files; give them what a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    # os.umask can only be read by setting it; cache per process.
    if "umask" not in _SHARED:
        mask = os.umask(0)
        os.umask(mask)
        _SHARED["umask"] = mask
    return 0o002 if _SHARED["on"] else _SHARED["umask"]


def relative_symlink(link: Path, target: Path, *, directory: bool = False) -> None:
    """Create ``link`` pointing at ``target`` by a relative path, so a moved root still works."""
    rel = os.path.relpath(target, link.parent)
    os.symlink(rel, link, target_is_directory=directory)


def check_component(value: str, what: str) -> str:
    """Refuse a user-given name that could leave its folder; return it unchanged."""
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise ValueError(f"{what} {value!r} must be a plain name: no '/', '..', or NUL")
    if len(value.encode("utf-8", "surrogateescape")) > 200:
        raise ValueError(f"{what} is longer than 200 bytes")
    return value


def check_relative_key(value: str, what: str) -> tuple[str, ...]:
    """Split a mark key like ``a/b/c`` into safe parts, refusing absolute paths and ``..``."""
    if not value or value.startswith("/") or "\0" in value:
        raise ValueError(f"{what} {value!r} must be a relative path without NUL")
    parts = tuple(p for p in value.split("/") if p)
    for part in parts:
        if part in (".", ".."):
            raise ValueError(f"{what} {value!r} must not contain '.' or '..'")
        check_component(part, what)
    if not parts:
        raise ValueError(f"{what} {value!r} is empty")
    return parts


LAYOUT = ("runs", "index", "marked", "tmp", "fails")


def is_root(path: os.PathLike) -> bool:
    """A folder exman made: it has ``runs/`` and ``index/`` folders."""
    path = Path(path)
    return (path / "runs").is_dir() and (path / "index").is_dir()
