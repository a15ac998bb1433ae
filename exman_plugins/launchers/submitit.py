"""The ``submitit`` launcher: a sweep as a SLURM job array, through submitit.

``-o cluster=local`` (or ``debug``) uses submitit's local executor, which is
how it is tested; without it submitit picks SLURM when ``sbatch`` exists.
Other ``-o KEY=VALUE`` options go to ``executor.update_parameters`` (e.g.
``timeout_min``, ``slurm_partition``, ``mem_gb``); ``--jobs`` becomes the array
parallelism. On SLURM the arrays are watched by ``slurm_array`` (squeue and result
files, not sacct) and split at the cluster's MaxArraySize. Each array task runs the run as its child (``exman.sweeps.jobs.run_job``),
forwarding SLURM's SIGTERM to it, so a cancelled run ends ``interrupted``.
"""

from __future__ import annotations

import time
from pathlib import Path

from exman import hookimpl
from exman.layout import SWEEPS

POLL = 0.2
OWN = {"jobs", "scheduler", "root", "sweep_id", "cluster", "detach"}


def _remote(job):
    from exman.sweeps.jobs import run_job

    return run_job(job, poll=0.5)


@hookimpl
def register_launchers(register):
    register("submitit", launch, can_detach=can_detach, queued=queued)


def launch(jobs, options, progress):
    try:
        import submitit
    except ImportError:
        from exman.errors import SweepError

        raise SweepError("the submitit launcher needs submitit: pip install 'exman[submitit]'") from None
    from exman.sweeps.jobs import job_slots

    workers = job_slots(options)
    folder = Path(options["root"]) / SWEEPS / options["sweep_id"] / "submitit"
    executor = submitit.AutoExecutor(folder=folder, cluster=options.get("cluster"))
    params = {k: v for k, v in options.items() if k not in OWN and v is not None}
    executor.update_parameters(name=f"exman-{options['sweep_id']}", **params)
    if executor.cluster not in ("local", "debug"):
        from exman_plugins.launchers.slurm_array import run_arrays, submit_detached

        if options.get("detach"):
            return submit_detached(executor, _remote, jobs, workers, progress, folder.parent)
        return run_arrays(executor, _remote, jobs, workers, progress, folder.parent)
    return _run(executor, jobs, workers, progress)


def can_detach(options):
    import shutil

    if options.get("cluster") in ("local", "debug") or (not options.get("cluster") and not shutil.which("sbatch")):
        return (
            "--detach needs SLURM: submitit's local executor (-o cluster=local, or no sbatch on PATH) runs "
            "the tasks as children of exman sweep, which must stay; keep it running with nohup or tmux"
        )
    return True


def queued(root, sweep_id):
    from exman_plugins.launchers.slurm_array import RECORD, queued_cells

    folder = Path(root) / SWEEPS / sweep_id
    if not (folder / RECORD).exists():  # most sweeps: no SLURM, no squeue call
        return None
    return queued_cells(folder)


def _run(executor, jobs, workers, progress):
    """submitit's local executor: ``workers`` jobs in flight, submitted one by one."""
    from exman.sweeps.jobs import stop_local_child

    codes = {job.cell: None for job in jobs}
    queue = list(jobs)
    running = {}
    stopped = False
    while queue or running:
        if progress.stopping.is_set() and not stopped:
            stopped = True
            queue = []
            for sub, job in running.items():
                # On this host signal the child directly; elsewhere scancel (SIGTERM, forwarded).
                if not stop_local_child(job):
                    sub.cancel(check=False)
        while queue and len(running) < workers:
            # The local executor has no array throttle: keep `workers` jobs in flight by hand.
            job = queue.pop(0)
            running[executor.submit(_remote, job)] = job
        for sub, job in list(running.items()):
            if sub.state in ("RUNNING",) or sub.done():
                progress.started(job)
            if sub.done():
                del running[sub]
                try:
                    codes[job.cell] = sub.result()
                except Exception as exc:
                    progress.note(
                        f"{job}: submitit job {sub.job_id} failed: {str(exc).splitlines()[0] if str(exc) else exc}"
                    )
                    codes[job.cell] = -1
                progress.finished(job, codes[job.cell])
        if running:
            time.sleep(POLL)
    return codes
