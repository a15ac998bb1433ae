"""Parameter sweeps: expand a grid into cells, save the spec, hand jobs to a launcher.

This module owns the grid syntax, the saved spec ``root/sweeps/<id>.yaml``, the
per-cell status that ``--status`` prints and ``--resume`` acts on, and the
closing summary. *How* jobs run belongs to launcher plugins behind the
``launch`` hook (``exman_plugins/launchers/``). Remote workers (dask, submitit)
import this module to run one job, so nothing heavy is imported at module
level: yaml, pandas and rich load inside the functions that need them.

The module is callable: ``exman.sweep(command, grid, ...)`` is :func:`sweep`,
and ``exman.sweep.status(root, sweep_id)`` / ``exman.sweep.resume(...)`` work too.
"""
from __future__ import annotations

import datetime
import itertools
import json
import math
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

SPEC_FOLDER = "sweeps"
NAME = re.compile(r"^[A-Za-z_][\w.-]*$")
# A child that ignores SIGTERM this long after a stop gets SIGKILL.
GRACE = float(os.environ.get("EXMAN_SWEEP_GRACE", "30"))


class SweepError(ValueError):
    """Bad sweep input (grid syntax, spec, root): one clear line for the user."""


# ---------------------------------------------------------------------------
# grid syntax
# ---------------------------------------------------------------------------


def _clean(x: float) -> float | int:
    # 10 ** -3 is 0.0010000000000000002; 12 significant digits is what a person typed.
    x = float(format(x, ".12g"))
    return x


def _number(text: str, spec: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise SweepError(f"{spec!r}: {text!r} is not a number") from None


def parse_values(text) -> list:
    """``"a,b"`` -> ["a", "b"]; ``log:1e-4:1e-1:4``, ``lin:0:1:5``, ``range:0:5[:step]`` -> numbers.

    Plain values stay strings (the child parses them with its own types); a
    list or scalar (from YAML or Python) is taken as it is.
    """
    if isinstance(text, (list, tuple)):
        out = []
        for item in text:
            out.extend(parse_values(item) if isinstance(item, str) and _is_range(item) else [item])
        return out
    if not isinstance(text, str):
        return [text]
    if _is_range(text):
        kind, *parts = text.split(":")
        if kind == "range":
            if len(parts) not in (2, 3):
                raise SweepError(f"{text!r}: expected range:START:STOP[:STEP]")
            start, stop = _number(parts[0], text), _number(parts[1], text)
            step = _number(parts[2], text) if len(parts) == 3 else 1
            if step == 0:
                raise SweepError(f"{text!r}: step must not be 0")
            if all(isinstance(v, int) for v in (start, stop, step)):
                return list(range(start, stop, step))
            count = max(0, math.ceil((stop - start) / step - 1e-9))
            return [_clean(start + i * step) for i in range(count)]
        if len(parts) != 3:
            raise SweepError(f"{text!r}: expected {kind}:START:STOP:COUNT")
        start, stop, count = _number(parts[0], text), _number(parts[1], text), _number(parts[2], text)
        if not isinstance(count, int) or count < 1:
            raise SweepError(f"{text!r}: COUNT must be a positive integer")
        if kind == "log":
            if start <= 0 or stop <= 0:
                raise SweepError(f"{text!r}: log bounds must be positive")
            a, b = math.log10(start), math.log10(stop)
            return [_clean(10 ** (a + (b - a) * i / (count - 1))) if count > 1 else _clean(start) for i in range(count)]
        return [_clean(start + (stop - start) * i / (count - 1)) if count > 1 else _clean(start) for i in range(count)]
    values = text.split(",")
    if any(v == "" for v in values):
        raise SweepError(f"{text!r}: empty value (values are separated by single commas)")
    return values


def _is_range(text: str) -> bool:
    return text.split(":", 1)[0] in ("log", "lin", "range") and ":" in text


def parse_assignment(text: str) -> tuple[str, list]:
    """``"lr=0.1,0.01"`` -> ("lr", ["0.1", "0.01"])."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep:
        raise SweepError(f"{text!r}: expected NAME=V1,V2,... (e.g. lr=0.1,0.01)")
    check_name(name)
    return name, parse_values(values)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise SweepError(f"parameter name {name!r} must look like an option name: letters, digits, _ . -")
    return name


def expand(grid: dict | None = None, zip: list | dict | None = None, repeat=None) -> list[dict]:
    """Every combination, in order: grid axes (first slowest), each zip group, then the repeat key.

    ``zip`` is one group ``{name: values}`` or a list of groups; the names in a
    group vary together and need equal lengths. ``repeat`` is a count (key
    ``seed``) or ``{"count": N, "key": NAME}`` and adds ``NAME = 0..N-1``.
    """
    axes: list[list[dict]] = []
    seen: set[str] = set()

    def claim(name):
        check_name(name)
        if name in seen:
            raise SweepError(f"parameter {name!r} is given twice")
        seen.add(name)

    for name, values in (grid or {}).items():
        claim(name)
        values = parse_values(values)
        if not values:
            raise SweepError(f"parameter {name!r} has no values")
        axes.append([{name: v} for v in values])
    groups = [zip] if isinstance(zip, dict) else list(zip or [])
    for group in groups:
        if not isinstance(group, dict) or not group:
            raise SweepError("a zip group must be a mapping of names to equally long value lists")
        columns = {}
        for name, values in group.items():
            claim(name)
            columns[name] = parse_values(values)
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            detail = ", ".join(f"{n}: {len(v)}" for n, v in columns.items())
            raise SweepError(f"zipped parameters need the same number of values ({detail})")
        axes.append([{n: columns[n][i] for n in columns} for i in range(lengths.pop())])
    count, key = _repeat(repeat)
    if count:
        claim(key)
        axes.append([{key: i} for i in range(count)])
    if not axes:
        raise SweepError("nothing to sweep: give at least one -p NAME=VALUES, -z, --repeat or --file")
    cells = []
    for combo in itertools.product(*axes):
        cell = {}
        for part in combo:
            cell.update(part)
        cells.append(cell)
    return cells


def _repeat(repeat) -> tuple[int, str]:
    if repeat in (None, 0, False):
        return 0, "seed"
    if isinstance(repeat, dict):
        count, key = repeat.get("count", 0), repeat.get("key", "seed")
    else:
        count, key = repeat, "seed"
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise SweepError(f"repeat must be a non-negative integer, got {count!r}")
    return count, key


def argument(value) -> list[str]:
    """How one value is written on the child's command line."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in argument(v)]
    if isinstance(value, float):
        return [repr(value)]
    return [str(value)]


def command_line(command: list[str], params: dict) -> list[str]:
    """``COMMAND ARGS --NAME VALUE ...``."""
    argv = list(command)
    for name, value in params.items():
        argv += [f"--{name}", *argument(value)]
    return argv


def describe(params: dict) -> str:
    return " ".join(f"{k}={' '.join(argument(v))}" for k, v in params.items())


# ---------------------------------------------------------------------------
# jobs: one child process per cell (shared by every launcher)
# ---------------------------------------------------------------------------


@dataclass
class Job:
    """One cell to run; picklable, so dask and submitit can ship it to a worker."""

    sweep_id: str
    cell: int
    params: dict
    argv: list
    cwd: str
    env: dict  # added to the worker's environment
    log: str  # the child's stdout+stderr (what happens before ExParser takes over, too)

    def __str__(self) -> str:
        return f"cell {self.cell} {describe(self.params)}"


def start_job(job: Job) -> subprocess.Popen:
    """Start the child in its own session, so signals reach its whole process group and only it."""
    Path(job.log).parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(job.env)
    with open(job.log, "wb") as out:
        out.write(f"$ {shlex.join(job.argv)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(job.argv, cwd=job.cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            out.write(f"exman sweep: cannot start: {exc}\n".encode())
            raise
    return proc


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _pid_file(job: Job) -> Path:
    return Path(job.log).with_suffix(".pid")


def _write_pid(job: Job, pid: int) -> None:
    # Lets a launcher whose workers run on this host stop the child directly.
    try:
        _pid_file(job).write_text(f"{os.uname().nodename} {pid}\n")
    except OSError:
        pass


def stop_local_child(job: Job, sig: int = signal.SIGTERM) -> bool:
    """Signal the child of ``job`` if it runs on this host; False when it cannot be reached."""
    try:
        host, pid = _pid_file(job).read_text().split()
    except (OSError, ValueError):
        return False
    if host != os.uname().nodename:
        return False
    try:
        os.killpg(int(pid), sig)
    except (ProcessLookupError, PermissionError):
        pass
    return True


class _Stop(Exception):
    def __init__(self, signum):
        self.signum = signum


def run_job(job: Job, should_stop=None, poll: float = 0.5) -> int | None:
    """Run one job to the end and return its exit status (blocking; for remote workers).

    ``should_stop()`` is polled; when it turns true the child gets SIGTERM and is
    waited for. In a main thread SIGTERM/SIGINT to this process do the same (a
    SLURM ``scancel``, submitit's cancel). Returns None if stopped before starting.
    """
    if should_stop is not None and should_stop():
        return None
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        def raise_stop(signum, frame):
            raise _Stop(signum)

        for sig in (signal.SIGTERM, signal.SIGINT):
            handlers[sig] = signal.signal(sig, raise_stop)
    proc = None
    try:
        proc = start_job(job)
        _write_pid(job, proc.pid)
        while True:
            try:
                return proc.wait(timeout=poll)
            except subprocess.TimeoutExpired:
                pass
            if should_stop is not None and should_stop():
                return _terminate_and_wait(proc)
    except _Stop:
        return _terminate_and_wait(proc) if proc is not None else None
    finally:
        for sig, old in handlers.items():
            signal.signal(sig, old)
        try:
            _pid_file(job).unlink()
        except OSError:
            pass


def _terminate_and_wait(proc: subprocess.Popen) -> int:
    signal_group(proc, signal.SIGTERM)
    try:
        return proc.wait(timeout=GRACE)
    except subprocess.TimeoutExpired:
        signal_group(proc, signal.SIGKILL)
        return proc.wait()


# ---------------------------------------------------------------------------
# the saved spec and what the root knows about each cell
# ---------------------------------------------------------------------------


def spec_path(root: Path, sweep_id: str) -> Path:
    from exman.fs import check_component

    try:
        check_component(sweep_id, "sweep id")
    except ValueError as exc:
        raise SweepError(str(exc)) from None
    return Path(root) / SPEC_FOLDER / f"{sweep_id}.yaml"


def new_sweep_id(root: Path) -> str:
    folder = Path(root) / SPEC_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        sweep_id = f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        try:
            # Exclusive: two sweeps started in the same second never share an id.
            (folder / sweep_id).mkdir()
            return sweep_id
        except FileExistsError:
            continue


def save_spec(root: Path, spec: dict) -> Path:
    import yaml

    from exman.fs import atomic_write

    path = spec_path(root, spec["id"])
    atomic_write(path, yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, allow_unicode=True))
    return path


def load_spec(root: Path, sweep_id: str) -> dict:
    import yaml

    path = spec_path(root, sweep_id)
    try:
        spec = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        known = list_sweeps(root)
        hint = f" (known: {', '.join(known[-5:])})" if known else ""
        raise SweepError(f"no sweep {sweep_id!r} under {root}{hint}") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"{path}: not a sweep spec ({exc.__class__.__name__})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("cells"), list) or not spec.get("command"):
        raise SweepError(f"{path}: not a sweep spec (needs id, command and cells)")
    return spec


def list_sweeps(root: Path) -> list[str]:
    folder = Path(root) / SPEC_FOLDER
    try:
        return sorted(p.stem for p in folder.glob("*.yaml"))
    except OSError:
        return []


def sweep_runs(root: Path, sweep_id: str) -> list[dict]:
    """run.json of every run recorded for ``sweep_id`` (runs/, fails/, tmp/), sorted by id.

    Reads one small JSON file per run and skips the ones that do not mention
    the id before parsing them, so a large root costs little.
    """
    needle = f'"{sweep_id}"'
    found = []
    for sub in ("runs", "fails", "tmp"):
        try:
            entries = list(os.scandir(Path(root) / sub))
        except OSError:
            continue
        for entry in entries:
            file = os.path.join(entry.path, "run.json")
            try:
                with open(file, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            if needle not in text:
                continue
            try:
                meta = json.loads(text)
            except ValueError:
                continue  # being rewritten right now; atomic writes make this rare
            if meta.get("sweep") != sweep_id:
                continue
            meta["path"] = entry.path
            meta["status"] = _live_status(meta)
            found.append(meta)
    found.sort(key=lambda m: m.get("id") or 0)
    return found


def _live_status(meta: dict) -> str:
    """``running`` on this host with its process gone is ``crashed`` (the Index's word)."""
    status = meta.get("status") or "running"
    if status == "running" and meta.get("host") == os.uname().nodename and not _alive(meta.get("pid")):
        return "crashed"
    return status


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True  # someone else's process, or no pid: do not guess it is dead
    return True


COUNTS = ("completed", "failed", "interrupted", "running")


def cell_counts(root: Path, spec: dict) -> list[dict]:
    """One dict per cell: ``cell``, its params, run counts by status, ``missing``, ``last_id``.

    ``failed`` counts crashed runs too. ``missing`` is 1 when the cell has no
    completed run and none running: exactly the cells ``--resume`` reruns.
    """
    by_cell: dict[int, list[dict]] = {}
    for meta in sweep_runs(root, spec["id"]):
        try:
            by_cell.setdefault(int(meta.get("sweep_cell")), []).append(meta)
        except (TypeError, ValueError):
            continue
    rows = []
    for index, params in enumerate(spec["cells"]):
        runs = by_cell.get(index, [])
        counts = dict.fromkeys(COUNTS, 0)
        for meta in runs:
            status = meta["status"]
            key = "failed" if status == "crashed" else status
            if key in counts:
                counts[key] += 1
        missing = int(counts["completed"] == 0 and counts["running"] == 0)
        rows.append({"cell": index, **params, **counts, "missing": missing,
                     "last_id": runs[-1].get("id") if runs else None})
    return rows


def status(root, sweep_id: str):
    """Completeness of a sweep: a pandas DataFrame, one row per cell (see :func:`cell_counts`)."""
    import pandas as pd

    root = _existing_root(root)
    spec = load_spec(root, sweep_id)
    rows = cell_counts(root, spec)
    df = pd.DataFrame(rows)
    df["last_id"] = df["last_id"].astype("Int64")
    df.attrs["sweep"] = sweep_id
    df.attrs["params"] = [c for c in df.columns if c not in ("cell", *COUNTS, "missing", "last_id")]
    return df


# ---------------------------------------------------------------------------
# progress: a rich bar on a terminal, plain lines otherwise
# ---------------------------------------------------------------------------


class Progress:
    """What a launcher reports to, and the stop flags it must watch.

    ``stopping`` is set on the first SIGINT/SIGTERM (start nothing new, SIGTERM
    the running children, wait for them); ``killing`` on the second (SIGKILL).
    """

    def __init__(self, total: int, sweep_id: str, *, stream=None, live: bool | None = None, quiet: bool = False):
        self.total = total
        self.sweep_id = sweep_id
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.done = self.failed = self.running = 0
        self.stopping = threading.Event()
        self.killing = threading.Event()
        self.started_at = time.monotonic()
        self._lock = threading.Lock()
        self._starts: dict[int, float] = {}
        self._bar = None
        if live is None:
            live = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        if live:
            self._bar = self._make_bar()

    def _make_bar(self):
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        except ImportError:
            return None  # plain lines then
        bar = Bar(TextColumn("sweep {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[failed]} failed, {task.fields[running]} running"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  console=Console(file=self.stream), transient=False)
        self._task = bar.add_task(self.sweep_id, total=self.total, failed=0, running=0)
        bar.start()
        return bar

    def _refresh(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, failed=self.failed, running=self.running)

    def started(self, job: Job) -> None:
        with self._lock:
            if job.cell in self._starts:
                return
            self._starts[job.cell] = time.monotonic()
            self.running += 1
            self._refresh()

    def finished(self, job: Job, returncode: int | None) -> None:
        with self._lock:
            began = self._starts.pop(job.cell, None)
            if began is not None:
                self.running -= 1
            self.done += 1
            ok = returncode == 0
            if not ok:
                self.failed += 1
            self._refresh()
            if self._bar is None and not self.quiet:
                took = f" {time.monotonic() - began:.1f}s" if began is not None else ""
                verdict = "ok" if ok else ("not started" if returncode is None else f"exit {returncode}")
                print(f"[{self.done}/{self.total}] {job}: {verdict}{took}", file=self.stream, flush=True)
            elif self._bar is not None and not ok:
                self._bar.console.print(f"{job}: exit {returncode}")

    def note(self, text: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


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

    @property
    def failures(self) -> list:
        return [r for r in self.runs if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failures and self.stopped_by is None

    @property
    def exit_code(self) -> int:
        if self.stopped_by is not None:
            return 128 + self.stopped_by
        return 0 if not self.failures else 1

    def summary(self, root_arg: str | None = None) -> str:
        done = sum(r.ok for r in self.runs)
        lines = [f"sweep {self.sweep_id}: {len(self.runs)} run(s) of {self.total} cell(s), {done} completed, "
                 f"{len(self.failures)} not completed, {self.seconds:.1f} s"]
        if self.stopped_by is not None:
            lines.append(f"stopped by {signal.Signals(self.stopped_by).name}: no new combination was started")
        unstarted = [r.cell for r in self.failures if r.status == "not started"]
        for r in self.failures:
            if r.status == "not started":
                continue
            where = f"run {r.run_id}" if r.run_id is not None else "no run recorded"
            code = "no exit status" if r.returncode is None else f"exit {r.returncode}"
            detail = os.path.relpath(r.run_path, self.root) if r.run_path else os.path.relpath(r.log, self.root)
            lines.append(f"  failed: cell {r.cell} {describe(r.params)}  {where}  {r.status}, {code}  ({detail})")
            if r.run_id is None and r.log:
                # No run folder: the script stopped before ExParser recorded it (bad option, import error).
                last = _last_line(r.log)
                if last:
                    lines.append(f"          {last}")
        if unstarted:
            lines.append(f"  not started: {len(unstarted)} cell(s): {', '.join(map(str, unstarted))}")
        if self.failures or self.stopped_by is not None:
            root = f" --root {shlex.quote(root_arg)}" if root_arg else ""
            lines.append(f"rerun what is missing with: exman{root} sweep --resume {self.sweep_id}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


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
# the API: sweep, resume
# ---------------------------------------------------------------------------


def _existing_root(root) -> Path:
    from exman.fs import is_root

    if root is None:
        from exman.cli import find_root

        found = find_root()
        if found is None:
            raise SweepError("no exman root found: pass root=... (--root ROOT) or set EXMAN_ROOT")
        return found
    root = Path(root)
    if not is_root(root):
        raise SweepError(f"{root} is not an exman root (no runs/ and index/ folders)")
    return root.resolve()


def prepare_root(root) -> Path:
    """The root a sweep writes to; a missing or empty folder gets the exman layout."""
    from exman.fs import LAYOUT, is_root

    if root is None:
        return _existing_root(None)
    root = Path(root)
    if not is_root(root):
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise SweepError(f"{root} is not an exman root and not empty; refusing to write into it")
        for sub in LAYOUT:
            (root / sub).mkdir(parents=True, exist_ok=True)
    return root.resolve()


def load_file(path) -> dict:
    """A YAML sweep file: command, grid, zip, repeat, jobs, launcher, scheduler, options."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise SweepError(f"--file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"--file {path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise SweepError(f"--file {path}: expected a mapping (command, grid, zip, jobs, launcher)")
    unknown = set(data) - {"command", "grid", "zip", "repeat", "jobs", "launcher", "scheduler", "options"}
    if unknown:
        raise SweepError(f"--file {path}: unknown key(s) {', '.join(sorted(unknown))}")
    if data.get("grid") is not None and not isinstance(data["grid"], dict):
        raise SweepError(f"--file {path}: grid must map parameter names to values")
    return data


def _command(command) -> list[str]:
    if isinstance(command, str):
        command = shlex.split(command)
    command = [str(c) for c in (command or [])]
    if not command:
        raise SweepError("no command to run: give it after --, e.g. exman sweep -p lr=0.1,0.01 -- python train.py")
    return command


def sweep(command=None, grid=None, *, zip=None, repeat=None, jobs=None, launcher=None, root=None,
          scheduler=None, options=None, file=None, dry_run=False, cwd=None, quiet=False, stream=None,
          pm=None):
    """Run ``command`` once per grid cell, in parallel, recorded under ``root``.

    ``grid`` maps names to values (a list, ``"a,b"``, or ``"log:1e-4:1e-1:4"``),
    ``zip`` one or more groups of names that vary together, ``repeat`` a seed
    count. ``file`` is a YAML sweep file; explicit arguments override it.
    Returns a :class:`SweepResult`, or the list of command lines with ``dry_run``.
    """
    data = load_file(file) if file is not None else {}
    command = _command(command if command else data.get("command"))
    full_grid = dict(data.get("grid") or {})
    full_grid.update(grid or {})
    zips = data.get("zip") or []
    zips = [zips] if isinstance(zips, dict) else list(zips)
    if zip:
        zips += [zip] if isinstance(zip, dict) else list(zip)
    repeat = repeat if repeat is not None else data.get("repeat")
    cells = expand(full_grid, zips, repeat)
    launcher = launcher or data.get("launcher") or "local"
    opts = dict(data.get("options") or {})
    opts.update(options or {})
    jobs = jobs or data.get("jobs") or opts.get("jobs") or os.cpu_count() or 1
    scheduler = scheduler or data.get("scheduler") or opts.get("scheduler")
    opts.update(jobs=int(jobs), scheduler=scheduler)
    if dry_run:
        return [command_line(command, cell) for cell in cells]
    pm = pm or _plugin_manager()
    _check_launcher(pm, launcher)
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
    save_spec(root, spec)
    return _execute(root, spec, list(range(len(cells))), pm=pm, quiet=quiet, stream=stream)


def resume(sweep_id: str, *, root=None, jobs=None, launcher=None, scheduler=None, options=None,
           dry_run=False, quiet=False, stream=None, pm=None):
    """Rerun the cells of ``sweep_id`` that have no completed run (and none running), same id."""
    root = _existing_root(root)
    spec = load_spec(root, sweep_id)
    todo = [row["cell"] for row in cell_counts(root, spec) if row["missing"]]
    if launcher:
        spec["launcher"] = launcher
    opts = spec.setdefault("options", {})
    opts.update(options or {})
    if jobs:
        opts["jobs"] = int(jobs)
    if scheduler:
        opts["scheduler"] = scheduler
    if dry_run:
        return [command_line(spec["command"], spec["cells"][i]) for i in todo]
    pm = pm or _plugin_manager()
    _check_launcher(pm, spec.get("launcher") or "local")
    spec.setdefault("resumed", []).append(datetime.datetime.now().astimezone().isoformat(timespec="seconds"))
    save_spec(root, spec)
    return _execute(root, spec, todo, pm=pm, quiet=quiet, stream=stream)


def _execute(root: Path, spec: dict, todo: list[int], *, pm=None, quiet=False, stream=None) -> SweepResult:
    sweep_id = spec["id"]
    opts = dict(spec.get("options") or {})
    opts.update(root=str(root), sweep_id=sweep_id)
    logs = root / SPEC_FOLDER / sweep_id
    jobs = [
        Job(sweep_id=sweep_id, cell=i, params=spec["cells"][i], argv=command_line(spec["command"], spec["cells"][i]),
            cwd=spec.get("cwd") or os.getcwd(),
            env={"EXMAN_RUN_ROOT": str(root), "EXMAN_SWEEP_ID": sweep_id, "EXMAN_SWEEP_CELL": str(i)},
            log=str(logs / f"cell-{i:04d}.log"))
        for i in todo
    ]
    result = SweepResult(sweep_id=sweep_id, root=root, spec=spec_path(root, sweep_id), total=len(spec["cells"]))
    progress = Progress(len(jobs), sweep_id, stream=stream, quiet=quiet)
    if not jobs:
        progress.note(f"sweep {sweep_id}: every cell has a completed run; nothing to do")
        return result
    pm = pm or _plugin_manager()
    name = spec.get("launcher") or "local"
    progress.note(f"sweep {sweep_id}: {len(jobs)} run(s), launcher {name}, {opts.get('jobs')} job(s)")
    stopped = []
    restore = _catch_signals(progress, stopped)
    began = time.monotonic()
    try:
        codes = pm.hook.launch(name=name, jobs=jobs, options=opts, progress=progress)
    except SweepError as exc:
        raise SweepError(f"{exc}; the sweep is saved, run it later with: exman sweep --resume {sweep_id}") from None
    finally:
        progress.close()
        restore()
    if codes is None:
        raise SweepError(f"the launcher plugin for {name!r} did not run the sweep")
    result.seconds = time.monotonic() - began
    result.stopped_by = stopped[0] if stopped else None
    records = _latest_by_cell(root, sweep_id, stopping=progress.stopping.is_set())
    for job in jobs:
        code = codes.get(job.cell)
        meta = records.get(job.cell)
        if code is None and meta is None:
            state = "not started"
        else:
            state = meta["status"] if meta else "no run"
        result.runs.append(CellRun(cell=job.cell, params=job.params, returncode=code, status=state,
                                   run_id=meta.get("id") if meta else None, run_path=meta.get("path") if meta else None,
                                   log=job.log))
    return result


def _plugin_manager():
    # Launchers are command-line plugins; a sweep from Python loads them too.
    from exman.plugins import get_plugin_manager

    return get_plugin_manager(cli=True)


def _check_launcher(pm, name: str) -> None:
    known = sorted({n for names in pm.hook.launchers() for n in (names or [])})
    if name not in known:
        raise SweepError(f"no launcher called {name!r} (known: {', '.join(known) or 'none'})")


def _latest_by_cell(root: Path, sweep_id: str, *, stopping: bool) -> dict[int, dict]:
    """The newest run of each cell; a stopped sweep records dead ``running`` runs as interrupted."""
    latest = {}
    for meta in sweep_runs(root, sweep_id):
        if stopping and meta["status"] == "crashed":
            _mark_interrupted(meta)
        try:
            latest[int(meta.get("sweep_cell"))] = meta
        except (TypeError, ValueError):
            continue
    return latest


def _mark_interrupted(meta: dict) -> None:
    # A child killed before it entered safe_experiment could not record itself.
    from exman.fs import atomic_write

    file = Path(meta["path"]) / "run.json"
    try:
        record = json.loads(file.read_text())
    except (OSError, ValueError):
        return
    if record.get("status") != "running":
        return
    end = datetime.datetime.now().astimezone()
    record["status"] = "interrupted"
    record["end"] = end.isoformat(timespec="microseconds")
    try:
        record["duration"] = round((end - datetime.datetime.fromisoformat(record["start"])).total_seconds(), 6)
    except (KeyError, TypeError, ValueError):
        pass
    atomic_write(file, json.dumps(record, ensure_ascii=False, indent=1))
    meta["status"] = "interrupted"


def _catch_signals(progress: Progress, stopped: list):
    """First SIGINT/SIGTERM: stop starting, SIGTERM the children. Second: SIGKILL them."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        if not progress.stopping.is_set():
            stopped.append(signum)
            progress.stopping.set()
            progress.note(f"exman sweep: {signal.Signals(signum).name}: stopping; waiting for running children "
                          "(again to kill them)")
        else:
            progress.killing.set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore():
        for sig, previous in old.items():
            signal.signal(sig, previous)

    return restore


class _CallableModule(types.ModuleType):
    # `exman.sweep(...)` runs a sweep while `exman.sweep.status(...)` stays a module function.
    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
