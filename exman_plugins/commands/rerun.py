"""``exman rerun ID [-- OVERRIDES...]``: run a recorded command again from its params.

The new process gets the recorded argv, then ``--config <run>/params.yaml``,
then the overrides (the last value of an option wins), in the recorded
working directory, with ``EXMAN_RUN_ROOT`` set so the new run lands in the
same root. Its output goes to stderr so stdout carries only the new run id:
``new=$(exman rerun 3 -- --lr 0.2)`` works in scripts.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import click

from exman import hookimpl, layout
from exman.cli import RUN_FOLDERS, complete_ids, resolve_run, scan_runs
from exman.layout import read_run_json


def command_for(run, meta: dict, overrides, cwd: str) -> list[str]:
    argv = meta.get("argv")
    if not argv:
        why = "its run.json is damaged" if (run.path / layout.RUN_FILE).exists() else "no run.json: exman 0.1.9?"
        raise click.ClickException(
            f"run {run.id} has no recorded command line ({why}); "
            f"rerun it by hand with: python main.py --config {layout.params_path(run.path)}"
        )
    script = Path(cwd, argv[0])
    if not script.is_file():
        raise click.ClickException(f"run {run.id} was started from {argv[0]!r}, which is not a file in {cwd} now")
    params = layout.params_path(run.path, meta)
    if not params.is_file():
        raise click.ClickException(f"run {run.id} has no {params.name} to rerun from")
    python = meta.get("executable")
    if not (python and os.access(python, os.X_OK)):
        python = sys.executable
    return [python, *argv, "--config", str(params), *overrides]


def new_run(root: Path, before: set[int], pid: int):
    """The run the child process started: a new id whose run.json names its pid."""
    fresh = [r for i, r in scan_runs(root, RUN_FOLDERS).items() if i not in before]
    for run in fresh:
        if read_run_json(run.path).get("pid") == pid:
            return run
    return fresh[0] if len(fresh) == 1 else None


@hookimpl
def register_commands(cli):
    @cli.command("rerun", context_settings={"ignore_unknown_options": True})
    @click.argument("run_id", metavar="ID", shell_complete=complete_ids)
    @click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
    @click.option("--dry-run", is_flag=True, help="print the command, do not run it")
    @click.pass_obj
    def rerun(state, run_id, overrides, dry_run):
        """Run a recorded run again, with its params.yaml as --config plus OVERRIDES.

        Prints the new run's id on stdout; the script's own output goes to
        stderr. Exits with the script's exit code.

        \b
        Example:
          exman rerun 12 -- --lr 0.01 --epochs 20
        """
        root = state.root
        run = resolve_run(root, run_id)
        meta = read_run_json(run.path)
        cwd = meta.get("cwd") or os.getcwd()
        if not os.path.isdir(cwd):
            raise click.ClickException(f"run {run.id} was started in {cwd}, which no longer exists")
        command = command_for(run, meta, list(overrides), cwd)
        if dry_run:
            click.echo(f"cd {shlex.quote(cwd)} && {' '.join(shlex.quote(c) for c in command)}")
            return
        before = set(scan_runs(root, RUN_FOLDERS))
        env = dict(os.environ, EXMAN_RUN_ROOT=str(root))
        try:
            stderr_fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            stderr_fd = None  # stderr is not a file (tests): relay the output instead
        try:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE if stderr_fd is None else stderr_fd,
                stderr=subprocess.STDOUT if stderr_fd is None else None,
            )
        except OSError as exc:
            raise click.ClickException(f"cannot start {command[0]}: {exc.strerror}") from None
        try:
            if stderr_fd is None:
                click.echo(proc.communicate()[0].decode(errors="replace"), err=True, nl=False)
            code = proc.wait()
        except KeyboardInterrupt:
            code = proc.wait()  # the child got the Ctrl-C too and records itself
        made = new_run(root, before, proc.pid)
        if made is None:
            raise click.ClickException(f"the script exited with status {code} and recorded no new run")
        click.echo(made.id)
        if code != 0:
            click.echo(f"exman: rerun {made.id} ({made.folder}/{made.name}) exited with status {code}", err=True)
            sys.exit(code)
