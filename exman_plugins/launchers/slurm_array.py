"""The submitit launcher's SLURM side: job arrays watched through ``squeue`` and result files.

submitit's own watcher polls ``sacct`` with a back-off of up to 10 minutes and
never finishes a task that left no accounting record (a pending task cancelled
on its own), so a sweep could hang. Here a task is over when its result file
exists, or when ``squeue`` no longer lists it as alive for a few seconds; a
requeued task is PENDING in ``squeue`` and so still counts as running (its first
attempt leaves no result: ``exman.sweeps.jobs.run_job`` exits without one).

Every submission is recorded in ``ROOT/sweeps/<id>/slurm.json`` (array id, task id
per cell), so a new process can tell which cells SLURM still holds (``queued_cells``):
``--status`` and ``--resume`` of a detached sweep, or of one whose ``exman sweep`` died.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import time
from pathlib import Path

from exman.errors import SweepError
from exman.sweeps.jobs import pid_file

SQUEUE_EVERY = 1.0  # seconds between squeue calls (one call per sweep, not per task)
GONE_AFTER = 3.0  # a task absent from squeue (or ended there) this long without a result is over
ALIVE = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
    "PREEMPTED",
    "SPECIAL_EXIT",
    "RESV_DEL_HOLD",
}


def _slurm(*args, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or [type(exc).__name__])[-1]


def max_array_size() -> int | None:
    """The cluster's MaxArraySize (an array may use indices 0..N-1), None if unknown."""
    env = os.environ.get("EXMAN_SLURM_MAX_ARRAY")
    if env:
        return int(env)
    try:
        out = _slurm("scontrol", "show", "config").stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


RECORD = "slurm.json"  # in ROOT/sweeps/<id>/: what was submitted, one entry per array


def submit(executor, fn, jobs, folder: Path):
    """``executor.map_array`` with an sbatch error turned into one line; the tasks are recorded in ``folder``."""
    try:
        subs = executor.map_array(fn, jobs)
    except Exception as exc:  # submitit raises FailedJobError (CalledProcessError inside) for sbatch errors
        raise SweepError(f"sbatch failed: {_one_line(exc)}") from None
    _record(folder, subs, jobs)
    return subs


def _record(folder: Path, subs, jobs) -> None:
    from exman.fs import atomic_write

    entries = submissions(folder)
    entries.append(
        {
            "job": subs[0].job_id.split("_")[0],
            "submitted": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "tasks": {sub.job_id: job.cell for sub, job in zip(subs, jobs)},
        }
    )
    atomic_write(Path(folder) / RECORD, json.dumps({"submissions": entries}, indent=1) + "\n")


def submissions(folder: Path) -> list[dict]:
    """The arrays submitted for a sweep, oldest first: ``job`` (the array id), ``tasks`` ({task id: cell})."""
    try:
        data = json.loads((Path(folder) / RECORD).read_text())
    except (OSError, ValueError):
        return []
    entries = data.get("submissions") if isinstance(data, dict) else None
    return [e for e in entries or [] if isinstance(e, dict) and e.get("job") and isinstance(e.get("tasks"), dict)]


def queued_cells(folder: Path) -> dict | None:
    """{cell: state} of the recorded tasks squeue still lists as alive (pending, running,
    requeued, ...); None when nothing was submitted; SweepError when squeue cannot answer."""
    entries = submissions(folder)
    if not entries:
        return None
    cells = {}
    for entry in entries:  # a later submission of a cell wins
        cells.update(entry["tasks"])
    seen, error = squeue({e["job"] for e in entries})
    if seen is None:
        raise SweepError(
            f"cannot ask SLURM which of sweep {Path(folder).name}'s tasks are still queued "
            f"({error}); run this where squeue reaches the cluster"
        )
    # A task that wrote its result is over, though squeue lists it a moment longer (COMPLETING).
    return {
        int(cells[task]): state
        for task, state in seen.items()
        if state in ALIVE and task in cells and not (Path(folder) / "submitit" / f"{task}_0_result.pkl").exists()
    }


def alive_tasks(array_ids) -> dict | None:
    """{task id: state} of the arrays' tasks squeue lists (``123_4``, or ``123`` for a plain job); None on error."""
    return squeue(array_ids)[0]


def squeue(array_ids) -> tuple[dict | None, str]:
    """``alive_tasks`` and, when squeue cannot answer, why."""
    if not array_ids:
        return {}, ""
    try:
        proc = _slurm("squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(sorted(array_ids)), timeout=20)
    except FileNotFoundError:
        return None, "squeue is not on PATH"
    except subprocess.TimeoutExpired:
        return None, "squeue did not answer within 20 s"
    except OSError as exc:
        return None, f"squeue: {exc.strerror or exc}"
    if proc.returncode != 0:
        # squeue fails for ids it no longer knows (all gone): that is an answer, not an error
        if "Invalid job id" in proc.stderr:
            return {}, ""
        return None, f"squeue: {_one_line(RuntimeError(proc.stderr)) if proc.stderr.strip() else 'failed'}"
    rows = {}
    for line in proc.stdout.splitlines():
        task, _, state = line.partition("|")
        rows[task.strip()] = state.strip()
    return rows, ""


def submit_detached(executor, fn, jobs, workers: int, progress, folder: Path) -> dict:
    """Submit every job and return: arrays of at most MaxArraySize tasks, ``workers`` at a time
    each, a later array starting after the one before has ended (``afterany``), so that
    ``--jobs`` holds with no process left to submit the next array."""
    size = max_array_size() or len(jobs)
    own = executor.parameters.get("dependency")  # the user's -o slurm_dependency, kept
    previous = None
    for start in range(0, len(jobs), size):
        chunk = jobs[start : start + size]
        after = f"afterany:{previous}" if previous else None
        executor.update_parameters(
            slurm_array_parallelism=workers, slurm_dependency=",".join(d for d in (own, after) if d) or None
        )
        subs = submit(executor, fn, chunk, folder)
        previous = subs[0].job_id.split("_")[0]
        cells = [job.cell for job in chunk]
        progress.note(
            f"submitted SLURM {'array' if len(subs) > 1 else 'job'} {previous}: "
            f"{len(subs)} task(s), cells {_span(cells)}{' after ' + after[9:] if after else ''}"
        )
    return {job.cell: None for job in jobs}


def _span(cells: list) -> str:
    return (
        f"{cells[0]}-{cells[-1]}"
        if len(cells) > 1 and cells == list(range(cells[0], cells[-1] + 1))
        else ",".join(map(str, cells))
    )


def result_of(sub):
    """(True, value) from a task's result file, (True, exception text) for an error, (False, None) if none."""
    from submitit.core import utils

    path = sub.paths.result_pickle
    if not path.exists():
        return False, None
    try:
        outcome, value = utils.pickle_load(path)
    except (EOFError, OSError):
        return False, None  # being written
    if outcome == "success":
        return True, value
    return True, RuntimeError(str(value).strip().splitlines()[-1] if str(value).strip() else "failed")


def cancel(array_ids, sig: str | None = None) -> None:
    if not array_ids:
        return
    args = ["scancel"] + ([f"--signal={sig}", "--full"] if sig else []) + sorted(array_ids)
    try:
        _slurm(*args)
    except (OSError, subprocess.TimeoutExpired):
        pass


def run_arrays(executor, fn, jobs, workers, progress, folder: Path):
    """Run ``jobs`` as SLURM arrays of at most MaxArraySize tasks, ``workers`` tasks at a time in all."""
    codes = {job.cell: None for job in jobs}
    began = time.time()  # a resumed cell's log from an earlier call says nothing about this one
    size = max_array_size() or len(jobs)
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    running = {}  # sub -> job
    arrays = []  # array ids submitted, oldest first
    gone_since = {}  # sub -> when squeue stopped listing it alive
    last_squeue = 0.0
    states = {}
    ran = set()  # subs seen RUNNING since they were last pending
    stopped = killed = False
    while chunks or running:
        if progress.stopping.is_set() and not stopped:
            stopped = True
            chunks = []
            cancel(arrays)  # pending tasks vanish, running ones get SIGTERM (forwarded to the run)
        if progress.killing.is_set() and not killed:
            killed = True
            cancel(arrays, "KILL")
            for sub, job in list(running.items()):
                progress.note(f"{job}: SLURM task {sub.job_id} killed")
                codes[job.cell] = -9 if sub.job_id in states and states[sub.job_id] == "RUNNING" else None
                progress.finished(job, codes[job.cell])
            return codes
        if chunks and len(running) < workers:
            # A new array only when the older ones have free slots: --jobs holds across arrays.
            executor.update_parameters(slurm_array_parallelism=workers - len(running))
            subs = submit(executor, fn, chunks[0], folder)
            running.update(zip(subs, chunks.pop(0)))
            arrays.append(subs[0].job_id.split("_")[0])
            last_squeue = 0.0
        now = time.monotonic()
        if now - last_squeue >= SQUEUE_EVERY:
            last_squeue = now
            seen = alive_tasks([a for a in arrays if any(s.job_id.split("_")[0] == a for s in running)])
            if seen is not None:
                states = seen
                for sub in running:
                    state = _state_of(seen, sub.job_id)
                    if state in ALIVE:
                        gone_since.pop(sub, None)
                    else:
                        gone_since.setdefault(sub, now)
                    if state == "RUNNING":
                        progress.started(running[sub])
                        ran.add(sub)
                    elif state == "PENDING" and sub in ran:
                        ran.discard(sub)  # requeued (scontrol requeue, preemption): its run continues later
                        progress.note(
                            f"{running[sub]}: SLURM requeued task {sub.job_id}; its run continues "
                            "when SLURM runs it again"
                        )
        for sub, job in list(running.items()):
            done, value = result_of(sub)
            if not done and now - gone_since.get(sub, now) < GONE_AFTER:
                continue
            del running[sub]
            gone_since.pop(sub, None)
            if done and not isinstance(value, Exception):
                progress.started(job)
                codes[job.cell] = value
            elif done:
                progress.note(f"{job}: SLURM task {sub.job_id} failed: {value}")
                codes[job.cell] = -1
            else:
                # Started in this call: seen running, or its pid file written since this call began (one
                # an earlier call's task left when SLURM killed it is older). Once we stopped, a log is no
                # proof: an earlier call's task may still have been writing to it as this one began.
                started = (
                    sub in ran
                    or _written_since(pid_file(job), began)
                    or (not stopped and _written_since(job.log, began))
                )
                last = states.get(sub.job_id)
                if started or not stopped:  # a pending task our own stop cancelled is just "not started"
                    progress.note(
                        f"{job}: SLURM task {sub.job_id} {'ended' if started else 'left the queue'} "
                        f"without a result ({(last or 'no longer listed by squeue').lower()})"
                    )
                codes[job.cell] = -1 if started else None
            progress.finished(job, codes[job.cell])
        if running:
            time.sleep(0.2)
    return codes


def _written_since(path: str, since: float) -> bool:
    try:
        return os.stat(path).st_mtime >= since - 1.0  # the file server's clock may lag a little
    except OSError:
        return False


def _state_of(seen: dict, task_id: str) -> str | None:
    return seen.get(task_id)
