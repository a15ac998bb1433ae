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

from exman.fs import atomic_write, lock_now
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


def start_job(job: Job, extra_env: dict | None = None, note: str = "") -> subprocess.Popen:
    """Start the child in its own session, so signals reach its whole process group and only it.

    ``note`` (a rerun of the same task) appends to the cell's log instead of starting it anew."""
    Path(job.log).parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(job.env)
    env.update(extra_env or {})
    with open(job.log, "ab" if note else "wb") as out:
        _lock_output(out)
        if note:
            out.write(f"\n--- {note}\n".encode())
        out.write(f"$ {shlex.join(job.argv)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(
                job.argv,
                cwd=job.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            out.write(f"exman sweep: cannot start: {exc}\n".encode())
            raise
    return proc


def _lock_output(out) -> None:
    """Lock the log the child writes to: the lock lives as long as the child holds its stdout,
    so a status or resume can tell a child that is still starting (no run.json yet) from a
    cell nobody runs (``exman.sweeps.records.child_alive``), even after this process died."""
    try:
        lock_now(out.fileno(), tries=20)
    except OSError:
        pass  # a file system without locks: the child runs all the same


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def pid_file(job: Job) -> Path:
    """Where ``run_job`` writes the host and pid of the job's child while it runs."""
    return Path(job.log).with_suffix(".pid")


def _write_pid(job: Job, pid: int) -> None:
    # Lets a launcher whose workers run on this host stop the child directly.
    try:
        # Atomic: a reader that saw half a pid would signal some other process group.
        atomic_write(pid_file(job), f"{os.uname().nodename} {pid}\n")
    except OSError:
        pass


def child_started(job: Job) -> bool:
    """Whether ``run_job`` (on any worker that shares the root) runs the job's child now."""
    return pid_file(job).exists()


def stop_local_child(job: Job, sig: int = signal.SIGTERM) -> bool:
    """Signal the child of ``job`` if it runs on this host; False when it cannot be reached."""
    try:
        host, pid = pid_file(job).read_text().split()
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
    SLURM ``scancel``, submitit's cancel), and under SLURM so does SIGUSR2 (the
    time limit's warning), which is passed on as it is. Returns None if stopped
    before starting.

    Under SLURM a requeued task (``scontrol requeue``, preemption) leaves without a
    result (``SystemExit``), so the sweep keeps waiting for the rerun; the rerun
    continues the run the task started (``EXMAN_CONTINUE_RUN``) instead of a new one.
    """
    from exman import slurm

    if should_stop is not None and should_stop():
        return None
    extra_env, note = {}, ""
    if slurm.restarts() and slurm.job_id():
        earlier = _earlier_run(job)
        note = f"SLURM restart {slurm.restarts()} of task {slurm.job_id()}"
        if earlier is not None and earlier["status"] == "completed":
            return 0  # the run ended before the requeue reached it: it is not run twice
        if earlier is not None:
            extra_env[slurm.CONTINUE_ENV] = earlier["path"]
            note += f": continuing run {earlier.get('id')}"
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        stops = []

        def raise_stop(signum, frame):
            # Once only: SLURM signals twice, and a second _Stop would escape _terminate_and_wait.
            stops.append(signum)
            if len(stops) == 1:
                raise _Stop(signum)

        usr2 = [signal.SIGUSR2] if slurm.job_id() and hasattr(signal, "SIGUSR2") else []
        for sig in (signal.SIGTERM, signal.SIGINT, *usr2):
            handlers[sig] = signal.signal(sig, raise_stop)
    proc = None
    try:
        proc = start_job(job, extra_env, note)
        _write_pid(job, proc.pid)
        while True:
            try:
                return proc.wait(timeout=poll)
            except subprocess.TimeoutExpired:
                pass
            if should_stop is not None and should_stop():
                return _terminate_and_wait(proc)
    except _Stop as stop:
        if proc is not None:
            forwarded = stop.signum if stop.signum == getattr(signal, "SIGUSR2", None) else signal.SIGTERM
            signal_group(proc, forwarded)  # at once: SLURM's SIGKILL follows after KillWait
        requeued = slurm.job_id() is not None and slurm.stop_reason(stop.signum) in slurm.REQUEUED
        code = _terminate_and_wait(proc, signaled=True) if proc is not None else None
        if requeued:
            # No result: submitit writes none for a SystemExit, and the sweep waits for SLURM's rerun.
            raise SystemExit(143 if code is None else code) from None
        return code
    finally:
        for sig, old in handlers.items():
            signal.signal(sig, old)
        try:
            pid_file(job).unlink()
        except OSError:
            pass


def _earlier_run(job: Job) -> dict | None:
    """The run this SLURM task started before it was requeued (its newest), None if it made none."""
    from exman import slurm
    from exman.sweeps.records import sweep_runs

    root = job.env.get("EXMAN_RUN_ROOT")
    if not root:
        return None
    mine = [
        meta
        for meta in sweep_runs(Path(root), job.sweep_id)
        if str(meta.get("sweep_cell")) == str(job.cell) and slurm.task_of(meta) == slurm.job_id()
    ]
    return mine[-1] if mine else None


def _terminate_and_wait(proc: subprocess.Popen, signaled: bool = False) -> int:
    if not signaled:
        signal_group(proc, signal.SIGTERM)
    try:
        return proc.wait(timeout=GRACE)
    except subprocess.TimeoutExpired:
        signal_group(proc, signal.SIGKILL)
        return proc.wait()
