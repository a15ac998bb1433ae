"""The run object and its lifecycle: start, log, end, fail.

``start_run`` claims an id, makes the folder and has plugins write into it;
``SafeExperiment`` turns the outcome of the ``with`` block into a status. Both
only call hooks; what is written where belongs to plugins.
"""

from __future__ import annotations

import atexit
import datetime
import os
import sys
import time as _time
from pathlib import Path
from typing import Any

from exman import fs, layout
from exman.layout import TIME_FORMAT
from exman.types import metric_value, to_plain

SCALARS = (bool, int, float, str, type(None))


class Terminated(BaseException):
    """Raised inside ``safe_experiment`` when the process receives SIGTERM (or SIGHUP: its
    terminal closed; or, under SLURM, SIGUSR2 before the time limit); ``signum`` says which
    exit status to use, ``reason`` (when set) why the run was stopped."""

    signum: int | None = None
    reason: str | None = None


class Run:
    """One recorded run: where it lives and what it was started with.

    Every attribute is declared here (``__slots__``): a plugin keeps its own state about a
    run itself, keyed by the run (a ``weakref.WeakKeyDictionary``), not on the run.
    """

    __slots__ = (
        "parser",
        "pm",
        "id",
        "name",
        "path",
        "time",
        "params",
        "options",
        "record",
        "tmp",
        "status",
        "params_file",
        "links",
        "entered",
        "ended",
        "_depth",
        "_step",
        "dir_fd",
        "restarts",
        "safe_experiment",
        "__weakref__",
    )

    def __init__(
        self,
        parser,
        number: int,
        name: str,
        path: Path,
        time: datetime.datetime,
        params: dict,
        options: dict,
        record: dict | None = None,
    ):
        self.parser = parser
        self.pm = parser.pm
        self.id = number
        self.name = name
        self.path = path
        self.time = time
        self.params = params  # the script's own parameters, plain values
        self.options = options  # exman's own options (tmp, name, git_dirty, ...)
        self.record = dict(params) if record is None else record  # params plus exman's own keys, as storage writes them
        self.tmp = path.parent != parser.runs
        self.status = "running"
        self.params_file: Path | None = None
        self.links: list[Path] = []  # index/mark links to remove if the run fails
        self.entered = False
        self.ended = False
        self._depth = 0  # nested safe_experiment blocks: only the outermost one records
        self._step = 0
        self.dir_fd: int | None = None  # the run folder, held open while it runs (see relocate)
        # How often this run was restarted in its folder (a requeued SLURM task continues its run).
        self.restarts = 0
        self.safe_experiment = SafeExperiment(self)

    @property
    def root(self) -> Path:
        """The exman root this run belongs to."""
        return self.parser.root

    def __repr__(self) -> str:
        return f"<exman.Run {self.id} {self.path}>"

    def log(self, step: int | None = None, **scalars) -> dict:
        """Append one row of scalar metrics; ``step`` counts up by itself when omitted."""
        if not scalars:
            raise ValueError("run.log() needs at least one metric, e.g. run.log(loss=0.1)")
        clash = sorted(set(scalars) & (set(self.params) | {"id", "step", "time", "root", "status"}))
        if clash:
            raise ValueError(
                f"metric name(s) {', '.join(clash)} clash with a parameter or an exman column; rename the metric"
            )
        row = {}
        for key, value in scalars.items():
            value = metric_value(value)
            if not isinstance(value, SCALARS):
                raise TypeError(f"metric {key!r} must be a scalar (number, bool or string), got {type(value).__name__}")
            row[key] = value
        if step is None:
            step = self._step
        self._step = int(step) + 1
        row = {"step": int(step), "time": round(_time.time(), 6), **row}
        self.pm.hook.on_log(run=self, row=row)
        return row

    def end(self, status: str, exc_info=None, *, set_aside: bool = True) -> None:
        """Record how the run ended; called once, by SafeExperiment or at exit.

        A failed run is moved to ``fails/`` only when ``set_aside`` (the
        ``safe_experiment`` contract); a script without that block keeps its run.
        """
        if self.ended:
            return
        self.ended = True
        self.status = status
        self.relocate()
        try:
            self.pm.hook.on_run_end(run=self, status=status, exc_info=exc_info)
            if status == "failed" and set_aside:
                self.pm.hook.on_fail(run=self, exc_info=exc_info)
        finally:
            fd, self.dir_fd = self.dir_fd, None
            if fd is not None:
                os.close(fd)

    def relocate(self) -> None:
        """Follow the run folder when the root was renamed or moved while the run trained.

        The folder's open handle knows where it is now (Linux: /proc/self/fd);
        the run's paths, the root and its links follow it.
        """
        fd = self.dir_fd
        if fd is None or os.path.isdir(self.path):
            return
        try:
            now = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return
        if not os.path.isdir(now) or os.path.basename(now) != self.path.name:
            return  # deleted, or no /proc: nothing to follow
        old_root, new = self.parser.root, Path(now)
        new_root = new.parent.parent
        self.path = new
        self.parser.root = new_root
        if self.params_file is not None:
            self.params_file = new / self.params_file.name
        moved = []
        for link in self.links:
            try:
                moved.append(new_root / Path(link).relative_to(old_root))
            except ValueError:
                moved.append(link)
        self.links = moved


class SafeExperiment:
    """``with args.safe_experiment as run:`` marks the run completed, failed or interrupted.

    Failures are set aside in ``fails/`` and re-raised; Ctrl-C keeps the run and
    is swallowed, like exman 0.1.9. SIGTERM is recorded as ``interrupted`` and
    the process exits with status 143, as schedulers expect.
    """

    def __init__(self, run: Run, prompt: bool = False, default: bool = True, timeout: float = 10.0):
        self.run = run
        self.prompt = prompt
        self.default = default
        self.timeout = timeout
        self._old_term: Any = None
        self._old_hup: Any = None
        self._old_usr2: Any = None

    def __call__(self, prompt: bool = False, default: bool = True, timeout: float = 10.0) -> SafeExperiment:
        return SafeExperiment(self.run, prompt=prompt, default=default, timeout=timeout)

    def __enter__(self) -> Run:
        import signal

        self.run._depth += 1
        if self.run._depth > 1:
            return self.run  # nested: the outermost block records the run (and captures output once)
        self.run.entered = True
        try:
            self._old_term = signal.signal(signal.SIGTERM, _raise_terminated)
        except ValueError:
            pass  # not the main thread, where alone handlers can be set (asking threading costs its import)
        else:
            if signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:  # not under nohup
                self._old_hup = signal.signal(signal.SIGHUP, _raise_terminated)
            usr2 = getattr(signal, "SIGUSR2", None)
            if os.environ.get("SLURM_JOB_ID") and usr2 is not None and signal.getsignal(usr2) is signal.SIG_DFL:
                # SLURM's warning before the time limit (submitit's --signal=USR2@N): by default it kills at once.
                self._old_usr2 = signal.signal(usr2, _raise_time_limit)
        self.run.pm.hook.on_experiment_enter(run=self.run)
        return self.run

    def __exit__(self, exc_type, exc, tb) -> bool:
        import signal

        run = self.run
        run._depth -= 1
        if run._depth > 0:
            return False  # an inner block: its outcome is the outer block's to record
        deferred: list = []
        if self._old_term is not None:
            # SLURM sends SIGTERM twice (and run_job forwards one): a later one must not cut the end short.
            signal.signal(signal.SIGTERM, lambda signum, frame: deferred.append(signum))
        if self._old_hup is not None:
            signal.signal(signal.SIGHUP, self._old_hup)
        if self._old_usr2 is not None:
            signal.signal(signal.SIGUSR2, signal.SIG_IGN)  # the time limit's warning may come twice
        ending = self._end(exc_type, exc, tb)
        if (exc_type is not None and issubclass(exc_type, Terminated)) or deferred:
            # Exiting on a signal: ignore more SIGTERMs to the end (a Python handler is dropped at
            # interpreter shutdown, and one more SIGTERM then would turn 143 into -15).
            if self._old_term is not None:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signum = getattr(exc, "signum", None) if exc_type is not None and issubclass(exc_type, Terminated) else None
            raise SystemExit(128 + (signum or signal.SIGTERM))
        if self._old_term is not None:
            signal.signal(signal.SIGTERM, self._old_term)
        if self._old_usr2 is not None:
            signal.signal(signal.SIGUSR2, self._old_usr2)
        return ending

    def _end(self, exc_type, exc, tb) -> bool:
        run = self.run
        if exc_type is None or (exc_type is SystemExit and exc.code in (None, 0)):
            run.end("completed")
            return False
        exc_info = (exc_type, exc, tb)
        if issubclass(exc_type, KeyboardInterrupt):
            _end_quietly(run, "interrupted", exc_info)
            if self.prompt and _ask(f"exman: move run {run.id} to fails/?", self.default, self.timeout):
                run.pm.hook.on_fail(run=run, exc_info=exc_info)
            print(f"exman: run {run.id} interrupted; kept at {run.path}", file=sys.stderr)
            return True
        if issubclass(exc_type, Terminated):
            _end_quietly(run, "interrupted", exc_info)
            return False
        _end_quietly(run, "failed", exc_info)
        return False


def _end_quietly(run: Run, status: str, exc_info) -> None:
    """End a run whose block raised. The script's own exception is the one to see: an
    OSError of exman's (the disk filled, the root vanished) is one line on stderr,
    not a second traceback that hides the first."""
    try:
        run.end(status, exc_info)
    except OSError as err:
        print(f"exman: could not record the end of run {run.id}: {err}", file=sys.stderr)


def _raise_terminated(signum, frame):  # SIGTERM, SIGHUP -> an exception the with-block sees
    import signal

    # Once only: a second SIGTERM before __exit__ runs must not raise out of it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    exc = Terminated(f"received signal {signum}")
    exc.signum = signum
    raise exc


def _raise_time_limit(signum, frame):  # SIGUSR2 under SLURM -> interrupted, "time limit", exit 143
    import signal

    signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # SLURM's SIGTERM may follow: the end is being recorded
    exc = Terminated("SLURM time limit (SIGUSR2)")
    exc.signum = signal.SIGTERM
    exc.reason = "time limit"
    raise exc


def _ask(question: str, default: bool, timeout: float) -> bool:
    """Ask on a terminal with a timeout; without a terminal, answer the default."""
    if not (sys.stdin and sys.stdin.isatty()):
        return default
    import select

    sys.stderr.write(f"{question} [{'Y/n' if default else 'y/N'}] ({timeout:.0f}s) ")
    sys.stderr.flush()
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        sys.stderr.write("\n")
        return default
    answer = sys.stdin.readline().strip().lower()
    return default if not answer else answer in ("y", "yes")


def start_run(parser, namespace, options: dict) -> Run:
    """Claim an id, create the folder, let plugins record the run; return it."""
    pm = parser.pm
    if not parser.shared and fs.is_shared(parser.root):
        parser.shared = True  # a team's root stays shared even if this script forgot to say so
    if parser.shared:
        fs.set_shared(True)
    _make_layout(parser)
    # The script's own params; 0.1.9's option keys (tmp, name, ...) are recorded beside them.
    own: set = parser._option_keys
    params = {k: to_plain(v) for k, v in vars(namespace).items() if k not in own}
    extra = {k: to_plain(v) for k, v in vars(namespace).items() if k in own}
    for contributed in pm.hook.collect_params(parser=parser, namespace=namespace):
        if contributed:
            extra.update({k: to_plain(v) for k, v in contributed.items()})
    run = _continued(parser, params, options)
    if run is not None:
        return run
    where = pm.hook.location(parser=parser, namespace=namespace, options=options)
    with layout.claim_lock(parser.root):
        for _attempt in range(100):
            number = pm.hook.claim_id(parser=parser)
            now = datetime.datetime.now()
            name = pm.hook.naming(parser=parser, number=number, time=now, name=options.get("exman_name"))
            path = where / name
            try:
                os.mkdir(path)
                break
            except FileExistsError:
                continue  # a naming plugin without the number can collide; claim again
        else:
            raise RuntimeError(f"exman: could not create a new run folder in {where}")
        layout.note_folders(parser.root)
    record = {
        **params,
        **extra,
        "root": os.path.relpath(path, parser.root),
        "time": now.strftime(TIME_FORMAT),
        "id": number,
    }
    run = Run(parser, number, name, path, now, params, options, record)
    try:
        run.dir_fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
        run.params_file = pm.hook.storage(run=run, params=record)
        pm.hook.on_run_start(run=run)
    except BaseException:
        # A half-made run must not look like a real one.
        import shutil

        for link in run.links:
            _unlink(link)
        shutil.rmtree(path, ignore_errors=True)
        if run.dir_fd is not None:
            os.close(run.dir_fd)
        raise
    _track(run)
    return run


def _continued(parser, params: dict, options: dict) -> Run | None:
    """The run to continue in its own folder: ``$EXMAN_CONTINUE_RUN`` names it (a sweep's SLURM
    task sets it when SLURM reruns the task after a requeue or preemption). Same id, same
    folder, metrics and log appended, ``restarts`` one higher; None (a new run) when the
    folder is not an unfinished run of this root with these params."""
    import json

    from exman.slurm import CONTINUE_ENV

    folder = os.environ.pop(CONTINUE_ENV, None)  # for this run only, not for later ones or children
    if not folder:
        return None
    path = Path(folder)
    meta = layout.read_run_json(path)
    try:
        inside = path.parent.resolve() in {(parser.root / sub).resolve() for sub in (layout.RUNS, layout.TMP)}
        same = json.dumps(meta.get("params"), sort_keys=True) == json.dumps(params, sort_keys=True, default=str)
        start = datetime.datetime.fromisoformat(meta["start"])
    except (KeyError, TypeError, ValueError, OSError):
        inside = same = False
    if not (inside and same and isinstance(meta.get("id"), int) and meta.get("status") != "completed"):
        print(
            f"exman: not continuing {folder} (not an unfinished run of {parser.root} with these params); "
            "starting a new run",
            file=sys.stderr,
        )
        return None
    run = Run(parser, meta["id"], path.name, path, start.astimezone().replace(tzinfo=None), params, options)
    run.restarts = int(meta.get("restarts") or 0) + 1
    if meta.get("params_file"):
        run.params_file = path / meta["params_file"]
    run.record = {**params, **(meta.get("extra") or {})}
    run._step = _next_step(path / layout.METRICS_FILE)
    run.dir_fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        parser.pm.hook.on_run_start(run=run)
    except BaseException:
        os.close(run.dir_fd)  # the folder holds the earlier attempt: keep it whatever happens
        run.dir_fd = None
        raise
    _track(run)
    return run


def _next_step(metrics: Path) -> int:
    """The step after the last row of a metrics file (0 if none): a continued run counts on."""
    import json

    try:
        with open(metrics, "rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - 65536))
            lines = fh.read().splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"]) + 1
        except (ValueError, KeyError, TypeError):
            continue  # a cut last line, or not a row
    return 0


def _make_layout(parser) -> None:
    if parser._layout_made and parser.runs.is_dir():
        return
    layout.create(parser.root, shared=parser.shared)
    parser._layout_made = True


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# Runs started in this process whose script never entered safe_experiment:
# they still end with a status, from the interpreter's exit path.
_OPEN: list[Run] = []
_HOOKED = {"done": False}


# Folder handles held at once: a process that starts thousands of runs without ending
# them (a notebook, a test suite) must not run out of file descriptors; the oldest
# open runs give theirs up (they then write by path, as before).
MAX_DIR_FDS = 32
_HOLDING: list[Run] = []


def _track(run: Run) -> None:
    _OPEN.append(run)
    _HOLDING.append(run)
    if len(_HOLDING) > MAX_DIR_FDS:
        old = _HOLDING.pop(0)
        fd, old.dir_fd = old.dir_fd, None  # None already if it ended
        if fd is not None:
            os.close(fd)
    if not _HOOKED["done"]:
        _HOOKED["done"] = True
        previous = sys.excepthook

        def excepthook(exc_type, exc, tb):
            for r in _OPEN:
                if not r.ended and not r.entered:
                    status = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed"
                    r.end(status, (exc_type, exc, tb), set_aside=False)
            previous(exc_type, exc, tb)

        sys.excepthook = excepthook
        atexit.register(_close_open_runs)


def _close_open_runs() -> None:
    for run in _OPEN:
        if not run.ended and not run.entered:
            try:
                run.end("completed")
            except OSError:
                pass  # the run folder was removed while the script ran: nothing left to mark
