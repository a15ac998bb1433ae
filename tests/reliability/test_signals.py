"""SIGTERM (what cluster schedulers send) and SIGINT (Ctrl-C) at different moments of a run."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from conftest import exman_command

from .tools import check_root, index_info, python
from .tools import env as _env

SCRIPT = """
import os, pathlib, sys, time
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--where", default="inside")
parser.add_argument("--swallow", type=bool, default=False)
args = parser.parse_args()
ready = pathlib.Path(os.environ["READY"])
if args.where == "outside":
    ready.touch()
    time.sleep(60)
with args.safe_experiment as run:
    print("training started", flush=True)
    if args.where == "inside":
        ready.touch()
        try:
            time.sleep(60)
        except Exception:
            # Broad handlers in training code must not swallow the scheduler's SIGTERM.
            if not args.swallow:
                raise
            print("swallowed an exception", flush=True)
            time.sleep(60)
    else:
        i = 0
        while True:
            run.log(loss=1.0 / (i + 1))
            i += 1
            if i == 50:
                ready.touch()
"""

CASES = {
    # name: (signal, argv, exit code, status, kept where, traceback mentions)
    "sigterm-inside": (signal.SIGTERM, [], 143, "interrupted", "runs", "Terminated"),
    "sigterm-broad-except": (signal.SIGTERM, ["--swallow", "true"], 143, "interrupted", "runs", "Terminated"),
    "sigterm-logging": (signal.SIGTERM, ["--where", "metrics"], 143, "interrupted", "runs", "Terminated"),
    "sigterm-tmp-run": (signal.SIGTERM, ["--tmp"], 143, "interrupted", "tmp", "Terminated"),
    # The ssh session closed: the terminal's SIGHUP is recorded like SIGTERM, exit 128 + 1.
    "sighup-inside": (signal.SIGHUP, [], 129, "interrupted", "runs", "Terminated"),
    "sighup-logging": (signal.SIGHUP, ["--where", "metrics"], 129, "interrupted", "runs", "Terminated"),
    "sigint-inside": (signal.SIGINT, [], 0, "interrupted", "runs", "KeyboardInterrupt"),
    "sigint-logging": (signal.SIGINT, ["--where", "metrics"], 0, "interrupted", "runs", "KeyboardInterrupt"),
    # Outside the block exman installs no handler: SIGTERM kills like SIGKILL, Ctrl-C is the script's.
    "sigterm-outside": (signal.SIGTERM, ["--where", "outside"], -signal.SIGTERM, "running", "runs", None),
    "sigint-outside": (signal.SIGINT, ["--where", "outside"], None, "interrupted", "runs", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_signal_is_recorded(tmp_path, case):
    sig, argv, code, status, place, mention = CASES[case]
    (tmp_path / "main.py").write_text(SCRIPT)
    ready = tmp_path / "ready"
    proc = python(
        [tmp_path / "main.py", *argv],
        env_extra={"READY": ready},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    start = time.monotonic()
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - start < 60
        time.sleep(0.005)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    if code is not None:
        assert proc.returncode == code, err
    else:
        assert proc.returncode != 0, err

    root = tmp_path / "exman"
    rep = check_root(root)
    (run,) = rep.runs[place]
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == status
    if mention:
        assert mention in (run / "traceback.txt").read_text()
        assert "training started" in (run / "log.txt").read_text()
        assert meta["end"] is not None and meta["duration"] > 0
    if place == "runs":
        # An interrupted run is kept: still indexed, not moved to fails/.
        assert [link.name for link in rep.links] == [run.name + ".yaml"]
        assert not rep.runs["fails"]
    info = index_info(root)
    if info is not None:
        expected = "crashed" if status == "running" else status
        if place == "runs":
            assert list(info["status"]) == [expected]


SLEEPER = """
import time
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.1)
args = parser.parse_args()
with args.safe_experiment as run:
    time.sleep(60)
"""


def test_sighup_to_the_sweep_driver_stops_its_children(tmp_path):
    """The ssh session of `exman sweep` closed: its children are stopped, not orphaned."""
    import sys

    from exman.runinfo import alive

    (tmp_path / "main.py").write_text(SLEEPER)
    root = tmp_path / "exman"
    command = exman_command()
    proc = subprocess.Popen(
        [*command, "--root", str(root), "sweep", "-p", "lr=0.1,0.2", "--jobs", "2", "--", sys.executable, "main.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        end = time.time() + 60
        metas = []
        while time.time() < end:
            metas = [json.loads(p.read_text()) for p in root.glob("runs/*/run.json")] if root.is_dir() else []
            if len(metas) == 2:
                break
            time.sleep(0.05)
        assert len(metas) == 2, "the children did not start"
        proc.send_signal(signal.SIGHUP)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    pids = [m["pid"] for m in metas]
    end = time.time() + 30
    while any(alive(pid) for pid in pids) and time.time() < end:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in pids), "children orphaned, still training"
    statuses = [json.loads(p.read_text())["status"] for p in root.glob("runs/*/run.json")]
    assert statuses == ["interrupted", "interrupted"]
