"""Parameter sweeps: ``exman.sweep(command, grid, ...)``, ``resume``, ``status``.

This module runs a sweep from start to summary: expand the grid
(``exman.sweeps.grid``), save the spec and read the cells' runs
(``exman.sweeps.records``), hand the jobs (``exman.sweeps.jobs``) to the launcher
a plugin registered (``exman.sweeps.launchers``), stop cleanly on SIGINT/SIGTERM,
and say what failed. How jobs run belongs to launchers (``exman_plugins/launchers/``).
Nothing heavy is imported at module level: yaml, pandas and rich load inside
the functions that need them.

``exman.sweep`` is :func:`sweep`; ``exman.sweep.status(root, sweep_id)``,
``exman.sweep.resume(...)``, ``.decisions`` and ``.expand`` hang off it.
"""

from __future__ import annotations

import datetime
import os
import random
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from exman.sweeps import launchers
from exman.sweeps.adaptive import settings as adaptive_settings
from exman.sweeps.grid import (
    SweepError,
    command_line,
    describe,
    expand,
    same_numbers,
)
from exman.sweeps.jobs import Job
from exman.sweeps.progress import Progress
from exman.sweeps.records import (
    COUNTS,
    Owner,
    cell_counts,
    cell_log,
    counts_line,
    load_spec,
    mark_interrupted,
    new_sweep_id,
    save_spec,
    spec_path,
    sweep_runs,
)

__all__ = ["sweep", "resume", "status", "decisions", "cell_rows", "SweepResult", "CellRun"]


# ---------------------------------------------------------------------------
# the result a caller gets back
# ---------------------------------------------------------------------------


@dataclass
class CellRun:
    cell: int
    params: dict
    returncode: int | None  # None: never started (stopped before its turn)
    status: str  # completed, failed, interrupted, crashed, not started, no run
    run_id: int | None = None
    run_path: str | None = None
    log: str | None = None
    reason: str | None = None  # why an interrupted run stopped (run.json's reason: "time limit", ...)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.status in ("completed", "no run")


@dataclass
class SweepResult:
    """What ``exman.sweep(...)`` returns: every cell run this time, and the failed ones."""

    sweep_id: str
    root: Path
    spec: Path
    total: int  # cells in the whole sweep
    runs: list = field(default_factory=list)  # CellRun per cell run this time, in cell order
    stopped_by: int | None = None  # the signal that stopped the sweep
    seconds: float = 0.0
    decisions: list = field(default_factory=list)  # an adaptive sweep's last look, in words
    detached: bool = False  # queued with --detach: ``runs`` are the cells handed over, none has run yet
    queued: list = field(default_factory=list)  # cells a scheduler still holds, left alone by a resume
    counts: list = field(default_factory=list)  # the whole sweep's cells when this call ended (``cell_rows``)

    @property
    def failures(self) -> list:
        return [] if self.detached else [r for r in self.runs if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failures and self.stopped_by is None

    @property
    def exit_code(self) -> int:
        if self.stopped_by is not None:
            return 128 + self.stopped_by
        return 0 if not self.failures else 1

    def summary(self, root_arg: str | None = None) -> str:
        """The summary; its commands name ``root_arg`` (as the user gave it), else the root
        itself unless ``exman`` would find it from here (a sweep run from Python, ``root="exman"``)."""
        root = _root_option(self.root, root_arg)
        if self.detached:
            return "\n".join(
                [
                    f"sweep {self.sweep_id}: {len(self.runs)} run(s) of {self.total} cell(s) queued; detached, "
                    "they run without this process",
                    f"follow it with: exman{root} sweep --status {self.sweep_id}",
                    f"once they ended, rerun what did not complete with: exman{root} sweep --resume {self.sweep_id}",
                ]
            )
        ran = sum(r.status != "not started" for r in self.runs)
        lines = [
            f"sweep {self.sweep_id}: {counts_line(self.counts)}; this call ran {ran} cell(s) in {self.seconds:.1f} s"
        ]
        if self.stopped_by is not None:
            lines.append(f"stopped by {signal.Signals(self.stopped_by).name}: no new combination was started")
        unstarted = [r.cell for r in self.failures if r.status == "not started"]
        for r in self.failures:
            if r.status == "not started":
                continue
            where = f"run {r.run_id}" if r.run_id is not None else "no run recorded"
            code = "no exit status" if r.returncode is None else f"exit {r.returncode}"
            detail = os.path.relpath(r.run_path, self.root) if r.run_path else os.path.relpath(r.log, self.root)
            status = f"{r.status} ({r.reason})" if r.reason else r.status
            # A status of "no run" would only repeat "no run recorded".
            outcome = f"{where}, {code}" if r.status == "no run" else f"{where}  {status}, {code}"
            lines.append(f"  failed: cell {r.cell} {describe(r.params)}  {outcome}  ({detail})")
            if r.run_id is None and r.log:
                # No run folder: the script stopped before ExParser recorded it (bad option, import error).
                last = _last_line(r.log)
                if last:
                    lines.append(f"          {last}")
        if unstarted:
            lines.append(f"  not started: {len(unstarted)} cell(s): {', '.join(map(str, unstarted))}")
        if self.queued:
            lines.append(
                f"  still queued or running (not rerun): {len(self.queued)} cell(s): {', '.join(map(str, self.queued))}"
            )
        lines.extend(self.decisions)
        if self.failures or self.stopped_by is not None:
            lines.append(f"rerun what is missing with: exman{root} sweep --resume {self.sweep_id}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _root_option(root: Path, root_arg: str | None = None) -> str:
    """ " --root ROOT" for a command to print: ``root_arg`` as the user gave it, else the root
    itself unless ``exman`` would find it from the working folder anyway."""
    if root_arg is None:
        from exman.layout import find_root

        try:
            here = find_root()
        except OSError:  # the working folder was removed
            here = None
        root_arg = None if here == Path(root).resolve() else str(root)
    return f" --root {shlex.quote(root_arg)}" if root_arg else ""


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


# ---------------------------------------------------------------------------
# the API: sweep, resume, status
# ---------------------------------------------------------------------------


def _existing_root(root) -> Path:
    from exman.layout import is_root, not_a_root

    if root is None:
        from exman.layout import find_root

        found = find_root()
        if found is None:
            raise SweepError("no exman root found: pass root=... (--root ROOT) or set EXMAN_ROOT")
        return found
    root = Path(root)
    if not is_root(root):
        raise SweepError(not_a_root(root))
    return root.resolve()


def prepare_root(root) -> Path:
    """The root a sweep writes to; a missing or empty folder gets the exman layout."""
    from exman.layout import create, is_root

    if root is None:
        return _existing_root(None)
    root = Path(root)
    if not is_root(root):
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise SweepError(f"{root} is not an exman root and not empty; refusing to write into it")
        create(root)
    return root.resolve()


def load_file(path) -> dict:
    """A YAML sweep file: command, grid, zip, repeat, jobs, launcher, scheduler, options."""
    import yaml

    from exman.fs import read_text

    try:
        data = yaml.safe_load(read_text(path))  # a regular file only: /dev/zero would never end
    except OSError as exc:
        raise SweepError(f"--file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SweepError(f"--file {path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"--file {path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise SweepError(f"--file {path}: expected a mapping (command, grid, zip, jobs, launcher)")
    unknown = set(data) - {"command", "grid", "zip", "repeat", "jobs", "launcher", "scheduler", "options", *ADAPTIVE}
    if unknown:
        raise SweepError(f"--file {path}: unknown key(s) {', '.join(sorted(unknown))}")
    if data.get("grid") is not None and not isinstance(data["grid"], dict):
        raise SweepError(f"--file {path}: grid must map parameter names to values")
    if data.get("options") is not None and not isinstance(data["options"], dict):
        raise SweepError(f"--file {path}: options must map launcher option names to values")
    return data


def _command(command) -> list[str]:
    if isinstance(command, str):
        command = shlex.split(command)
    elif command is not None and not isinstance(command, (list, tuple)):
        raise SweepError(f"the command must be a string or a list of words, not {command!r}")
    command = [str(c) for c in (command or [])]
    if not command:
        raise SweepError("no command to run: give it after --, e.g. exman sweep -p lr=0.1,0.01 -- python train.py")
    return command


def _zip_groups(value) -> list:
    """``zip=``: one group (a mapping) or a list of them; expand checks each group."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise SweepError("zip must be one group {name: values} or a list of such groups")
    return list(value)


def _jobs(value) -> int:
    """``--jobs`` from a sweep file, ``-o jobs=``, the spec or Python: a positive integer."""
    try:
        jobs = int(value) if not isinstance(value, (bool, float)) else None
    except (TypeError, ValueError):
        jobs = None
    if jobs is None or jobs < 1:
        raise SweepError(f"jobs must be a positive integer, got {value!r}")
    return jobs


# Sweep-file keys (and keyword arguments) of adaptive sweeps; see exman.sweeps.adaptive.
ADAPTIVE = ("until", "max_repeat", "race", "alpha", "max_rounds", "shuffle")


def sweep(
    command=None,
    grid=None,
    *,
    zip=None,
    repeat=None,
    jobs=None,
    launcher=None,
    root=None,
    scheduler=None,
    options=None,
    file=None,
    dry_run=False,
    cwd=None,
    quiet=False,
    stream=None,
    pm=None,
    until=None,
    max_repeat=None,
    race=None,
    alpha=None,
    max_rounds=None,
    shuffle=None,
    detach=False,
):
    """Run ``command`` once per grid cell, in parallel, recorded under ``root``.

    ``grid`` maps names to values (a list, ``"a,b"``, or ``"log:1e-4:1e-1:4"``),
    ``zip`` one or more groups of names that vary together, ``repeat`` a seed
    count. ``file`` is a YAML sweep file; explicit arguments override it.

    Adaptive sweeps run in rounds (``exman.sweeps.adaptive``): ``until="ci(acc)
    <= 0.01"`` adds seeds to a cell until its CI is that narrow, ``race="max(acc)"``
    stops adding seeds to cells significantly worse than the best one (at level
    ``alpha``, default 0.05, over at most ``max_rounds`` rounds, default 4);
    ``repeat`` is then the seeds every cell starts with and ``max_repeat`` the
    most it gets. ``shuffle=SEED`` runs each round's cells in a seeded random order.
    ``detach=True`` queues the runs (a launcher such as submitit on SLURM) and returns
    without waiting; ``status`` and ``resume`` follow the sweep later, from any process.
    Returns a :class:`SweepResult`, or the list of command lines with ``dry_run``.
    """
    data = load_file(file) if file is not None else {}
    given = dict(until=until, max_repeat=max_repeat, race=race, alpha=alpha, max_rounds=max_rounds, shuffle=shuffle)
    extra = {k: given[k] if given[k] is not None else data.get(k) for k in ADAPTIVE}
    command = _command(command if command else data.get("command"))
    full_grid = dict(data.get("grid") or {})
    full_grid.update(grid or {})
    zips = _zip_groups(data.get("zip")) + _zip_groups(zip)
    repeat = repeat if repeat is not None else data.get("repeat")
    adaptive = adaptive_settings(
        repeat,
        until=extra["until"],
        max_repeat=extra["max_repeat"],
        race=extra["race"],
        alpha=0.05 if extra["alpha"] is None else extra["alpha"],
        max_rounds=4 if extra["max_rounds"] is None else extra["max_rounds"],
    )
    shuffle = _shuffle_seed(extra["shuffle"])
    cells = expand(full_grid, zips, repeat)
    for name, texts in same_numbers(cells) if not quiet else []:
        print(
            f"exman sweep: {name}={' and '.join(texts)} are one number: if the script reads {name} as a number, "
            "their combinations run twice",
            file=stream or sys.stderr,
            flush=True,
        )
    launcher = launcher or data.get("launcher") or "local"
    opts = dict(data.get("options") or {})
    if options is not None and not isinstance(options, dict):
        raise SweepError(f"options must map launcher option names to values, not {options!r}")
    opts.update(options or {})
    jobs = next((j for j in (jobs, data.get("jobs"), opts.get("jobs")) if j is not None), None)
    scheduler = scheduler or data.get("scheduler") or opts.get("scheduler")
    opts.update(jobs=(os.cpu_count() or 1) if jobs is None else _jobs(jobs), scheduler=scheduler)
    if dry_run:
        return [command_line(command, cells[i]) for i in _order(range(len(cells)), shuffle)]
    pm = pm or _plugin_manager()
    chosen = launchers.get(pm, launcher)
    if detach:
        if adaptive:
            raise SweepError(
                "--detach cannot run an adaptive sweep (--until, --race): it looks at each round "
                "before the next; run it attached (under nohup or tmux on a login node)"
            )
        _check_detach(chosen, opts)
    root = prepare_root(root)
    sweep_id = new_sweep_id(root)
    spec = {
        "id": sweep_id,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command,
        "cwd": os.path.abspath(cwd or os.getcwd()),
        "grid": full_grid,
        "zip": zips,
        "repeat": repeat,
        "launcher": launcher,
        "options": opts,
        "cells": cells,
    }
    if shuffle is not None:
        spec["shuffle"] = shuffle
    if adaptive:
        spec["adaptive"] = adaptive
    with Owner(root, sweep_id):
        save_spec(root, spec)
        if detach:
            return _execute(root, spec, list(range(len(cells))), pm=pm, quiet=quiet, stream=stream, detach=True)
        return _rounds(root, spec, list(range(len(cells))), pm=pm, quiet=quiet, stream=stream)


def resume(
    sweep_id: str,
    *,
    root=None,
    jobs=None,
    launcher=None,
    scheduler=None,
    options=None,
    dry_run=False,
    quiet=False,
    stream=None,
    pm=None,
    detach=False,
):
    """Rerun the cells of ``sweep_id`` that have no completed run (and none running), same id.

    Cells whose jobs a scheduler still holds (SLURM tasks pending, requeued or running, e.g.
    of a ``detach=True`` sweep) are not rerun. ``detach=True`` queues the reruns and returns.
    """
    root = _existing_root(root)
    spec = load_spec(root, sweep_id)
    pm = pm or _plugin_manager()
    if dry_run:
        cells = _order(_todo(root, spec, _queued(pm, root, spec))[0], spec.get("shuffle"))
        return [command_line(spec["command"], spec["cells"][i]) for i in cells]
    chosen = launchers.get(pm, launcher or spec.get("launcher") or "local")
    if detach:
        if spec.get("adaptive"):
            raise SweepError(f"sweep {sweep_id} is adaptive: --detach cannot take its looks between rounds")
        _check_detach(chosen, {**(spec.get("options") or {}), **(options or {})})
    with Owner(root, sweep_id):
        queued = _queued(pm, root, spec)
        rows = cell_counts(root, spec, queued)
        todo = [row["cell"] for row in rows if row["missing"]]
        # cells the scheduler holds and no run completed (pending, requeued, running), and live children
        held = [row["cell"] for row in rows if row.get("state") and not row["completed"]]
        started = [cell for cell in held if rows[cell]["state"] == "STARTED"]
        if launcher:
            spec["launcher"] = launcher
        opts = spec.setdefault("options", {})
        opts.update(options or {})
        opts.update(jobs=_jobs(jobs if jobs else opts.get("jobs") or os.cpu_count() or 1))
        if scheduler:
            opts["scheduler"] = scheduler
        if todo or _looking(spec):
            spec.setdefault("resumed", []).append(datetime.datetime.now().astimezone().isoformat(timespec="seconds"))
            save_spec(root, spec)
        scheduled = [cell for cell in held if cell not in started]
        for cells, where in ((scheduled, "still pending or running in the scheduler"), (started, _STARTED)):
            if cells and not quiet:
                print(
                    f"sweep {sweep_id}: {len(cells)} cell(s) {where}, not rerun: {', '.join(map(str, cells))}",
                    file=stream or sys.stderr,
                    flush=True,
                )
        if detach:
            result = _execute(root, spec, todo, pm=pm, quiet=quiet, stream=stream, detach=True)
        else:
            result = _rounds(root, spec, todo, pm=pm, quiet=quiet, stream=stream)
        result.queued = held
        return result


_STARTED = "started by an earlier exman sweep, their children still running (no run recorded yet)"


def _looking(spec: dict) -> bool:
    """Whether an adaptive sweep has another look to take (its last look added seeds, or none was taken)."""
    adaptive = spec.get("adaptive")
    if not adaptive:
        return False
    looks = adaptive.get("looks") or []
    return not looks or any(d.get("add") for d in looks[-1]["cells"])


def _rounds(root: Path, spec: dict, todo: list[int], *, pm=None, quiet=False, stream=None) -> SweepResult:
    """Run ``todo``; an adaptive sweep then looks at whole rounds and launches the seeds each asks for.

    A round that did not complete (a failure, a stop) ends the loop before a
    look: ``--resume`` reruns what is missing and carries on from the same look.
    """
    from exman.sweeps import adaptive as sweep_adaptive

    result = _execute(root, spec, todo, pm=pm, quiet=quiet, stream=stream)
    while result.ok and _looking(spec) and not any(r["missing"] or r["running"] for r in cell_counts(root, spec)):
        new = sweep_adaptive.next_round(root, spec)
        save_spec(root, spec)
        result.total = len(spec["cells"])
        if not new:
            # The summary lists every cell's final state; each look printed its changes.
            result.decisions = sweep_adaptive.describe_look(spec, changes=False)
            break
        if not quiet:
            for line in sweep_adaptive.describe_look(spec):
                print(line, file=stream or sys.stderr, flush=True)
        more = _execute(root, spec, new, pm=pm, quiet=quiet, stream=stream)
        result.runs += more.runs
        result.seconds += more.seconds
        result.stopped_by = more.stopped_by
    result.counts = cell_rows(root, spec, pm)[0]
    return result


def _shuffle_seed(value):
    if value is None or value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SweepError(f"--shuffle takes an integer seed, got {value!r}") from None
    return value


def _order(cells, shuffle) -> list[int]:
    """The cells in the order to launch them: as given, or shuffled by ``shuffle`` (a seed)."""
    cells = list(cells)
    if shuffle is not None:
        random.Random(int(shuffle)).shuffle(cells)
    return cells


def _todo(root: Path, spec: dict, queued: dict | None = None) -> tuple[list[int], list[dict]]:
    """The cells ``--resume`` reruns: the ``missing`` ones of ``cell_counts`` (what ``--status`` shows)."""
    cells = [row["cell"] for row in cell_counts(root, spec, queued) if row["missing"]]
    return cells, [spec["cells"][i] for i in cells]


def _queued(pm, root: Path, spec: dict) -> dict | None:
    """``{cell: state}`` of the sweep's jobs a scheduler still holds (every launcher's ``queued``),
    None if none was queued. Every launcher is asked: a resume may use another launcher than the start."""
    answers = [
        a
        for one in launchers.collect(pm).values()
        if one.queued is not None
        for a in [one.queued(root, spec["id"])]
        if a is not None
    ]
    if not answers:
        return None
    merged: dict = {}
    for answer in answers:
        merged.update({int(cell): state for cell, state in answer.items()})
    return merged


def _check_detach(launcher: launchers.Launcher, options: dict) -> None:
    verdict = launcher.can_detach(dict(options)) if launcher.can_detach is not None else None
    if verdict is True:
        return
    if isinstance(verdict, str) and verdict:
        raise SweepError(verdict)
    raise SweepError(
        f"--detach: the {launcher.name} launcher runs the sweep's runs as children of exman sweep, which must "
        "stay; keep it running with nohup or tmux instead (or use --launcher submitit on SLURM)"
    )


def _execute(
    root: Path, spec: dict, todo: list[int], *, pm=None, quiet=False, stream=None, detach: bool = False
) -> SweepResult:
    sweep_id = spec["id"]
    opts = dict(spec.get("options") or {})
    opts.update(root=str(root), sweep_id=sweep_id)
    if detach:
        opts["detach"] = True
    jobs = [
        Job(
            sweep_id=sweep_id,
            cell=i,
            params=spec["cells"][i],
            argv=command_line(spec["command"], spec["cells"][i]),
            cwd=spec.get("cwd") or os.getcwd(),
            env={"EXMAN_RUN_ROOT": str(root), "EXMAN_SWEEP_ID": sweep_id, "EXMAN_SWEEP_CELL": str(i)},
            log=str(cell_log(root, sweep_id, i)),
        )
        for i in _order(todo, spec.get("shuffle"))
    ]
    result = SweepResult(sweep_id=sweep_id, root=root, spec=spec_path(root, sweep_id), total=len(spec["cells"]))
    progress = Progress(len(jobs), sweep_id, stream=stream, quiet=quiet)
    if not jobs:
        progress.note(f"sweep {sweep_id}: every cell has a completed, running or queued run; nothing to do")
        return result
    pm = pm or _plugin_manager()
    name = spec.get("launcher") or "local"
    launch = launchers.get(pm, name).launch
    progress.note(f"sweep {sweep_id}: {len(jobs)} run(s), launcher {name}, {opts.get('jobs')} job(s)")
    stopped: list[int] = []
    # A resumed cell's runs from earlier calls are not this call's: one not started now is "not started".
    earlier = set() if detach else {meta["path"] for meta in sweep_runs(root, sweep_id)}
    began = time.monotonic()
    restore = _catch_signals(progress, stopped)
    try:
        codes = launch(jobs, opts, progress)
    except SweepError as exc:
        raise SweepError(
            f"{exc}; the sweep is saved, run it later with: exman{_root_option(root)} sweep --resume {sweep_id}"
        ) from None
    finally:
        progress.close()
        restore()
    if codes is None:
        raise SweepError(f"the {name} launcher did not say how the sweep's runs ended (its launch returned None)")
    result.seconds = time.monotonic() - began
    if detach:
        result.detached = True
        result.runs = [
            CellRun(cell=job.cell, params=job.params, returncode=None, status="queued", log=job.log)
            for job in sorted(jobs, key=lambda j: j.cell)
        ]
        return result
    result.stopped_by = stopped[0] if stopped else None
    records = _latest_by_cell(root, sweep_id, stopping=progress.stopping.is_set(), earlier=earlier)
    for job in sorted(jobs, key=lambda j: j.cell):
        code = codes.get(job.cell)
        meta = records.get(job.cell)
        if code is None and meta is None:
            state = "not started"
        else:
            state = meta["status"] if meta else "no run"
        result.runs.append(
            CellRun(
                cell=job.cell,
                params=job.params,
                returncode=code,
                status=state,
                run_id=meta.get("id") if meta else None,
                run_path=meta.get("path") if meta else None,
                log=job.log,
                reason=meta.get("reason") if meta else None,
            )
        )
    return result


def status(root, sweep_id: str):
    """Completeness of a sweep: a pandas DataFrame, one row per cell (see ``cell_counts``).

    Columns: ``cell``, the cell's params, ``completed``, ``failed`` (crashed
    included), ``interrupted``, ``running``, ``missing`` (1: ``--resume`` reruns
    it), ``last_id``. ``df.attrs["params"]`` names the param columns. A sweep whose
    jobs went to a scheduler (SLURM) also has ``queued`` (1: the scheduler will still
    start a run for it) and ``state`` (the scheduler's word for its job, "" when it
    holds none); so does one with a child still starting after its ``exman sweep`` died
    (``STARTED``: alive, no run recorded yet); ``df.attrs["queued_error"]`` says why the scheduler could not be asked.
    """
    import pandas as pd

    root = _existing_root(root)
    spec = load_spec(root, sweep_id)
    own = ("cell", *COUNTS, "queued", "state", "missing", "last_id")
    rows: list = []
    names: dict = {}
    found, error = cell_rows(root, spec)
    for row in found:
        params = row.pop("params")
        # A parameter named like one of this table's own columns gets the suffix _param.
        for key in params:
            names.setdefault(key, key + "_param" if key in own else key)
        rows.append({"cell": row.pop("cell"), **{names[k]: v for k, v in params.items()}, **row})
    df = pd.DataFrame(rows)
    df["last_id"] = df["last_id"].astype("Int64")
    if error:
        df.attrs["queued_error"] = error
    df.attrs["sweep"] = sweep_id
    df.attrs["adaptive"] = bool(spec.get("adaptive"))
    df.attrs["params"] = list(names.values())
    return df


def cell_rows(root: Path, spec: dict, pm=None) -> tuple[list[dict], str | None]:
    """``cell_counts`` with what the scheduler still holds (``queued`` and ``state`` when a
    launcher queued jobs for the sweep), and why the scheduler could not be asked (or None)."""
    try:
        queued = _queued(pm or _plugin_manager(), root, spec)
    except SweepError as exc:
        return cell_counts(root, spec), str(exc)
    return cell_counts(root, spec, queued), None


def decisions(root, sweep_id: str):
    """An adaptive sweep's grid cells: params, ``seeds`` given, ``replicates`` completed, ``mean``,
    ``ci_low``, ``ci_high`` (as ``Index.summary``) and ``state`` at the last look
    (``more``, ``done``, ``raced``, ``max``, ``rounds``); a pandas DataFrame."""
    from exman.sweeps import adaptive as sweep_adaptive

    root = _existing_root(root)
    spec = load_spec(root, sweep_id)
    if not spec.get("adaptive"):
        raise SweepError(f"sweep {sweep_id} is not adaptive (no --until or --race)")
    return sweep_adaptive.table(root, spec)


def _plugin_manager():
    # A script's plugins plus the launchers; never the command line's.
    from exman.plugins import get_plugin_manager

    return get_plugin_manager(launchers=True)


def _latest_by_cell(root: Path, sweep_id: str, *, stopping: bool, earlier: set) -> dict[int, dict]:
    """The newest run of each cell made since ``earlier`` (the paths of the runs there were);
    a stopped sweep records its dead ``running`` runs as interrupted."""
    latest = {}
    for meta in sweep_runs(root, sweep_id):
        if meta["path"] in earlier:
            continue
        if stopping and meta["status"] == "crashed":
            mark_interrupted(meta)
        try:
            latest[int(meta["sweep_cell"])] = meta
        except (KeyError, TypeError, ValueError):
            continue
    return latest


def _catch_signals(progress: Progress, stopped: list):
    """First SIGINT/SIGTERM/SIGHUP: stop starting, SIGTERM the children. Second: SIGKILL them."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        if not progress.stopping.is_set():
            stopped.append(signum)
            progress.stopping.set()
            progress.note(
                f"exman sweep: {signal.Signals(signum).name}: stopping; waiting for running children "
                "(again to kill them)"
            )
        else:
            progress.killing.set()

    # SIGHUP too (the ssh session closed), unless nohup asked to ignore it: the children must not be orphaned.
    hup = [signal.SIGHUP] if signal.getsignal(signal.SIGHUP) is signal.SIG_DFL else []
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, *hup)}

    def restore():
        for sig, previous in old.items():
            signal.signal(sig, previous)

    return restore


# `exman.sweep(...)` runs a sweep; its companions hang off the function itself.
sweep.resume = resume  # type: ignore[attr-defined]
sweep.status = status  # type: ignore[attr-defined]
sweep.decisions = decisions  # type: ignore[attr-defined]
sweep.expand = expand  # type: ignore[attr-defined]
