"""Two members of a team start sweeps in one shared root (M5).

Real users: the members are two uids of one group (``setpriv``), each with a
private umask (022). Needs root to switch users; skips otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from .tools import REPO

SCRIPT = """
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.1)
args = parser.parse_args()
with args.safe_experiment as run:
    run.log(loss=args.lr)
"""
GROUP = 4242


def _as(uid: int, *args: str, cwd: str):
    exman = os.path.join(os.path.dirname(sys.executable), "exman")
    command = ["setpriv", f"--reuid={uid}", f"--regid={GROUP}", "--clear-groups", exman, *args]
    env = dict(os.environ, PYTHONPATH=str(REPO), HOME=cwd)
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300, preexec_fn=lambda: os.umask(0o022)
    )  # each member's own, private umask


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to act as two users"
)
def test_two_members_sweep_in_a_shared_root():
    base = tempfile.mkdtemp(prefix="exman-team-")
    try:
        os.chmod(base, 0o755)
        project = os.path.join(base, "project")
        os.mkdir(project)
        with open(os.path.join(project, "main.py"), "w") as fh:
            fh.write(SCRIPT)
        os.chown(project, 0, GROUP)
        os.chmod(project, 0o2775)
        # The team's root, made by a script with shared=True.
        subprocess.run(
            [sys.executable, "-c", "import exman; exman.ExParser(root='exman', shared=True).parse_args([])"],
            cwd=project,
            check=True,
            capture_output=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        root = os.path.join(project, "exman")
        if _as(4001, "--version", cwd=project).returncode != 0:
            pytest.skip("this Python cannot be run by another user (it lives in a private folder)")
        for folder, _dirs, files in os.walk(root):
            os.chown(folder, 0, GROUP)
            for name in files:
                os.chown(os.path.join(folder, name), 0, GROUP)
        for uid in (4001, 4002):
            # The cells' command needs no interpreter the other users may not be able to run:
            # what is tried here is the sweep's own bookkeeping in the team's root.
            proc = _as(uid, "--root", root, "sweep", "-p", "lr=0.1,0.2", "--", "true", cwd=project)
            assert "Traceback" not in proc.stderr and "ermission denied" not in proc.stdout + proc.stderr, (
                f"member {uid}: {proc.stderr[-2000:]}"
            )
        sweeps = os.path.join(root, "sweeps")
        assert os.stat(sweeps).st_mode & 0o2070 == 0o2070
        assert len([n for n in os.listdir(sweeps) if n.endswith(".yaml")]) == 2
        # ... and one member resumes the other's sweep
        first = sorted(n[:-5] for n in os.listdir(sweeps) if n.endswith(".yaml"))[0]
        proc = _as(4002, "--root", root, "sweep", "--resume", first, cwd=project)
        assert "Traceback" not in proc.stderr and "ermission denied" not in proc.stdout + proc.stderr, proc.stderr[
            -2000:
        ]
        assert "2 run(s)" in proc.stdout + proc.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)
