"""Example launcher plugin (shown in docs/sweeps.md): a sweep's runs one after another.

``exman.sweep(..., launcher="serial", pm=get_plugin_manager(launchers=True,
plugins=[serial_launcher]))`` uses it from Python; an ``exman`` entry point makes
``exman sweep --launcher serial`` work too.
"""

from exman import hookimpl


@hookimpl
def register_launchers(register):
    register("serial", launch)


def launch(jobs, options, progress):
    from exman.sweeps.jobs import run_job

    codes = {job.cell: None for job in jobs}  # None: never started
    for job in jobs:
        if progress.stopping.is_set():  # Ctrl-C or SIGTERM: start nothing more
            break
        progress.started(job)
        codes[job.cell] = run_job(job, should_stop=progress.stopping.is_set)
        progress.finished(job, codes[job.cell])
    return codes
