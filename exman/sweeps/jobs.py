"""One sweep job: a cell's command run as a child process in its own session.

Every launcher uses these, and remote workers (dask, submitit) unpickle a
``Job`` and call ``run_job``, so this module imports nothing beyond the
standard library and ``exman.sweeps.grid``.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from exman.fs import atomic_write
from exman.sweeps.grid import describe

# A child that ignores SIGTERM this long after a stop gets SIGKILL.
GRACE = float(os.environ.get("EXMAN_SWEEP_GRACE", "30"))


@dataclass
class Job:
    """One cell to run; picklable, so dask and submitit can ship it to a worker."""

    sweep_id: str
    cell: int
    params: dict
    argv: list
    cwd: str
    env: dict  # added to the worker's environment
    log: str  # the child's stdout+stderr (what happens before ExParser takes over, too)

    def __str__(self) -> str:
        return f"cell {self.cell} {describe(self.params)}"


def job_slots(options: dict) -> int:
    """How many jobs a launcher runs at a time: ``--jobs``, else the CPU count."""
    return max(1, int(options.get("jobs") or os.cpu_count() or 1))


def start_job(job: Job) -> subprocess.Popen:
    """Start the child in its own session, so signals reach its whole process group and only it."""
    Path(job.log).parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(job.env)
    with open(job.log, "wb") as out:
        out.write(f"$ {shlex.join(job.argv)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(job.argv, cwd=job.cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            out.write(f"exman sweep: cannot start: {exc}\n".encode())
            raise
    return proc


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _pid_file(job: Job) -> Path:
    return Path(job.log).with_suffix(".pid")


def _write_pid(job: Job, pid: int) -> None:
    # Lets a launcher whose workers run on this host stop the child directly.
    try:
        # Atomic: a reader that saw half a pid would signal some other process group.
        atomic_write(_pid_file(job), f"{os.uname().nodename} {pid}\n")
    except OSError:
        pass


def stop_local_child(job: Job, sig: int = signal.SIGTERM) -> bool:
    """Signal the child of ``job`` if it runs on this host; False when it cannot be reached."""
    try:
        host, pid = _pid_file(job).read_text().split()
    except (OSError, ValueError):
        return False
    if host != os.uname().nodename:
        return False
    try:
        os.killpg(int(pid), sig)
    except (ProcessLookupError, PermissionError):
        pass
    return True


class _Stop(Exception):
    def __init__(self, signum):
        self.signum = signum


def run_job(job: Job, should_stop=None, poll: float = 0.5) -> int | None:
    """Run one job to the end and return its exit status (blocking; for remote workers).

    ``should_stop()`` is polled; when it turns true the child gets SIGTERM and is
    waited for. In a main thread SIGTERM/SIGINT to this process do the same (a
    SLURM ``scancel``, submitit's cancel). Returns None if stopped before starting.
    """
    if should_stop is not None and should_stop():
        return None
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        stops = []

        def raise_stop(signum, frame):
            # Once only: SLURM signals twice, and a second _Stop would escape _terminate_and_wait.
            stops.append(signum)
            if len(stops) == 1:
                raise _Stop(signum)

        for sig in (signal.SIGTERM, signal.SIGINT):
            handlers[sig] = signal.signal(sig, raise_stop)
    proc = None
    try:
        proc = start_job(job)
        _write_pid(job, proc.pid)
        while True:
            try:
                return proc.wait(timeout=poll)
            except subprocess.TimeoutExpired:
                pass
            if should_stop is not None and should_stop():
                return _terminate_and_wait(proc)
    except _Stop:
        return _terminate_and_wait(proc) if proc is not None else None
    finally:
        for sig, old in handlers.items():
            signal.signal(sig, old)
        try:
            _pid_file(job).unlink()
        except OSError:
            pass


def _terminate_and_wait(proc: subprocess.Popen) -> int:
    signal_group(proc, signal.SIGTERM)
    try:
        return proc.wait(timeout=GRACE)
    except subprocess.TimeoutExpired:
        signal_group(proc, signal.SIGKILL)
        return proc.wait()
