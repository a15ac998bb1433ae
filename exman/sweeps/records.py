"""What the root knows about a sweep: its saved spec and the runs of each cell.

``root/sweeps/<id>.yaml`` is written before the first run; the runs are found
by their ``run.json`` (``sweep``, ``sweep_cell``, ``status``). ``cell_counts``
is the one place that decides which cells are done: ``--status`` prints it and
``--resume`` reruns its missing cells.
"""

from __future__ import annotations

import datetime
import os
import secrets
from pathlib import Path

from exman import layout
from exman.errors import SweepError
from exman.fs import lock_now, read_text
from exman.layout import RUN_FOLDERS, SWEEPS

SPEC_FOLDER = SWEEPS


def spec_path(root: Path, sweep_id: str) -> Path:
    from exman.fs import check_component

    try:
        check_component(sweep_id, "sweep id")
    except ValueError as exc:
        raise SweepError(str(exc)) from None
    return Path(root) / SPEC_FOLDER / f"{sweep_id}.yaml"


def share_if_team_root(root: Path) -> None:
    """In a team's root (``shared=True``), what a sweep makes is the group's too: umask 002,
    and ``sweeps/`` group-writable, so every member can start and resume sweeps there."""
    from exman import fs

    if fs.is_shared(root):
        fs.set_shared(True)
        folder = Path(root) / SPEC_FOLDER
        folder.mkdir(exist_ok=True)
        try:
            os.chmod(folder, 0o2775)
        except PermissionError:
            pass  # another member made it; theirs is already shared (or cannot be fixed by us)


def check_folders(root: Path) -> None:
    """A sweep writes into ``sweeps/``, ``.exman/`` and the run folders: none may lead outside the root."""
    from exman.layout import symlinked_layout

    linked = symlinked_layout(root)
    if linked:
        raise SweepError(f"{linked[0]}/ in {root} is a symlink; exman writes only inside its root")


def new_sweep_id(root: Path) -> str:
    check_folders(root)
    share_if_team_root(root)
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
        spec = yaml.safe_load(read_text(path))
    except FileNotFoundError:
        known = list_sweeps(root)
        hint = f" (known: {', '.join(known[-5:])})" if known else ""
        raise SweepError(f"no sweep {sweep_id!r} under {root}{hint}") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"{path}: not a sweep spec ({exc.__class__.__name__})") from None
    except (OSError, ValueError) as exc:  # a FIFO, a device, unreadable, not UTF-8
        raise SweepError(
            f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc.__class__.__name__})"
        ) from None
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
    the id before parsing them, so a large root costs little and no pandas is
    imported (``Index.info`` would cost ~0.6 s at the end of every sweep, and
    it does not cover ``tmp/``). Statuses follow ``exman.runinfo``, as the Index's do.
    """
    from exman.runinfo import run_status

    needle = f'"{sweep_id}"'
    found = []
    for sub in RUN_FOLDERS:  # any folder name: a naming plugin may not number them
        try:
            entries = list(layout.run_dirs(root, sub))
        except OSError:
            continue
        for entry in entries:
            meta = layout.read_run_json(entry.path, mentions=needle)  # other runs are not parsed
            if meta.get("sweep") != sweep_id:
                continue
            meta["path"] = entry.path
            meta["status"] = run_status(entry.path, meta, missing="running")
            found.append(meta)
    found.sort(key=lambda m: m["id"] if isinstance(m.get("id"), int) else -1)
    return found


COUNTS = ("completed", "failed", "interrupted", "running")


def cell_counts(root: Path, spec: dict, queued: dict | None = None) -> list[dict]:
    """One dict per cell: ``cell``, run counts by status, ``missing``, ``last_id`` and ``params``.

    The cell's params stay in their own dict: a script parameter may be called ``cell`` or
    ``completed`` too.

    ``failed`` counts crashed and stale runs too (statuses as ``Index.info`` gives them). ``missing`` is 1 when the cell has no
    completed run and none running: exactly the cells ``--resume`` reruns.

    ``queued`` (``{cell: state}`` from the ``queued`` hook: jobs a scheduler such as SLURM
    still holds) adds ``queued``: 1 when the scheduler will still start a run for a cell that has
    no completed or running run (pending, requeued, or started but not recorded yet); such a
    cell is not missing, and ``state``, the scheduler's word for its job. A cell whose child
    is alive but has recorded no run yet (see ``child_alive``) is queued too, state ``STARTED``.
    Without either, rows have no ``queued`` or ``state`` key.
    """
    by_cell: dict[int, list[dict]] = {}
    for meta in sweep_runs(root, spec["id"]):
        try:
            by_cell.setdefault(int(meta["sweep_cell"]), []).append(meta)
        except (KeyError, TypeError, ValueError):
            continue
    rows = []
    for index, params in enumerate(spec["cells"]):
        runs = by_cell.get(index, [])
        counts = dict.fromkeys(COUNTS, 0)
        for meta in runs:
            status = meta["status"]
            key = "failed" if status in ("crashed", "stale") else status
            if key in counts:
                counts[key] += 1
        row: dict = {"cell": index, **counts}
        row.update(last_id=runs[-1].get("id") if runs else None, params=params)
        rows.append(row)
    # A child still starting (importing torch...) has no run.json yet; after an `exman sweep` killed
    # outright it goes on, and rerunning its cell would run it twice.
    started = {
        row["cell"]: "STARTED"
        for row in rows
        if not row["completed"] and not row["running"] and row["cell"] not in (queued or {})
        if child_alive(cell_log(root, spec["id"], row["cell"]))
    }
    if started:
        queued = {**started, **(queued or {})}
    for row in rows:
        open_cell = row["completed"] == 0 and row["running"] == 0
        last_id = row.pop("last_id")
        params = row.pop("params")
        if queued is not None:
            row["queued"] = int(open_cell and row["cell"] in queued)
            open_cell = open_cell and not row["queued"]
        row.update(missing=int(open_cell), last_id=last_id, params=params)
        if queued is not None:
            row["state"] = str(queued.get(row["cell"], ""))
    return rows


def cell_log(root: Path, sweep_id: str, cell: int) -> Path:
    """The output of a cell's child: ``ROOT/sweeps/<id>/cell-NNNN.log``."""
    return Path(root) / SPEC_FOLDER / sweep_id / f"cell-{cell:04d}.log"


def child_alive(log: Path) -> bool:
    """Whether a child started for this log still runs: its stdout, the log, carries the
    ``flock`` ``exman.sweeps.jobs.start_job`` took, which the kernel drops when the child
    (and whatever it left holding its output) is gone, however it ended."""
    from exman.fs import held

    return held(log) is not None


def counts_line(rows: list[dict]) -> str:
    """The one wording of a sweep's state, from ``cell_counts`` rows: cells by where
    they stand (a cell is completed when one of its runs is; *missing* cells are
    what ``--resume`` reruns), then runs by status, so a retried cell is not
    counted twice nor a failed retry hidden: "4 cells: 4 completed; 6 runs: 4 completed, 2 failed".
    ``exman sweeps``, ``exman sweep --status`` and the end of a sweep all print it.
    """
    cells = {"completed": 0, "running": 0, "missing": 0}
    if any("queued" in row for row in rows):
        cells = {"completed": 0, "running": 0, "queued": 0, "missing": 0}
    for row in rows:
        cells[
            "completed"
            if row["completed"]
            else "running"
            if row["running"] or row.get("state") == "STARTED"
            else "queued"
            if row.get("queued")
            else "missing"
        ] += 1
    runs = {key: sum(row[key] for row in rows) for key in COUNTS}
    total = sum(runs.values())

    def counted(counts: dict) -> str:  # zeros left out: "16 completed, 4 failed"
        shown = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        return f": {shown}" if shown else ""

    return (
        f"{len(rows)} cell{'s' if len(rows) != 1 else ''}{counted(cells)}; "
        f"{total} run{'s' if total != 1 else ''}{counted(runs)}"
    )


def mark_interrupted(meta: dict) -> None:
    # A child killed before it entered safe_experiment could not record itself.
    from exman.runinfo import end_dead_run

    if end_dead_run(meta["path"], "interrupted", at_heartbeat=False):
        meta["status"] = "interrupted"


class Owner:
    """``sweeps/<id>/owner`` is locked (``flock``) while a process runs the sweep: a
    second ``--resume`` of a live sweep would start the same cells twice.

    The kernel drops the lock when its process dies however it dies, so there is
    no stale owner to judge and take over; the file's text (host pid) only names
    the holder in the refusal. Locks hold on local file systems and NFS.
    """

    def __init__(self, root: Path, sweep_id: str):
        self.path = Path(root) / SPEC_FOLDER / sweep_id / "owner"
        self.mine = f"{os.uname().nodename} {os.getpid()}\n".encode()
        self.fd: int | None = None

    def __enter__(self) -> Owner:
        check_folders(self.path.parent.parent.parent)
        share_if_team_root(self.path.parent.parent.parent)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            taken = lock_now(fd, tries=20)  # a status check (owner_of) holds its shared lock for a moment
        except BaseException:
            os.close(fd)
            raise
        if not taken:
            who = _holder(os.pread(fd, 200, 0))
            os.close(fd)
            raise SweepError(f"sweep {self.path.parent.name} is being run by {who}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.mine, 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)  # nobody holds it now
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None


def _holder(text: bytes) -> str:
    holder = text.decode("utf-8", "replace").split()
    return f"pid {holder[1]} on {holder[0]}" if len(holder) == 2 else "another process"


def owner_of(root: Path, sweep_id: str) -> str | None:
    """Who runs the sweep now ("pid 123 on host"), None when no process holds its ``Owner`` lock."""
    from exman.fs import held

    text = held(Path(root) / SPEC_FOLDER / sweep_id / "owner")
    return None if text is None else _holder(text)
