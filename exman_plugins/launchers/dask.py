"""The ``dask`` launcher: each run is a task on a Dask distributed cluster.

With ``--scheduler ADDRESS`` the tasks go to that scheduler (its workers need
exman and the script's environment); without it a ``LocalCluster`` of
``--jobs`` single-threaded worker processes is started on 127.0.0.1 and shut
down afterwards. The run is still a child process of the worker
(``exman.sweeps.jobs.run_job``). A stop sets a distributed ``Event`` that every task
polls, so children on remote workers get SIGTERM too.
"""

from __future__ import annotations

import logging
import os
import signal

from exman import hookimpl

POLL = 0.2


def _remote(job, event_name):
    """Runs on a worker: the child until it ends or the sweep's stop event is set."""
    from distributed import Event, get_client

    from exman.sweeps.jobs import run_job

    stop = Event(event_name, client=get_client())
    return run_job(job, should_stop=stop.is_set, poll=0.5)


@hookimpl
def register_launchers(register):
    register("dask", launch)


def launch(jobs, options, progress):
    try:
        import distributed
    except ImportError:
        from exman.errors import SweepError

        raise SweepError("the dask launcher needs distributed: pip install 'exman[dask]'") from None
    from exman.sweeps.jobs import job_slots

    workers = job_slots(options)
    scheduler = options.get("scheduler")
    cluster = None
    # Worker processes inherit an ignored SIGINT, so a Ctrl-C on the terminal
    # reaches only `exman sweep`, which then stops the children in order.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if scheduler:
            try:
                client = distributed.Client(scheduler, timeout=options.get("timeout", 30))
            except (OSError, ValueError) as exc:
                from exman.errors import SweepError

                raise SweepError(f"cannot reach the dask scheduler {scheduler}: {exc}") from None
        else:
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            client = distributed.Client(cluster)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        return _run(distributed, client, jobs, options, progress)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run(distributed, client, jobs, options, progress):
    from exman.sweeps.jobs import child_started

    event_name = f"exman-stop-{options['sweep_id']}"
    stop = distributed.Event(event_name, client=client)
    stop.clear()
    futures = {}
    for job in jobs:
        future = client.submit(
            _remote, job, event_name, pure=False, key=f"exman-{options['sweep_id']}-{job.cell}-{os.urandom(3).hex()}"
        )
        futures[future] = job
    codes = {job.cell: None for job in jobs}
    pending = set(futures)
    stopped = False
    while pending:
        try:
            done, pending = distributed.wait(pending, timeout=POLL, return_when="FIRST_COMPLETED")
        except (TimeoutError, distributed.TimeoutError):
            done = set()
        processing = {key for keys in client.processing().values() for key in keys}
        for future in pending:
            # "processing" includes tasks queued on a busy worker: started is when the child is.
            if future.key in processing and child_started(futures[future]):
                progress.started(futures[future])
        for future in done:
            job = futures[future]
            try:
                codes[job.cell] = future.result()
            except Exception as exc:  # the task itself broke (lost worker, unpicklable env)
                progress.note(f"{job}: dask task failed: {exc}")
                codes[job.cell] = -1
            progress.finished(job, codes[job.cell])
        if progress.stopping.is_set() and not stopped:
            stopped = True
            stop.set()
            # Tasks not yet on a worker never start; running ones see the event and stop their child.
            waiting = [f for f in pending if f.key not in processing]
            client.cancel(waiting)
            pending -= set(waiting)
    return codes
