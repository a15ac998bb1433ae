"""A run's status as of now: the one rule that turns a recorded ``running``
into ``crashed`` (its pid is gone on this host) or ``stale`` (no heartbeat
from another host for ``STALE_AFTER`` seconds).

The Index, the command line (``ls``, ``show``, ``doctor``, ``delete``) and
sweeps all ask here, so they agree on every run. Standard library only: the
command line's quick commands and sweeps must not import pandas.
"""
from __future__ import annotations

import os
import time

RUN_FILE = "run.json"  # written by exman_plugins.metadata; its mtime is the heartbeat

# A run on another host whose run.json heartbeat is older than this is `stale`.
# It must exceed the writers' EXMAN_HEARTBEAT (60 s by default).
STALE_AFTER = float(os.environ.get("EXMAN_STALE_AFTER", "300"))


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
