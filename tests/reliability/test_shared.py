"""Shared roots: group-writable folders and files, nothing world-writable, checked on disk.

``ExParser(..., shared=True)`` sets umask 002 semantics for the process and
makes the layout folders setgid (so files keep the team's group). A root that
is already shared (setgid and group-writable) stays shared for scripts and
team members that did not pass ``shared=True``.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from .tools import env

SCRIPT = """
import os, sys
import exman
shared = os.environ.get("SHARED") == "1"
parser = exman.ExParser(root=exman.simpleroot(__file__), shared=shared, automark=["opt", "group"])
parser.add_argument("--opt", default="sgd")
parser.add_argument("--fail", type=bool, default=False)
args = parser.parse_args()
with args.safe_experiment as run:
    print("some output")
    run.log(loss=0.5)
    if args.fail:
        raise RuntimeError("failing on purpose")
"""


def run(folder, *args, umask=0o077, shared=True, check=True):
    proc = subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=folder,
        env=env(SHARED="1" if shared else "0"),
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(umask),
    )
    assert proc.returncode == 0 or not check, proc.stderr
    return proc


def modes(root):
    """(path, mode) of every folder and file under root; links are followed only to check their targets."""
    out = []
    for dirpath, _dirnames, filenames in os.walk(root):
        out.append((dirpath, os.stat(dirpath).st_mode))
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            out.append((path, os.stat(path).st_mode))
    return out


def assert_shared(root):
    seen = {"dir": 0, "file": 0}
    for path, mode in modes(root):
        kind = "dir" if stat.S_ISDIR(mode) else "file"
        seen[kind] += 1
        assert not mode & stat.S_IWOTH, f"{path} is world-writable ({oct(mode & 0o7777)})"
        if kind == "dir":
            assert mode & 0o070 == 0o070 and mode & stat.S_ISGID, f"{path}: {oct(mode & 0o7777)}, want 2775"
        else:
            assert mode & 0o060 == 0o060, f"{path}: {oct(mode & 0o7777)}, want group read+write"
    return seen


def test_shared_root_is_group_writable_and_not_world_writable(tmp_path):
    (tmp_path / "main.py").write_text(SCRIPT)
    run(tmp_path, "--opt", "adam")
    run(tmp_path, "--tmp")
    run(tmp_path, "--fail", "true", check=False)
    root = tmp_path / "exman"
    seen = assert_shared(root)
    names = {os.path.basename(p) for p, _ in modes(root)}
    # Every kind of file exman writes was checked.
    assert {"params.yaml", "run.json", "metrics.jsonl", "log.txt", "traceback.txt", "last_id"} <= names
    assert seen["dir"] >= 12
    # Index links and marks point at group-writable things too.
    for link in (root / "index").iterdir():
        assert os.stat(link).st_mode & 0o060 == 0o060
    mark = root / "marked" / "opt" / "adam" / "group"
    assert mark.is_dir() and os.stat(mark).st_mode & stat.S_ISGID


def test_world_writable_never_even_with_umask_0(tmp_path):
    (tmp_path / "main.py").write_text(SCRIPT)
    run(tmp_path, umask=0)
    assert_shared(tmp_path / "exman")


def test_a_shared_root_stays_shared_for_scripts_that_do_not_say_so(tmp_path):
    (tmp_path / "main.py").write_text(SCRIPT)
    run(tmp_path)
    run(tmp_path, "--opt", "adam", shared=False)  # a team member's copy without shared=True
    assert_shared(tmp_path / "exman")


def test_sharing_an_existing_private_root(tmp_path):
    (tmp_path / "main.py").write_text(SCRIPT)
    run(tmp_path, shared=False)
    root = tmp_path / "exman"
    assert not os.stat(root / ".exman" / "ids").st_mode & stat.S_IWGRP
    run(tmp_path, "--opt", "adam")
    # Layout and claim folders are opened to the group; the old run's own files stay as they were.
    for folder in ("", "runs", "index", "marked", "tmp", "fails", ".exman", ".exman/ids"):
        mode = os.stat(root / folder).st_mode
        assert mode & 0o070 == 0o070 and mode & stat.S_ISGID, folder


@pytest.mark.parametrize("shared", [False, True])
def test_private_root_keeps_the_users_umask(tmp_path, shared):
    (tmp_path / "main.py").write_text(SCRIPT)
    run(tmp_path, shared=shared, umask=0o077)
    params = next((tmp_path / "exman" / "runs").iterdir()) / "params.yaml"
    assert params.stat().st_mode & 0o777 == (0o664 if shared else 0o600)


def test_command_line_keeps_a_shared_root_shared(tmp_path):
    """`exman mark` and `exman doctor --fix` run with the user's umask, yet write group-writable."""
    (tmp_path / "main.py").write_text(SCRIPT)
    run(tmp_path)
    root = tmp_path / "exman"
    proc = subprocess.run(
        [*exman_prefix(), "--root", str(root), "mark", "team/best", "1"],
        env=env(),
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(0o077),
    )
    assert proc.returncode == 0, proc.stderr
    assert_shared(root)


def exman_prefix():
    return [sys.executable, "-m", "exman"]
