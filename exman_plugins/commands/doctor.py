"""``exman doctor [--fix]``: find and repair broken links and runs that died without a word.

Problems: dangling links in ``index/`` and ``marked/``, runs recorded as
``running`` whose process is gone (same host), temp files of writes a kill cut
short — ``--fix`` removes those links and temp files and records such runs as
``crashed`` in run.json. Notes: runs in ``runs/``
that are not in the index (``exman delete`` does that on purpose, so only
``--reindex`` links them again) and runs on other hosts whose heartbeat
stopped (``stale``: that host may just be unreachable). Run data is never
deleted.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from exman import hookimpl, layout
from exman.cli import RUN_FOLDERS, fs_errors, inside, scan_runs
from exman.fs import is_temp, relative_symlink
from exman.layout import read_run_json, symlinked_layout
from exman.runinfo import end_dead_run, run_status


def dangling_links(root: Path) -> list[Path]:
    """Links in ``index/`` and ``marked/`` that lead nowhere, or out of the root (``layout.leads_outside``)."""
    try:
        entries = sorted(layout.index_entries(root), key=lambda e: e.name)
    except OSError:
        entries = []

    def broken(path: str) -> bool:
        return not os.path.exists(path) or layout.leads_outside(root, path)

    found = [Path(e.path) for e in entries if e.is_symlink() and broken(e.path)]
    marks = [Path(e.path) for _, e in layout.walk_links(root / layout.MARKED) if broken(e.path)]
    return found + sorted(marks)


# An atomic write lasts milliseconds; a temp file this old lost its writer.
TEMP_AGE = 60.0


def leftover_temps(root: Path) -> list[Path]:
    """Temp files of ``atomic_write`` whose writer was killed before its rename.

    One in a run folder is debris once the run has ended or died; elsewhere (or
    when the run's state is unknown) only once it is older than ``TEMP_AGE``,
    so a writer in the middle of its write is never robbed of its file.
    """
    import time

    found = []
    now = time.time()

    def old(path: Path) -> bool:
        try:
            return now - os.lstat(path).st_mtime > TEMP_AGE
        except OSError:
            return False

    for run in scan_runs(root, RUN_FOLDERS).values():
        try:
            names = [e.name for e in os.scandir(run.path) if is_temp(e.name) and e.is_file(follow_symlinks=False)]
        except OSError:
            continue
        if not names:
            continue
        ended = run_status(run.path, read_run_json(run.path)) in ("crashed", "completed", "failed", "interrupted")
        found += [run.path / n for n in names if ended or old(run.path / n)]
    for folder, _dirs, files in os.walk(root / layout.STATE, followlinks=False):
        found += [Path(folder) / n for n in files if is_temp(n) and old(Path(folder) / n)]
    return sorted(found)


def unindexed(root: Path) -> list:
    try:
        indexed = {layout.linked_run_name(e.name) for e in layout.index_entries(root)}
    except OSError:
        indexed = set()
    return [r for r in scan_runs(root, (layout.RUNS,)).values() if r.name not in indexed]


def mark_crashed(run_path: Path) -> bool:
    """Record a dead run as crashed; its last heartbeat is taken as its end."""
    return end_dead_run(run_path, "crashed", at_heartbeat=True)


@hookimpl
def register_commands(cli):
    @cli.command("doctor")
    @click.option("--fix", is_flag=True, help="remove dangling links and record dead runs as crashed")
    @click.option("--reindex", is_flag=True, help="with --fix: link runs missing from index/ back into it")
    @click.pass_obj
    def doctor(state, fix, reindex):
        """Check a root: dangling links, unindexed runs, dead 'running' runs.

        Exits with status 1 when it finds problems it did not fix.

        \b
        Example:
          exman doctor
          exman doctor --fix
        """
        root = state.root
        linked = symlinked_layout(root)
        if fix and linked:
            raise click.ClickException(
                f"refusing to fix: {linked[0]}/ is a symlink and exman writes only inside its "
                f"root; replace it with a real folder (or link the whole root)"
            )
        with fs_errors():
            problems = _check(root, fix, reindex)
        if problems:
            raise click.ClickException(f"{problems} problem(s) found; `exman doctor --fix` repairs them")
        click.echo("ok" if not fix else "done")


def _remove(root: Path, path: Path, fix: bool, removed: str, problem: str) -> int:
    """With ``fix``, unlink ``path`` (never outside the root) and say so; else report it.
    Return the number of problems left (0 or 1)."""
    if fix and inside(root, path.parent):
        os.unlink(path)
        click.echo(removed)
        return 0
    click.echo(problem)
    return 1


def _check(root: Path, fix: bool, reindex: bool) -> int:
    """Report (and with ``fix`` repair) what is wrong; return the problems left."""
    problems = 0
    for link in dangling_links(root):
        rel, target = os.path.relpath(link, root), os.readlink(link)
        kind = "dangling link" if not os.path.exists(link) else "link leading outside the root"
        problems += _remove(root, link, fix, f"removed {kind} {rel} -> {target}", f"{kind}: {rel} -> {target}")
    for run in scan_runs(root, RUN_FOLDERS).values():
        meta = read_run_json(run.path)
        if meta.get("status") != "running":
            continue
        status = run_status(run.path, meta)
        if status == "crashed":
            if fix and mark_crashed(run.path):
                click.echo(f"recorded run {run.id} as crashed ({run.folder}/{run.name}, pid {meta.get('pid')} is gone)")
            else:
                problems += 1
                click.echo(
                    f"dead run: {run.id} ({run.folder}/{run.name}) is 'running' but pid {meta.get('pid')} is gone"
                )
        elif status == "stale":
            click.echo(f"note: run {run.id} on {meta.get('host')} has sent no heartbeat for a while (stale)")
    for temp in leftover_temps(root):
        rel = os.path.relpath(temp, root)
        problems += _remove(
            root,
            temp,
            fix,
            f"removed temp file {rel} (its writer was killed mid-write)",
            f"temp file left by a killed writer: {rel}",
        )
    for run in unindexed(root):
        params = layout.params_path(run.path, read_run_json(run.path))  # the file the storage plugin wrote
        if fix and reindex and params.is_file():
            try:
                relative_symlink(root / layout.INDEX / layout.link_name(run.name, params), params)
            except FileExistsError:
                continue  # its script, still recording it, linked it a moment ago (and accepts ours too)
            click.echo(f"indexed run {run.id} again ({run.name})")
        else:
            click.echo(
                f"note: run {run.id} ({run.name}) is not in index/ (deleted with `exman delete`?"
                f" `exman doctor --fix --reindex` adds it back)"
            )
    return problems
