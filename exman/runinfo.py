"""A run's status in ``run.json``: reading it as of now, and recording an ending.

The one rule that turns a recorded ``running`` into ``crashed`` (its process
is gone, seen from its own boot and pid namespace) or ``stale`` (no heartbeat
for ``STALE_AFTER`` seconds, from anywhere else), and the one way an ending is written into
``run.json`` (the metadata plugin at the end of a run, ``doctor --fix`` for a
crashed run, a stopped sweep for a child killed early). The Index, the command
line and sweeps all come here, so they agree on every run. Standard library
only: training scripts, the command line's quick commands and sweeps must not
import pandas.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import time
from pathlib import Path

from exman.fs import atomic_write
from exman.layout import RUN_FILE, read_run_json, typed_meta  # noqa: F401 (typed_meta: imported from here too)


def env_seconds(name: str, default: float, minimum: float) -> float:
    """A duration from the environment; a bad one warns and keeps the default (never kills a script)."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= minimum or math.isinf(value):
        import warnings

        warnings.warn(
            f"exman: ignoring {name}={text!r} (expected seconds >= {minimum:g}); using {default:g}", stacklevel=2
        )
        return default
    return value


# A run whose run.json heartbeat is older than this is `stale` unless its pid can be checked.
# It must exceed the writers' EXMAN_HEARTBEAT (60 s by default).
STALE_AFTER = env_seconds("EXMAN_STALE_AFTER", 300.0, 1.0)
_PLACE: list = []


def place() -> tuple:
    """``(boot id, pid namespace inode)`` of this process: where a pid means this process.

    Two containers with the same host name differ in their pid namespace; two
    machines (or two boots of one) in their boot id. ``(None, None)`` without /proc.
    """
    if not _PLACE:
        try:
            with open("/proc/sys/kernel/random/boot_id", "rb") as fh:
                boot = fh.read().decode("ascii").strip()  # bytes: a text file would load the ascii codec
            _PLACE.append((boot, os.stat("/proc/self/ns/pid").st_ino))
        except OSError:
            _PLACE.append((None, None))
    return _PLACE[0]


def process_key(meta: dict):
    """What ``live_status`` needs of a record to check its process: ``(pid, boot id, pid ns)``,
    or the bare pid of a record made before exman recorded where it ran."""
    pid = meta.get("pid")
    pid = pid if isinstance(pid, int) and not isinstance(pid, bool) else None
    boot, ns = meta.get("boot_id"), meta.get("pid_ns")
    if isinstance(boot, str) and isinstance(ns, int) and not isinstance(ns, bool):
        return (pid, boot, ns)
    return pid


def given_name(name) -> str | None:
    """A run's ``--name`` from the Index's ``name`` column: the name itself, or a run
    folder's name (``<id>-<YYYY-mm-dd-HH-MM-SS>[-<name>]``) that ends in it; None without one.
    """
    if not isinstance(name, str) or not name:
        return None
    parts = name.split("-", 7)
    if len(parts) >= 7 and all(p.isdigit() for p in parts[:7]):
        return parts[7] if len(parts) == 8 and parts[7] else None
    return name


def alive(pid) -> bool:
    """Whether a process ``pid`` exists in this pid namespace and is not a zombie."""
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 1 << 31:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, owned by someone else
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return True  # no /proc here: kill's answer stands
    # "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ")".
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X")  # killed but not reaped: it runs no more


def live_status(status, host, pid, heartbeat: float | None, now: float, this_host: str) -> str:
    """A run's status as of ``now``; ``pid`` is ``process_key(meta)``.

    The heartbeat (run.json's mtime) is the authority. Only where the pid means
    the same process (same boot id and pid namespace as this one) does a pid
    check refine it: a gone or zombie process is ``crashed`` at once, a live one
    is ``running`` even with a late heartbeat. Elsewhere (another machine,
    container or pid namespace) a fresh heartbeat is ``running`` and an old one
    ``stale``. A record without its place (older exman) is checked by pid only
    once its heartbeat is old, and only on a host of the same name.
    """
    if status is None:
        return "unknown"
    if status != "running":
        return status
    if isinstance(pid, tuple):
        if pid[1:] == place():
            return "running" if alive(pid[0]) else "crashed"
    elif heartbeat is not None and now - heartbeat <= STALE_AFTER:
        return "running"
    elif host == this_host and not alive(pid):
        return "crashed"
    if heartbeat is None or now - heartbeat > STALE_AFTER:
        return "stale"
    return "running"


def run_status(folder, meta: dict, missing: str = "") -> str:
    """``live_status`` of the run in ``folder`` whose run.json holds ``meta``.

    ``missing`` stands for a record without a status. The heartbeat is
    ``folder/run.json``'s mtime, read only for a run recorded as running.
    """
    status = meta.get("status") or missing
    beat = None
    if status == "running":
        try:
            beat = os.stat(os.path.join(folder, RUN_FILE)).st_mtime
        except OSError:
            pass
    return live_status(status, meta.get("host"), process_key(meta), beat, time.time(), os.uname().nodename)


def end_record(meta: dict, status: str, end: datetime.datetime) -> None:
    """Set ``status``, ``end`` and the duration since ``start`` in a run.json dict."""
    meta["status"] = status
    meta["end"] = end.isoformat(timespec="microseconds")
    try:
        start = datetime.datetime.fromisoformat(meta["start"])
        meta["duration"] = round(max(0.0, (end - start).total_seconds()), 6)
    except (KeyError, TypeError, ValueError):
        pass


def write_record(folder, meta: dict) -> None:
    # No indent: json's C encoder only runs without one, and a run writes this on every start.
    atomic_write(Path(folder) / RUN_FILE, json.dumps(meta, ensure_ascii=False, allow_nan=False))


def end_dead_run(folder, status: str, *, at_heartbeat: bool) -> bool:
    """Record a run that died while ``running`` as ``status``; False when its run.json
    cannot be read or no longer says running. Its end is its last heartbeat
    (``at_heartbeat``) or now."""
    meta = read_run_json(folder)
    if meta.get("status") != "running":
        return False  # unreadable, or it ended while we looked
    try:
        beat = os.stat(Path(folder) / RUN_FILE).st_mtime if at_heartbeat else None
    except OSError:
        return False
    end = datetime.datetime.fromtimestamp(beat) if beat is not None else datetime.datetime.now()
    end_record(meta, status, end.astimezone())
    write_record(folder, meta)
    return True
