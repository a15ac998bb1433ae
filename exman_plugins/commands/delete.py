"""``exman delete [--all] ID...``: take runs out of the index, or remove them entirely.

Nothing outside the root is ever touched: a run folder is removed only when
it is a real folder (not a symlink) whose resolved path is inside the
root's ``runs/``, ``tmp/`` or ``fails/``, and ``shutil.rmtree`` never
follows the symlinks it meets inside. Links are unlinked, never followed.
The run's claimed number stays taken, so a new run never reuses its id.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from exman import hookimpl, layout
from exman.cli import RunRef, can_prompt, complete_ids, fs_errors, inside, resolve_runs, warn_unknown
from exman.layout import read_run_json
from exman.runinfo import run_status


def index_links(root: Path, run: RunRef) -> list[Path]:
    """``index/<name>.<ext>`` symlinks of a run (params.yaml today, any suffix a storage plugin chose)."""
    try:
        entries = list(layout.index_entries(root))
    except OSError:
        return []
    return [Path(e.path) for e in entries if e.is_symlink() and layout.linked_run_name(e.name) == run.name]


def mark_links(root: Path, runs: list[RunRef]) -> dict[int, list[Path]]:
    """Every symlink under ``marked/`` that points at one of ``runs`` (walked without following links)."""
    targets = {os.path.realpath(r.path): r.id for r in runs}
    names = {r.name: r.id for r in runs}
    found: dict[int, list[Path]] = {r.id: [] for r in runs}
    for _, entry in layout.walk_links(root / layout.MARKED):
        hit = targets.get(os.path.realpath(entry.path))
        if hit is None and entry.name in names and not os.path.exists(entry.path):
            hit = names[entry.name]  # a dangling mark of this run (e.g. the root moved)
        if hit is not None:
            found[hit].append(Path(entry.path))
    return found


def _unlink(root: Path, link: Path) -> None:
    if not inside(root, link.parent):  # the link itself is unlinked, never followed
        raise click.ClickException(f"refusing to remove {link}: its folder resolves outside {root}")
    os.unlink(link)


def _remove_folder(root: Path, run: RunRef) -> None:
    folder = run.path
    if folder.is_symlink():
        raise click.ClickException(f"refusing to remove {folder}: it is a symlink")
    base = root / run.folder
    if base.is_symlink() or not inside(root, base) or not inside(base, folder):
        raise click.ClickException(f"refusing to remove {folder}: it resolves outside {root}")

    def fail(path, exc):
        raise click.ClickException(f"could not remove {path}: {exc}")

    if sys.version_info >= (3, 12):
        shutil.rmtree(folder, onexc=lambda func, path, exc: fail(path, exc))
    else:
        shutil.rmtree(folder, onerror=lambda func, path, info: fail(path, info[1]))


@hookimpl
def register_commands(cli):
    @cli.command("delete")
    @click.argument("ids", nargs=-1, required=True, shell_complete=complete_ids)
    @click.option(
        "--all", "everything", is_flag=True, help="also remove the run folders and every mark pointing to them"
    )
    @click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
    @click.option("-n", "--dry-run", is_flag=True, help="print what would be removed, remove nothing")
    @click.option("--force", is_flag=True, help="with --all: delete runs that are still running too")
    @click.pass_obj
    def delete(state, ids, everything, yes, dry_run, force):
        """Remove runs from the index; with --all, delete their files too.

        Without --all only the index/ link goes: the run folder and its marks
        stay and `exman ls` no longer lists it. With --all the folder (also in
        tmp/ or fails/) and its marks are removed; on a terminal you are asked
        first unless --yes. Without a terminal nobody is asked.

        \b
        Example:
          exman delete 4 9-12
          exman delete --all --yes 7
        """
        root = state.root
        folders = layout.RUN_FOLDERS if everything else (layout.RUNS,)
        runs, unknown = resolve_runs(root, ids, folders)
        warn_unknown(unknown, where=", ".join(f + "/" for f in folders))
        if not runs:
            raise click.ClickException("nothing to delete")
        if not everything:
            with fs_errors():
                _delete_index(root, runs, dry_run)
            return
        live = [r for r in runs if run_status(r.path, read_run_json(r.path)) == "running"]
        if live and not force:
            raise click.ClickException(
                f"run(s) {', '.join(str(r.id) for r in live)} are still running; stop them first or pass --force"
            )
        marks = mark_links(root, runs)
        if dry_run:
            for run in runs:
                for path in [run.path, *index_links(root, run), *marks[run.id]]:
                    click.echo(f"would remove {os.path.relpath(path, root)}")
            return
        if not yes and can_prompt():
            listing = "\n".join(f"  {r.folder}/{r.name}" for r in runs)
            click.echo(f"about to delete {len(runs)} run folder(s) and their links:\n{listing}", err=True)
            if not click.confirm("delete them?", default=False, err=True):
                raise click.ClickException("aborted, nothing deleted")
        with fs_errors():
            for run in runs:
                for link in [*index_links(root, run), *marks[run.id]]:
                    _unlink(root, link)
                _remove_folder(root, run)
                click.echo(f"deleted {run.folder}/{run.name}")


def _delete_index(root: Path, runs: list[RunRef], dry_run: bool) -> None:
    done = 0
    for run in runs:
        links = index_links(root, run)
        if not links:
            click.echo(f"exman: warning: run {run.id} is not in the index", err=True)
            continue
        for link in links:
            if dry_run:
                click.echo(f"would remove {os.path.relpath(link, root)}")
            else:
                _unlink(root, link)
        done += 1
        if not dry_run:
            click.echo(f"removed from index: {run.name}")
    if not done:
        raise click.ClickException("nothing deleted")
