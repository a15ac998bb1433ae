"""``exman mark KEY ID...`` and ``exman unmark KEY ID...``: relative links under ``marked/KEY/``.

A key is checked before anything is created: no absolute path, no ``..``,
and no existing component of it may be a symlink or a file, so a mark can
never be written outside ``marked/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from exman import hookimpl, layout
from exman.cli import (
    RunRef,
    complete_ids,
    complete_marks,
    fs_errors,
    mark_folder,
    resolve_runs,
    scan_runs,
    warn_unknown,
)
from exman.fs import relative_symlink


def scan_links(folder: Path) -> dict[int, RunRef]:
    """Run-named symlinks in one folder (a mark), by id; ``path`` is the link."""
    found = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        number = layout.run_number(entry.name)
        if number is not None and entry.is_symlink():
            found[number] = RunRef(number, entry.name, Path(entry.path), "marked")
    return dict(sorted(found.items()))


@hookimpl
def register_commands(cli):
    @cli.command("mark")
    @click.argument("key", shell_complete=complete_marks)
    @click.argument("ids", nargs=-1, required=True, shell_complete=complete_ids)
    @click.pass_obj
    def mark(state, key, ids):
        """Mark runs: link each under marked/KEY/ (KEY may be a/b/c).

        IDS are numbers, ranges (3-7) or run names. Unknown ids are reported
        on stderr; the others are still marked.

        \b
        Example:
          exman mark best 3 5-7
          exman mark paper/table1 000012-2026-01-02-10-00-00
        """
        root = state.root
        folder = mark_folder(root, key, create=True)
        runs, unknown = resolve_runs(root, ids, (layout.RUNS,))
        warn_unknown(unknown)
        if not runs:
            raise click.ClickException("nothing to mark")
        with fs_errors():
            _mark(root, key, folder, runs)

    @cli.command("unmark")
    @click.argument("key", shell_complete=complete_marks)
    @click.argument("ids", nargs=-1, required=True, shell_complete=complete_ids)
    @click.pass_obj
    def unmark(state, key, ids):
        """Remove the marked/KEY/ links of runs (the runs stay).

        Folders of the key left empty are removed too.

        \b
        Example:
          exman unmark best 5 6
        """
        root = state.root
        folder = mark_folder(root, key, create=False)
        # Links whose run was deleted can still be unmarked, by id or name.
        candidates = {**scan_runs(root, (layout.RUNS,)), **scan_links(folder)}
        runs, unknown = resolve_runs(root, ids, runs=candidates)
        warn_unknown(unknown, where=f"runs/ or marked/{key}/")
        with fs_errors():
            removed = _unmark(key, folder, runs)
            _prune(root / layout.MARKED, folder)
        if not removed:
            raise click.ClickException("nothing unmarked")


def _mark(root: Path, key: str, folder: Path, runs) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for run in runs:
        link = folder / run.name
        if link.is_symlink() and os.path.realpath(link) == os.path.realpath(run.path):
            click.echo(f"already marked {key}: {run.name}")
            continue
        if os.path.lexists(link):
            click.echo(
                f"exman: warning: {os.path.relpath(link, root)} exists and is not a link to run {run.id}; skipped",
                err=True,
            )
            continue
        relative_symlink(link, run.path, directory=True)
        click.echo(f"marked {key}: {run.name}")


def _unmark(key: str, folder: Path, runs) -> int:
    removed = 0
    for run in runs:
        link = folder / run.name
        if not link.is_symlink():
            click.echo(f"exman: warning: run {run.id} is not marked {key!r}", err=True)
            continue
        os.unlink(link)
        removed += 1
        click.echo(f"unmarked {key}: {run.name}")
    return removed


def _prune(top: Path, folder: Path) -> None:
    """Remove ``folder`` and its parents up to ``top`` while they are empty."""
    while folder != top and top in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
