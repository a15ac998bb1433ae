"""The ``local`` launcher: ``--jobs`` children at a time on this machine.

One loop in the main thread starts children (each in its own session),
polls them and reacts to the stop flags; no threads, so signals are handled
where they arrive and nothing outlives the loop.
"""

from __future__ import annotations

import signal
import time
from collections import deque

from exman import hookimpl

POLL = 0.005  # seconds between polls: a short run waits ~2 ms for its slot; 200 wakeups/s cost no CPU to speak of


@hookimpl
def register_launchers(register):
    register("local", launch)


def launch(jobs, options, progress):
    from exman.sweeps.jobs import GRACE, job_slots, signal_group, start_job

    workers = job_slots(options)
    pending = deque(jobs)
    running = {}
    codes = {job.cell: None for job in jobs}
    term_sent = None
    killed = False
    while pending or running:
        if progress.stopping.is_set():
            pending.clear()
            if term_sent is None:
                term_sent = time.monotonic()
                for proc in running:
                    signal_group(proc, signal.SIGTERM)
            if not killed and (progress.killing.is_set() or time.monotonic() - term_sent > GRACE):
                killed = True
                for proc in running:
                    signal_group(proc, signal.SIGKILL)
        while pending and len(running) < workers:
            job = pending.popleft()
            try:
                proc = start_job(job)
            except OSError as exc:
                codes[job.cell] = 127
                progress.note(f"{job}: cannot start: {exc}")
                progress.finished(job, 127)
                continue
            running[proc] = job
            progress.started(job)
        for proc in list(running):
            code = proc.poll()
            if code is not None:
                job = running.pop(proc)
                codes[job.cell] = code
                if term_sent is not None:
                    # Anything the child left in its group goes with it.
                    signal_group(proc, signal.SIGKILL)
                progress.finished(job, code)
        if running:
            time.sleep(POLL)
    return codes
