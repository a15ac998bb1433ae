"""Runs under SLURM: where the job ran, why it is being stopped, whether SLURM runs it again.

Standard library only (a training script and a remote sweep task import it). SLURM
sends the same SIGTERM for ``scancel``, ``scontrol requeue``, preemption and the time
limit; ``scontrol show job`` tells them apart at that moment (measured on Slurm 22.05:
``Restarts`` is already one more than the task's ``SLURM_RESTART_COUNT`` after a requeue,
``Reason=TimeLimit`` at the limit). A requeued task runs again with the same job id and
``SLURM_RESTART_COUNT`` one higher.
"""

from __future__ import annotations

import os
import re

# Names the folder of a run to continue instead of starting a new one (set for a requeued task's rerun).
CONTINUE_ENV = "EXMAN_CONTINUE_RUN"
# run.json "reason" values that mean SLURM queued the task again and will rerun it
REQUEUED = ("requeued",)


def job_id() -> str | None:
    """This task's id for scontrol/squeue: ``123_4`` for an array task, ``123`` for a plain job."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


def restarts() -> int:
    """How often SLURM requeued this task before this attempt (0 on the first)."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    except ValueError:
        return 0


def record() -> dict | None:
    """Where SLURM ran this process: job id (the array's for an array task), array task id,
    node and restart count; None outside SLURM."""
    env = os.environ
    if not env.get("SLURM_JOB_ID"):
        return None
    return {
        "job_id": env.get("SLURM_ARRAY_JOB_ID") or env["SLURM_JOB_ID"],
        "array_task_id": env.get("SLURM_ARRAY_TASK_ID"),
        "node": env.get("SLURMD_NODENAME"),
        "restart": restarts(),
    }


def job_info(timeout: float = 5, tries: int = 5) -> dict:
    """``scontrol show job -o`` of this task as a dict ({} outside SLURM or when it cannot answer)."""
    import subprocess
    import time

    task = job_id()
    if task is None:
        return {}
    for _ in range(tries):
        try:
            proc = subprocess.run(
                ["scontrol", "show", "job", "-o", task],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return {}
        if proc.returncode >= 0:
            break
        # Killed: SLURM signals every process of the step, scontrol too, twice within ~40 ms on preemption.
        time.sleep(0.2)
    return fields(proc.stdout)


# A key of scontrol's output starts with a capital letter (JobId, MCS_label, CPUs/Task, ReqB:S:C:T).
# Compiled on first use (re keeps it): a training script imports this module but never reads scontrol.
_KEY = r"(?:^|\s+)([A-Z][A-Za-z0-9_:/]*)="


def fields(text: str) -> dict:
    """The ``Key=value`` fields of ``scontrol show job -o`` output as a dict of strings ({} for none).

    Reads the first line only: ``-o`` prints one line per job, and an array's id alone gives one
    per task. A value runs up to the whitespace before the next ``Key=``, so it may hold spaces
    (``JobName=my job``, ``Command=/a b/run.sh x``, ``WorkDir``, ``Comment``, ``StdOut``) and ``=``
    (``TRES=cpu=1,node=1``); an empty one is ``''`` (``Comment=``, ``Power=``). A key already read
    does not start a field again: ``Reason=x`` inside a job's comment stays part of the comment and
    cannot hide the real ``Reason``, printed before it; a job name runs up to ``UserId=``, printed
    right after it, so ``Restarts=2`` in a name cannot hide the real ``Restarts``. Read as a field
    all the same (the output cannot tell them apart): `` Key=`` inside a comment, command or folder,
    for a capitalised key that scontrol prints later in the line.
    """
    line = text.strip().split("\n", 1)[0]
    # The job's name comes before the fields that matter (JobState, Reason, Restarts, ...), so
    # `Restarts=2` in a name must not start a field: a name runs to the UserId scontrol prints next.
    name_end = "UserId" if " UserId=" in line else None
    found: dict = {}
    key, start = None, 0
    for match in re.finditer(_KEY, line):
        name = match.group(1)
        if name in found or name == key or (key == "JobName" and name_end and name != name_end):
            continue
        if key is not None:
            found[key] = line[start : match.start()]
        key, start = name, match.end()
    if key is not None:
        found[key] = line[start:].rstrip()
    return found


def stop_reason(signum: int | None, info: dict | None = None) -> str | None:
    """Why SLURM is stopping this task: ``time limit``, ``requeued`` (``scontrol requeue`` or a
    preemption that requeues: the two look the same here), ``preempted`` or ``cancelled``; None
    outside SLURM."""
    import signal  # only a stopping run asks: a training script does not pay for its import

    if job_id() is None:
        return None
    if signum == getattr(signal, "SIGUSR2", None):
        return "time limit"  # submitit's --signal=USR2@N: the limit is N seconds away
    info = job_info() if info is None else info
    try:
        if int(info.get("Restarts", 0)) > restarts():
            return "requeued"
    except ValueError:
        pass
    if info.get("JobState") == "PREEMPTED" or "preempt" in info.get("Reason", "").lower():
        return "preempted"
    if info.get("Reason") == "TimeLimit" or info.get("JobState") == "TIMEOUT":
        return "time limit"
    limit, ran = _seconds(info.get("TimeLimit")), _seconds(info.get("RunTime"))
    if info.get("JobState") == "RUNNING" and ran < float("inf") and limit - ran <= WARNING_WINDOW:
        # Signalled, not being killed, close to the limit: sbatch --signal=TERM@N (no field shows N).
        return "time limit"
    return "cancelled" if info else None


# A SIGTERM to a still running job this close to its time limit is taken for sbatch --signal's warning.
WARNING_WINDOW = 30 * 60


def _seconds(text) -> float:
    """``[D-]HH:MM:SS`` (or ``MM:SS``) as seconds; inf for UNLIMITED or anything else."""
    try:
        days, _, clock = str(text).rpartition("-")
        parts = [int(p) for p in clock.split(":")]
        seconds = 0
        for part in parts:
            seconds = seconds * 60 + part
        return seconds + int(days or 0) * 86400 if len(parts) in (2, 3) else float("inf")
    except ValueError:
        return float("inf")


def task_of(meta: dict) -> str | None:
    """The SLURM task id (``123_4`` or ``123``) a run.json records, None without one."""
    rec = meta.get("slurm")
    if not isinstance(rec, dict) or not rec.get("job_id"):
        return None
    return f"{rec['job_id']}_{rec['array_task_id']}" if rec.get("array_task_id") is not None else str(rec["job_id"])
