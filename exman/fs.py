"""File-system primitives every writer in exman shares.

Atomic writes, relative links and name checks live here so that no plugin
writes a file in place or builds a path from user input by hand.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

# Set by ExParser(shared=True), or by a root that is already shared (see is_shared).
_SHARED = {"on": False}


def set_shared(on: bool) -> None:
    """umask 002 semantics for this process: group-writable, never world-writable.

    Folders exman makes in a shared root keep the root's setgid bit (Linux
    inherits it), so files stay in the team's group.
    """
    _SHARED["on"] = bool(on)
    if on:
        os.umask(0o002)


def is_shared(root: os.PathLike) -> bool:
    """A root made with ``shared=True``: setgid and group-writable.

    Lets a team member's script, or the command line, that did not say
    ``shared=True`` keep a shared root shared.
    """
    try:
        mode = os.stat(root).st_mode
    except OSError:
        return False
    return bool(mode & stat.S_ISGID) and bool(mode & stat.S_IWGRP)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename in the same folder.

    A reader sees the old file or the new one, never half of either. The temp
    file is created with mode 0o666 so the kernel applies the umask in force
    now (002 in a shared root): no chmod, and no reading the umask, which
    would briefly set it to 0 for every thread of the process.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    while True:
        tmp = path.parent / f".{path.name}.{os.urandom(4).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def open_regular(path: str | os.PathLike, flags: int = os.O_RDONLY, mode: int = 0o666) -> int:
    """``os.open`` that refuses anything but a regular file, without blocking on it.

    A FIFO planted in a root would block a reader (or a writer) forever, a link to
    ``/dev/zero`` would never end: both raise ``OSError`` ("not a regular file").
    """
    fd = os.open(path, flags | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        if flags & (os.O_WRONLY | os.O_RDWR) == 0:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | os.PathLike, offset: int = 0) -> tuple:
    """``(bytes from offset, stat)`` of a regular file in one read (a file that grows meanwhile
    is read to its end); anything else raises ``OSError``."""
    fd = open_regular(path)
    try:
        st = os.fstat(fd)
        want = max(st.st_size - offset, 0) + 4096
        data = os.pread(fd, want, offset)
        if len(data) == want:  # the file grew since fstat: read the rest
            chunks = [data]
            while True:
                offset += len(chunks[-1])
                chunk = os.pread(fd, 1 << 20, offset)
                if not chunk:
                    break
                chunks.append(chunk)
            data = b"".join(chunks)
        return data, st
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike) -> str:
    """A small regular file's text (UTF-8); ``OSError`` for anything else, ``ValueError`` if not UTF-8."""
    return read_regular(path)[0].decode("utf-8")


def lock_now(fd: int, *, shared: bool = False, tries: int = 1) -> bool:
    """``flock`` ``fd`` without waiting on a holder: True when taken, False when another process
    still holds it after ``tries`` attempts 5 ms apart (a checker's shared lock lasts a moment).
    Other errors (a file system without locks) are raised."""
    import fcntl
    import time

    kind = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    for attempt in range(tries):
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt < tries - 1:
                time.sleep(0.005)
    return False


def held(path: str | os.PathLike) -> bytes | None:
    """The first bytes of ``path`` when a process holds an exclusive ``flock`` on it, else None
    (free, missing, unreadable, or no locks here). Our shared lock is released at once."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        return None if lock_now(fd, shared=True) else os.pread(fd, 200, 0)
    except OSError:
        return None
    finally:
        os.close(fd)


def is_temp(name: str) -> bool:
    """A temp file ``atomic_write`` left behind when its process was killed."""
    return name.startswith(".") and name.endswith(".tmp")


def relative_symlink(link: Path, target: Path, *, directory: bool = False) -> None:
    """Create ``link`` pointing at ``target`` by a relative path, so a moved root still works."""
    rel = os.path.relpath(target, link.parent)
    os.symlink(rel, link, target_is_directory=directory)


def is_control(c: str) -> bool:
    """A control character: C0, DEL, C1, or U+2028/9, which break lines too (str.splitlines, terminals)."""
    return c < " " or "\x7f" <= c <= "\x9f" or c in "\u2028\u2029"


def check_component(value: str, what: str) -> str:
    """Refuse a user-given name that could leave its folder; return it unchanged."""
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise ValueError(f"{what} {value!r} must be a plain name: no '/', '..', or NUL")
    if any(map(is_control, value)):
        raise ValueError(f"{what} {value!r} must not hold a control character (newline, tab, ...)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Undecodable bytes from argv: no YAML or JSON file could record the name.
        raise ValueError(f"{what} {value!r} is not valid UTF-8 text") from None
    if len(value.encode("utf-8")) > 200:
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


def make_folders(base: Path, parts) -> Path:
    """``base/part/...``, made where missing; a part that is a symlink (or a file) is refused
    rather than followed, since it could lead out of the root."""
    folder = Path(base)
    for part in parts:
        folder = folder / part
        try:
            os.mkdir(folder)
        except FileExistsError:
            if os.path.islink(folder):
                raise OSError(errno.ELOOP, "a symlink; exman writes only inside its root", os.fspath(folder)) from None
            if not folder.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), os.fspath(folder)) from None
    return folder


def check_layout_folder(folder: Path, root: Path) -> None:
    """Refuse a layout folder of ``root`` that is not a real folder: a symlink would
    have exman write outside the root (``exman delete`` and ``mark`` refuse it too)."""
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode):
        raise OSError(
            errno.ELOOP,
            f"{os.path.basename(folder)}/ is a symlink; exman writes only inside its root "
            f"(link the whole root instead)",
            os.fspath(folder),
        )
    if folder != root and not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"exman: {folder} exists and is not a folder")
