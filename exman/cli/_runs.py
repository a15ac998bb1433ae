"""Finding runs on disk for the commands: id resolution, run files, marks, safety checks.

The implementation of ``exman.cli``'s toolkit (import the names from there).
Every command turns its ID arguments into runs here, so ``3``, ``3-7`` and
``000003-2026-01-01-12-00-00`` mean the same thing everywhere. Nothing here
writes; it must stay free of pandas so ``mark``/``show`` start fast.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path

import click

from exman import layout
from exman.fs import check_relative_key, open_regular
from exman.layout import METRICS_FILE
from exman.runinfo import given_name, run_status

# Where runs live; searched in this order, so runs/ wins if a 0.1.9 root reused a number.
FOLDERS = layout.RUN_FOLDERS
RANGE = re.compile(r"^(\d+)-(\d+)$")


@dataclass(frozen=True)
class RunRef:
    id: int
    name: str
    path: Path  # root/<folder>/<name>
    folder: str  # runs | tmp | fails (or marked, for a mark's links)


class Runs(dict):
    """``{id: RunRef}``; ``twins`` holds the ids that name several folders of one place
    (two roots merged with ``cp``): a number alone cannot say which is meant."""

    twins: dict


def scan(root: Path, folders=FOLDERS) -> Runs:
    """Every run folder under ``folders``, by id (first folder wins)."""
    found: dict[int, RunRef] = {}
    twins: dict[int, list] = {}
    for folder, number, entry in layout.run_folders(root, folders):
        ref = RunRef(number, entry.name, Path(entry.path), folder)
        first = found.setdefault(number, ref)
        if first is not ref and first.folder == folder:
            twins.setdefault(number, [first]).append(ref)
    out = Runs(sorted(found.items()))
    out.twins = twins
    return out


def resolve(root: Path, tokens, folders=FOLDERS, *, runs: dict | None = None) -> tuple[list[RunRef], list[str]]:
    """(runs, unknown tokens) for IDs given as numbers, ranges ``a-b`` or run names.

    A range only needs to hit one run: gaps left by deleted runs are normal.
    A backwards range is a user mistake and stops the command.
    """
    if runs is None:
        runs = scan(root, folders)
    by_name = {r.name: r for r in runs.values()}
    by_given: dict = {}  # a run's --name, the end of its folder name
    for r in runs.values():
        by_given.setdefault(given_name(r.name), []).append(r)
    all_twins: dict = getattr(runs, "twins", {})  # a plain dict of runs (mark's links) has none
    by_name.update({t.name: t for twins in all_twins.values() for t in twins})
    chosen: dict[int, RunRef] = {}
    unknown: list[str] = []
    for token in tokens:
        text = str(token).strip()
        # A path to a run folder or index link (shell completion) means that run.
        name = os.path.basename(text.rstrip("/"))
        for suffix in (".yaml", ".yml", ".json"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        m = RANGE.match(text)
        if text.isdigit():
            hits = [runs[int(text)]] if int(text) in runs else []
        elif m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise click.ClickException(f"bad id range {text!r}: the first number must not exceed the second")
            hits = [r for i, r in runs.items() if lo <= i <= hi]
        elif name in by_name:
            hits = [by_name[name]]
        else:
            hits = by_given.get(text, []) if text else []
        if not hits:
            unknown.append(text)
        twins = [r for r in hits if r.id in all_twins and name != r.name]
        if twins:
            names = ", ".join(f"{t.folder}/{t.name}" for t in all_twins[twins[0].id])
            raise click.ClickException(
                f"id {twins[0].id} names several runs ({names}; roots merged?): give the run's folder name"
            )
        for r in hits:
            chosen.setdefault(r.id, r)
    return sorted(chosen.values(), key=lambda r: r.id), unknown


def resolve_one(root: Path, token, folders=FOLDERS) -> RunRef:
    runs, unknown = resolve(root, [token], folders)
    if unknown or not runs:
        raise click.ClickException(f"no run {token!r} in {root} (looked in {', '.join(f + '/' for f in folders)})")
    if len(runs) > 1:
        raise click.ClickException(
            f"{token!r} names {len(runs)} runs ({', '.join(str(r.id) for r in runs)}); give a single id"
        )
    return runs[0]


def warn_unknown(unknown, where: str = "runs/") -> None:
    if unknown:
        click.echo(f"exman: warning: no such run in {where}: {', '.join(unknown)}", err=True)


# -- reading a run's files ---------------------------------------------------


def _pm():
    """The command line's plugin manager (a storage plugin's ``load_params`` included)."""
    ctx = click.get_current_context(silent=True)
    pm = getattr(ctx.find_root().obj, "pm", None) if ctx is not None else None
    if pm is None:
        from exman.plugins import get_plugin_manager

        pm = get_plugin_manager(cli=True)
    return pm


def read_params(path: Path, meta: dict | None = None) -> dict:
    """The run's params file as written (it wins over run.json when edited by hand),
    read through the ``load_params`` hook: a storage plugin may write JSON or TOML."""
    return layout.read_params(_pm(), path, meta)


def last_metrics(path: Path) -> tuple[dict, dict, int]:
    """({metric: last value}, {metric: its step}, number of rows), read as the Index reads
    metrics.jsonl: a cut last line and unreadable lines are skipped."""
    from exman.index.read import read_metric_rows

    values: dict = {}
    steps: dict = {}
    rows = read_metric_rows(os.path.join(path, METRICS_FILE), [])
    for row in rows:
        step = row.get("step")
        for key, value in row.items():
            if key not in ("step", "time"):
                values[key] = value
                steps[key] = step
    return values, steps, len(rows)


def tail(path: Path, lines: int) -> list[str] | None:
    """The last ``lines`` lines of a text file, reading only its end."""
    try:
        with os.fdopen(open_regular(path), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            chunk = min(size, max(4096, lines * 400))
            fh.seek(size - chunk)
            data = fh.read()
    except OSError:
        return None
    text = data.decode("utf-8", errors="replace").splitlines()
    if chunk < size and text:
        text = text[1:]  # the first line is probably cut
    return text[-lines:] if lines > 0 else []


# -- safety --------------------------------------------------------------------


def inside(root: Path, path: Path) -> bool:
    """Whether ``path``, all symlinks resolved, is ``root`` or below it."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


# -- shell completion ----------------------------------------------------------------


def _root_for_completion(ctx) -> Path | None:
    from exman.layout import find_root

    top = ctx.find_root()
    return find_root(top.params.get("root"))


def complete_ids(ctx, param, incomplete: str):
    """Run numbers and names for shell completion (``_EXMAN_COMPLETE=bash_source exman``)."""
    root = _root_for_completion(ctx)
    if root is None:
        return []
    runs = scan(root).values()
    if incomplete.isdigit() or not incomplete:
        return [str(r.id) for r in runs if str(r.id).startswith(incomplete)]
    return [r.name for r in runs if r.name.startswith(incomplete)]


def complete_marks(ctx, param, incomplete: str):
    """Existing mark keys (folders under ``marked/``), not following links."""
    root = _root_for_completion(ctx)
    if root is None:
        return []
    return [k for k in layout.mark_keys(root) if k.startswith(incomplete)]


class fs_errors:
    """Turn an OSError from the file system (permissions, full disk) into one clean error line."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # A closed pipe (`exman ls | head`) is click's to handle quietly.
        if exc_type is not None and issubclass(exc_type, OSError) and exc.errno != errno.EPIPE:
            raise click.ClickException(os_error_line(exc)) from None
        return False


def os_error_line(exc: OSError) -> str:
    """An OSError as one line: what went wrong and on which file."""
    name = str(getattr(exc, "filename", None) or "")
    where = f": {name if len(name) < 160 else name[:60] + '...' + name[-60:]}" if name else ""
    return f"{exc.strerror or exc}{where}"


# -- marks and the runs table ----------------------------------------------------


def mark_folder(root: Path, key: str, *, create: bool = False) -> Path:
    """``root/marked/<key>``, refusing keys that would leave ``marked/``; with ``create``
    a missing key is fine (``mark`` makes it), without it one clean error."""
    try:
        parts = check_relative_key(key, "mark key")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    marked = root / layout.MARKED
    if marked.is_symlink() or (marked.exists() and not inside(root, marked)):
        raise click.ClickException(f"{marked} is a symlink; refusing to write marks through it")
    folder = marked
    with fs_errors():
        for part in parts:
            folder = folder / part
            shown = os.path.relpath(folder, root)
            if folder.is_symlink():
                raise click.ClickException(f"mark key {key!r}: {shown} is a symlink, a key must stay inside marked/")
            if folder.exists() and not folder.is_dir():
                raise click.ClickException(f"mark key {key!r}: {shown} exists and is not a folder")
            if not folder.exists() and not create:
                raise click.ClickException(f"no mark {key!r} in {root} (see: ls {marked})")
    return folder


def runs_info(index, mark: str | None = None, **options):
    """``index.info(mark, **options)`` for a command: a bad or unknown mark, or an
    unreadable root, is one clean error; the Index's warnings about unreadable
    runs become one stderr line each.
    """
    import warnings

    if mark is not None:
        mark_folder(index.root, mark)  # a clean error for an unknown or unsafe key
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            df = index.info(mark, **options)
        except (ValueError, KeyError, OSError) as exc:
            raise click.ClickException(str(exc).strip("'\"")) from None
    for w in caught:
        click.echo(f"exman: warning: {str(w.message).removeprefix('exman: ')}", err=True)
    return df


# -- one run, as ``show`` and ``diff`` see it ---------------------------------------


def files_of(path) -> list[tuple[str, int]]:
    """(relative name, size) of the run's files; a folder (first level only) has minus its file count."""
    rows = []
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        try:
            if entry.is_dir(follow_symlinks=False):
                count = sum(len(f) for _, _, f in os.walk(entry.path))
                rows.append((entry.name + "/", -count))
            else:
                rows.append((entry.name, entry.stat(follow_symlinks=False).st_size))
        except OSError:
            continue
    return rows


def read_run(run: RunRef) -> dict:
    """Everything about one run as plain data (``exman show --format json``): id, name, folder,
    path, status, meta (run.json), params, commit, dirty, metrics (last values), metric_steps,
    metric_rows, files. Read from the folder, not the Index: no pandas, a running run works."""
    meta = layout.read_run_json(run.path)  # {} for a 0.1.9 run or a half-written one
    params = read_params(run.path, meta)
    if not params and isinstance(meta.get("params"), dict):
        params = dict(meta["params"], **(meta.get("extra") or {}))
    own, extra = layout.split_params(params, meta.get("schema") if isinstance(meta.get("schema"), dict) else None)
    values, steps, rows = last_metrics(run.path)
    return {
        "id": run.id,
        "name": run.name,
        "folder": run.folder,
        "path": str(run.path),
        "status": run_status(run.path, meta) if meta else None,  # crashed/stale: the Index's rule
        "meta": meta,
        "params": own,
        "commit": extra.get("commit"),
        "dirty": extra.get("dirty", extra.get("git_dirty")),
        "metrics": values,
        "metric_steps": steps,
        "metric_rows": rows,
        "files": [{"name": n, "size": s} for n, s in files_of(run.path)],
    }
