"""``run.json``: the machine record of a run, beside ``params.yaml``.

It carries status, times, command line, host, user, pid, versions, the typed
params and the argparse schema, so the Index can read one small JSON file per
run instead of parsing YAML and guessing types. ``params.yaml`` stays the
human and ``--config`` file; ``params_stat`` lets the Index notice a
``params.yaml`` edited by hand after the run.

While a run is ``running`` a daemon thread touches ``run.json`` every
``EXMAN_HEARTBEAT`` seconds (default 60): its mtime is the heartbeat that tells
a live run on another host from a dead one.
"""

from __future__ import annotations

import _thread
import datetime
import os
import sys
from weakref import WeakKeyDictionary

from exman import hookimpl, slurm
from exman.runinfo import RUN_FILE, end_record, env_seconds, place, write_record

FORMAT = 1

# run -> its run.json record while this process runs it.
_records: WeakKeyDictionary = WeakKeyDictionary()


# getpass, socket and platform would cost a training script ~10 ms of imports
# for three strings; these builtins give the same answers.
def _user() -> str:
    import pwd  # a builtin module: free to import

    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a container without a passwd entry
        return str(os.getuid())


def write(run) -> None:
    write_record(run.path, _records[run])


@hookimpl(tryfirst=True)
def on_run_start(run):
    # First, before index links and marks: a process killed at any later point
    # leaves a run that says "running" with its pid, so it reads as crashed.
    from exman.version import __version__

    if run.restarts:
        _continue(run)
        return
    stat = None
    if run.params_file is not None:
        st = os.stat(run.params_file)
        stat = [st.st_mtime_ns, st.st_size]
    extra = {k: v for k, v in run.record.items() if k not in run.params}
    _records[run] = {
        "format": FORMAT,
        "id": run.id,
        "name": run.name,
        "status": "running",
        "start": run.time.astimezone().isoformat(timespec="microseconds"),
        "end": None,
        "duration": None,
        "argv": list(sys.argv),
        "cwd": _cwd(),
        "host": os.uname().nodename,
        "user": _user(),
        "pid": os.getpid(),
        # Where the pid means this process: the liveness rule checks it only from there.
        "boot_id": place()[0],
        "pid_ns": place()[1],
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "executable": sys.executable,  # so `exman rerun` uses the same interpreter
        "exman": __version__,
        # Set by `exman sweep` for its children: which sweep, which grid cell.
        "sweep": os.environ.get("EXMAN_SWEEP_ID") or None,
        "sweep_cell": os.environ.get("EXMAN_SWEEP_CELL") or None,
        "slurm": slurm.record(),
        "tmp": run.tmp,
        "params": run.params,
        "extra": extra,
        "schema": run.parser.schema(),
        "params_file": run.params_file.name if run.params_file is not None else None,
        "params_stat": stat,
    }
    write(run)
    _Heartbeat.watch(run)


def _continue(run) -> None:
    """A run continued in its folder (a requeued SLURM task): running again, here, its earlier
    record kept (start, params, schema), the restart counted; metrics and log.txt are appended."""
    import json

    from exman.fs import read_text

    record = _records[run] = json.loads(read_text(run.path / RUN_FILE))
    for key in ("end", "duration", "reason"):
        record.pop(key, None)
    record.update(
        status="running",
        end=None,
        duration=None,
        argv=list(sys.argv),
        cwd=_cwd(),
        host=os.uname().nodename,
        user=_user(),
        pid=os.getpid(),
        boot_id=place()[0],
        pid_ns=place()[1],
        slurm=slurm.record(),
        restarts=run.restarts,
    )
    write(run)
    _Heartbeat.watch(run)


def _reason(status, exc_info) -> str | None:
    """Why an interrupted run stopped: a SLURM time limit, requeue, preemption or cancel; else the signal."""
    exc = exc_info[1] if exc_info else None
    if status != "interrupted" or exc is None:
        return None
    if getattr(exc, "reason", None):
        return exc.reason
    signum = getattr(exc, "signum", None)
    if signum is None:
        return "KeyboardInterrupt" if isinstance(exc, KeyboardInterrupt) else None
    import signal

    return slurm.stop_reason(signum) or signal.Signals(signum).name


@hookimpl
def on_run_end(run, status, exc_info):
    record = _records[run]
    end_record(record, status, datetime.datetime.now().astimezone())
    reason = _reason(status, exc_info)
    if reason:
        record["reason"] = reason
    write(run)


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # the working folder was removed meanwhile; rerun then says it has none
        return None


class _Heartbeat:
    """One thread per process touches the run.json of every live run.

    Started with ``_thread``: like a daemon thread it never holds up the interpreter's exit,
    and a script that records a run does not pay for importing ``threading``.
    """

    runs: list = []
    started = False
    lock = _thread.allocate_lock()

    @classmethod
    def watch(cls, run) -> None:
        with cls.lock:
            cls.runs.append(run)
            if not cls.started:
                sleeping = _thread.allocate_lock()
                sleeping.acquire()
                _thread.start_new_thread(cls._beat, (sleeping,))
                # Wait until it sleeps, as threading's start() waits: a script racing the new thread
                # for the interpreter lock could take a signal just before its own sleep and miss it.
                sleeping.acquire()
                cls.started = True

    @classmethod
    def _beat(cls, sleeping) -> None:
        import time

        try:
            period = env_seconds("EXMAN_HEARTBEAT", 60.0, 0.05)  # 0 would busy-loop
        finally:
            sleeping.release()
        while True:
            time.sleep(period)
            with cls.lock:
                cls.runs = [r for r in cls.runs if not r.ended]
                live = list(cls.runs)
            for run in live:
                try:
                    os.utime(run.path / RUN_FILE)
                except FileNotFoundError:
                    try:
                        run.relocate()  # the root was renamed: follow it
                        os.utime(run.path / RUN_FILE)
                    except OSError:
                        pass  # deleted under us; nothing to keep alive
                except OSError:
                    pass
