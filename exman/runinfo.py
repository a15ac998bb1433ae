"""A run's status in ``run.json``: reading it as of now, and recording an ending.

The one rule that turns a recorded ``running`` into ``crashed`` (its pid is
gone on this host) or ``stale`` (no heartbeat from another host for
``STALE_AFTER`` seconds), and the one way an ending is written into
``run.json`` (the metadata plugin at the end of a run, ``doctor --fix`` for a
crashed run, a stopped sweep for a child killed early). The Index, the command
line and sweeps all come here, so they agree on every run. Standard library
only: training scripts, the command line's quick commands and sweeps must not
import pandas.
"""
from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path

from exman.fs import atomic_write

RUN_FILE = "run.json"  # written by exman_plugins.metadata; its mtime is the heartbeat

# A run on another host whose run.json heartbeat is older than this is `stale`.
# It must exceed the writers' EXMAN_HEARTBEAT (60 s by default).
STALE_AFTER = float(os.environ.get("EXMAN_STALE_AFTER", "300"))


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
    """Whether a process ``pid`` exists on this host."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, owned by someone else
        return True
    return True


def live_status(status, host, pid, heartbeat: float | None, now: float, this_host: str) -> str:
    """A run's status as of ``now``: ``running`` turns ``crashed`` (its pid gone on this
    host) or ``stale`` (run.json's mtime, the heartbeat, too old on another host)."""
    if status is None:
        return "unknown"
    if status != "running":
        return status
    if host == this_host:
        return "running" if alive(pid) else "crashed"
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
    return live_status(status, meta.get("host"), meta.get("pid"), beat, time.time(), os.uname().nodename)


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
    file = Path(folder) / RUN_FILE
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
        beat = os.stat(file).st_mtime if at_heartbeat else None
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict) or meta.get("status") != "running":
        return False  # it ended while we looked
    end = datetime.datetime.fromtimestamp(beat) if beat is not None else datetime.datetime.now()
    end_record(meta, status, end.astimezone())
    write_record(folder, meta)
    return True
