"""Atomic writes: the primitive under SIGKILL, and an audit that every writer uses it.

``exman.fs.atomic_write`` writes a temp file and renames it over the target.
Killing a process that rewrites a large file in a loop lands inside the write
almost every time; the target must always hold one whole version. The audit
reads the source of ``exman/`` and ``exman_plugins/`` and lists every place
that opens a file for writing: each must be ``atomic_write`` or one of the
append-only files whose readers tolerate a cut last line.
"""

from __future__ import annotations

import ast
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from exman.fs import atomic_write, is_temp

from .tools import REPO, SLOW, python, report

SIZE = 16 << 20

REWRITER = f"""
import sys
from exman.fs import atomic_write
target, ready = sys.argv[1], sys.argv[2]
version = 0
while True:
    version = (version + 1) % 250 + 1
    atomic_write(target, bytes([version]) * {SIZE})
    if version == 2:
        open(ready, "w").close()
"""


@pytest.mark.timeout(1800)
def test_atomic_write_survives_sigkill_mid_write(tmp_path):
    target = tmp_path / "big.bin"
    atomic_write(target, b"\0" * SIZE)
    script = tmp_path / "rewriter.py"
    script.write_text(REWRITER)
    rng = random.Random(7)
    iterations = 60 if SLOW else 12
    versions = set()
    for _ in range(iterations):
        ready = tmp_path / "ready"
        ready.unlink(missing_ok=True)
        proc = python([script, target, ready], stderr=subprocess.PIPE)
        start = time.monotonic()
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() - start < 60
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        data = target.read_bytes()
        assert len(data) == SIZE, f"half-written: {len(data)} of {SIZE} bytes"
        assert data.count(data[:1]) == SIZE, "two versions mixed in one file"
        versions.add(data[0])
    leftovers = [p.name for p in tmp_path.iterdir() if is_temp(p.name)]
    # A kill inside the write leaves the temp file behind (for `exman doctor --fix`), never a broken target.
    report(
        f"atomic_write under SIGKILL: {iterations}/{iterations} whole files, {len(versions)} distinct versions seen, "
        f"{len(leftovers)} temp files left"
    )


def test_atomic_write_replaces_and_cleans_up_on_error(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write(target, "one")
    atomic_write(target, "two")
    assert target.read_text() == "two"

    with pytest.raises(TypeError):
        atomic_write(target, 3)  # fails after the temp file exists
    assert target.read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


# (module, function) -> why a plain write is fine there
APPEND_ONLY = {
    ("exman_plugins/metrics.py", "on_log"): "metrics.jsonl: one append per row; readers skip a cut last line",
    ("exman_plugins/logcapture.py", "on_experiment_enter"): "log.txt: a console log, appended as it comes",
    ("exman/fs.py", "atomic_write"): "the primitive itself",
    ("exman/sweeps/jobs.py", "start_job"): "a sweep child's console log, streamed as it runs",
    ("exman/sweeps/records.py", "__enter__"): "the owner lock file: its text only names the holder",
    ("exman/layout.py", "__enter__"): "root/lock, 0.1.9's lock file: opened to flock it, never written",
    ("exman/analysis/plotting.py", "_repr_png_"): "savefig into an in-memory buffer",
}
WRITE_METHODS = {"write_text", "write_bytes", "touch", "copyfileobj", "savetxt", "savefig"}
# These return a value without a destination (json.dumps, DataFrame.copy) and write a file with one.
WRITE_WITH_TARGET = {
    "dump": 2,
    "safe_dump": 2,
    "to_csv": 1,
    "to_json": 1,
    "to_parquet": 1,
    "to_pickle": 1,
    "copy": 2,
    "copyfile": 2,
    "copy2": 2,
    "copytree": 2,
}


def _write_sites(path: Path, rel: str):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    sites = []

    class Visitor(ast.NodeVisitor):
        def __init__(self):
            self.func = "<module>"

        def visit_FunctionDef(self, node):
            outer, self.func = self.func, node.name
            self.generic_visit(node)
            self.func = outer

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Call(self, node):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if _is_write(name, node):
                sites.append((rel, self.func, node.lineno, name))
            self.generic_visit(node)

    Visitor().visit(tree)
    return sites


def _is_write(name: str, node: ast.Call) -> bool:
    if name in WRITE_METHODS:
        return True
    if name in WRITE_WITH_TARGET:
        # json.dump(obj, fh), yaml.dump(obj, stream), df.to_csv(path): a target argument means a file.
        targets = {"stream", "fp", "path", "path_or_buf"}
        return len(node.args) >= WRITE_WITH_TARGET[name] or any(k.arg in targets for k in node.keywords)
    if name == "open_regular":  # exman.fs.open_regular(path, flags): os.open that refuses FIFOs
        flags = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
        return any(f in flags for f in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND"))
    if name in ("open", "fdopen"):
        mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
        if isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "os" and name == "open":
            flags = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
            return any(f in flags for f in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND"))
        return isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax+")
    return False


def test_every_write_is_atomic_or_append_only():
    sites = []
    for package in ("exman", "exman_plugins"):
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            sites += _write_sites(path, rel)
    assert sites, "the audit found no write at all: it is not looking"
    plain = [s for s in sites if (s[0], s[1]) not in APPEND_ONLY]
    assert not plain, "writes that bypass exman.fs.atomic_write:\n" + "\n".join(
        f"  {rel}:{line} {func}() calls {name}" for rel, func, line, name in plain
    )


def test_atomic_write_respects_the_umask_in_force(tmp_path):
    """The kernel applies the umask of the moment; nothing reads or caches it."""
    old = os.umask(0o077)
    try:
        atomic_write(tmp_path / "private", "x")
        os.umask(0o022)
        atomic_write(tmp_path / "public", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "public").stat().st_mode & 0o777 == 0o644
