"""Tools of the reliability suite: a root checker, snapshots, a start barrier.

``check_root`` is the one definition of "a readable root" every fault test
asserts after the fault: every file exman wrote parses, every link resolves
inside the root, and temp files are only where a killed writer could leave them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from exman.fs import is_temp

REPO = Path(__file__).resolve().parents[2]
SLOW = bool(os.environ.get("EXMAN_SLOW"))
slow_only = [pytest.mark.skipif(not SLOW, reason="heavy variant: set EXMAN_SLOW=1"), pytest.mark.timeout(1800)]
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
STATUSES = {"running", "completed", "failed", "interrupted", "crashed"}  # crashed: by `exman doctor --fix`


def report(line: str) -> None:
    """A figure for the closing note; shown with ``pytest -s``."""
    print(f"\nRELIABILITY: {line}", flush=True)


class RootReport:
    """What ``check_root`` found: run folders by place, temp files, parse results."""

    def __init__(self):
        self.runs: dict[str, list[Path]] = {"runs": [], "tmp": [], "fails": []}
        self.params: dict[Path, dict] = {}
        self.meta: dict[Path, dict] = {}
        self.metrics: dict[Path, list[dict]] = {}
        self.temp: list[Path] = []
        self.truncated: list[Path] = []
        self.links: list[Path] = []

    def all_runs(self) -> list[Path]:
        return [p for place in self.runs.values() for p in place]

    def ids(self) -> list[int]:
        return [int(p.name.split("-", 1)[0]) for p in self.all_runs()]


def check_root(root: Path, *, allow_partial=(), only=None) -> RootReport:
    """Assert ``root`` is readable; ``allow_partial`` names run folders a kill may have left unfinished.

    Unfinished means: no params.yaml or run.json yet, temp files, a truncated
    last metrics line. Anything else must be whole. ``only`` limits the parsing
    to those run folders (the rest were proved untouched by a snapshot).
    """
    rep = RootReport()
    root = Path(root)
    partial = {Path(p).name for p in allow_partial}
    only = None if only is None else {Path(p).name for p in only}
    for place in rep.runs:
        folder = root / place
        if not folder.is_dir():
            continue
        for run in sorted(folder.iterdir()):
            assert not run.is_symlink(), f"{run}: a run folder is a symlink"
            assert run.is_dir(), f"{run}: not a folder"
            rep.runs[place].append(run)
            if only is None or run.name in only:
                _check_run(rep, run, run.name in partial)
    for path in (root / ".exman").rglob("*") if (root / ".exman").is_dir() else ():
        if is_temp(path.name):
            rep.temp.append(path)
    hint = root / ".exman" / "last_id"
    if hint.is_file():
        assert hint.read_text().strip().isdigit(), f"{hint}: {hint.read_text()!r}"
    for link in sorted((root / "index").iterdir()) if (root / "index").is_dir() else ():
        assert link.is_symlink(), f"{link}: index entries are links"
        target = link.resolve()
        assert target.is_file() and target.is_relative_to(root.resolve() / "runs"), f"{link} -> {target}"
        rep.links.append(link)
    for link in (root / "marked").rglob("*") if (root / "marked").is_dir() else ():
        if link.is_symlink():
            target = link.resolve()
            assert target.is_dir() and target.is_relative_to(root.resolve()), f"{link} -> {target}"
    return rep


def _check_run(rep: RootReport, run: Path, partial: bool) -> None:
    names = {p.name for p in run.iterdir()}
    for name in names:
        if is_temp(name):
            assert partial, f"{run / name}: temp file left in a run that was not killed"
            rep.temp.append(run / name)
    if "params.yaml" in names:
        data = yaml.load((run / "params.yaml").read_text(encoding="utf-8"), Loader=SAFE_LOADER)
        assert isinstance(data, dict), f"{run}/params.yaml is not a mapping"
        rep.params[run] = data
    else:
        assert partial, f"{run}: no params.yaml"
    if "run.json" in names:
        meta = json.loads((run / "run.json").read_text(encoding="utf-8"))
        assert meta["status"] in STATUSES and meta["name"] == run.name, f"{run}/run.json: {meta.get('status')}"
        rep.meta[run] = meta
    else:
        assert partial, f"{run}: no run.json"
    if "metrics.jsonl" in names:
        lines = (run / "metrics.jsonl").read_bytes().split(b"\n")
        assert lines[-1] == b"" or partial, f"{run}/metrics.jsonl: last line has no newline"
        rows = []
        for i, line in enumerate(lines):
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                # Only the last line of a killed run may be cut short.
                assert partial and i == len(lines) - 1, f"{run}/metrics.jsonl line {i + 1} is broken"
                rep.truncated.append(run)
        rep.metrics[run] = rows


def snapshot(root: Path) -> dict[str, tuple]:
    """Size, mtime and inode of every file (targets of links) under ``root``.

    An in-place write changes the mtime, a rename-over changes the inode: either
    shows that a fault touched a file it should not have.
    """
    snap = {}
    for path in sorted(Path(root).rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            snap[rel] = ("link", os.readlink(path))
        elif path.is_file():
            st = path.stat()
            snap[rel] = ("file", st.st_size, st.st_mtime_ns, st.st_ino)
        else:
            snap[rel] = ("dir",)
    return snap


def assert_untouched(before: dict, root: Path, *, ignore=lambda rel: False) -> None:
    """Every file in ``before`` is still there, unchanged (new files are allowed).

    ``.exman/last_id`` and ``.exman/folders`` are hints every start rewrites, so they are not compared.
    """
    after = snapshot(root)
    for rel, value in before.items():
        if ignore(rel) or rel in (os.path.join(".exman", "last_id"), os.path.join(".exman", "folders")):
            continue
        assert rel in after, f"{rel} disappeared"
        if value[0] != "dir":
            assert after[rel] == value, f"{rel} changed"


def index_info(root: Path):
    """``Index(root).info()`` once the Index has landed, else None."""
    try:
        from exman.index import Index
    except ImportError:
        return None
    return Index(root).info(include_failed=True)


class Gate:
    """Start many processes at the same moment: each touches ``ready/<pid>`` then waits for ``go``."""

    WAIT = """
import os, pathlib, time
_ready = pathlib.Path(os.environ["EXMAN_TEST_READY"])
(_ready / str(os.getpid())).touch()
_go = _ready.parent / "go"
while not _go.exists():
    time.sleep(0.003)
"""

    def __init__(self, folder: Path):
        self.ready = folder / "ready"
        self.ready.mkdir(parents=True)
        self.go = folder / "go"

    def env(self) -> dict:
        return {"EXMAN_TEST_READY": str(self.ready)}

    def open_when(self, count: int, procs: list, timeout: float = 300) -> float:
        """Wait until ``count`` processes are ready, then open the gate; return the wait."""
        start = time.monotonic()
        while len(list(self.ready.iterdir())) < count:
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                out, err = dead[0].communicate()
                raise AssertionError(f"a writer exited before the gate opened ({dead[0].returncode}):\n{err}")
            if time.monotonic() - start > timeout:
                raise AssertionError(f"only {len(list(self.ready.iterdir()))}/{count} writers ready")
            time.sleep(0.02)
        self.go.touch()
        return time.monotonic() - start


def env(**extra) -> dict:
    """The test's environment with this checkout first on the path."""
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(REPO), out.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out.update({k: str(v) for k, v in extra.items()})
    return out


def python(args, *, env_extra=None, **kwargs) -> subprocess.Popen:
    """Start ``python args...`` with this checkout first on the path."""
    return subprocess.Popen([sys.executable, *map(str, args)], env=env(**(env_extra or {})), **kwargs)
