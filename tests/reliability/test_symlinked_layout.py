"""A layout folder that is itself a symlink leading outside the root (lower item).

``delete`` and ``mark`` already refused to work through one; the recorder, the
Index cache, sweeps and ``doctor --fix`` now refuse too, so nothing is written
outside the root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from conftest import exman_command

from exman import Index

from .tools import env, snapshot


def _exman(*args, cwd=None):
    return subprocess.run(
        [*exman_command(), *map(str, args)], capture_output=True, text=True, env=env(), cwd=cwd, timeout=120
    )


def test_the_lock_file_is_not_followed_out_of_the_root(script, tmp_path):
    """``root/lock`` (0.1.9's FileLock) planted as a link to a missing file elsewhere: a start made
    that file there. It records its run without the lock instead (its id claims need none)."""
    script.run()
    outside = tmp_path / "outside"
    outside.mkdir()
    (script.root / "lock").unlink()
    os.symlink(outside / "lock", script.root / "lock")
    script.run()
    assert len(list((script.root / "runs").iterdir())) == 2
    assert not list(outside.iterdir())


def test_nothing_is_written_through_a_symlinked_layout_folder(script, tmp_path):
    script.run()
    root = script.root
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("not exman's")
    for name in ("runs", "sweeps", ".exman"):
        target = outside / name
        if (root / name).exists():
            shutil.move(str(root / name), str(target))
        else:
            target.mkdir()
        os.symlink(target, root / name)
    before = snapshot(outside)

    proc = script.run(check=False)  # the recorder
    assert proc.returncode == 2 and "runs/ is a symlink" in proc.stderr and "Traceback" not in proc.stderr
    Index(root, cache=True).info()  # the cache
    proc = _exman("--root", root, "sweep", "-p", "lr=0.1", "--", sys.executable, script.path)
    assert proc.returncode == 1 and "is a symlink" in proc.stderr and "Traceback" not in proc.stderr
    proc = _exman("--root", root, "doctor", "--fix", "--reindex")
    assert proc.returncode == 1 and "refusing to fix" in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(outside) == before
