"""Which runs are alive: across pid namespaces, for zombies, under odd settings (H2).

The rule (exman.runinfo.live_status): the heartbeat is the authority; a pid is
checked only from the boot and pid namespace the run recorded. These tests run
real processes in a real pid namespace (``unshare --pid``), a real zombie, and
real scripts under broken environment settings.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest

from exman.index import Index, meta_column

from .tools import env as tools_env

WAITS = """
import os, pathlib, time
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--seconds", type=float, default=60)
args = parser.parse_args()
with args.safe_experiment as run:
    run.log(loss=1.0)
    stop = pathlib.Path(__file__).with_name("stop")
    end = time.time() + args.seconds
    while not stop.exists() and time.time() < end:
        time.sleep(0.02)
"""


def _unshare_works() -> bool:
    try:
        return (
            subprocess.run(
                ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=30
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_unshare = pytest.mark.skipif(
    not _unshare_works(), reason="unshare --pid --fork --mount-proc is not permitted here"
)


def _wait_running(root, timeout=60.0) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        for run in (root / "runs").glob("*/run.json") if (root / "runs").is_dir() else ():
            try:
                meta = json.loads(run.read_text())
            except ValueError:
                continue
            if (run.parent / "metrics.jsonl").exists():
                return meta
        time.sleep(0.05)
    raise AssertionError("the run did not start")


def _status(root) -> str:
    df = Index(root, cache=False).info(include_failed=True)
    return df[meta_column(df, "status")].tolist()[-1]


def _free_pid() -> int:
    """A pid no process has in this namespace (pid_max is at least 32768)."""
    for pid in range(31000, 20000, -7):
        if not os.path.exists(f"/proc/{pid}"):
            return pid
    pytest.skip("no free pid found")


@needs_unshare
def test_live_run_in_another_pid_namespace_is_never_crashed_nor_deleted(script, exman_cmd):
    """Same host name, other pid namespace, its pid free here: it is running, and delete/doctor leave it."""
    script.path.write_text(WAITS)
    pid = _free_pid()
    launcher = (
        "import subprocess, sys\n"
        f"open('/proc/sys/kernel/ns_last_pid', 'w').write('{pid - 1}')\n"
        "sys.exit(subprocess.call(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen(
        [
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            sys.executable,
            "-c",
            launcher,
            sys.executable,
            str(script.path),
        ],
        env=tools_env(),
        cwd=script.folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        meta = _wait_running(script.root)
        if meta["pid"] != pid:
            pytest.skip(f"could not place the run at pid {pid} in its namespace (got {meta['pid']})")
        assert not os.path.exists(f"/proc/{pid}")  # the pid means nothing here
        assert _status(script.root) == "running"
        fix = exman_cmd("--root", script.root, "doctor", "--fix", check=False)
        assert "crashed" not in fix.stdout
        gone = exman_cmd("--root", script.root, "delete", "--all", "--yes", "1", check=False)
        assert gone.returncode == 1 and "still running" in gone.stderr
        run_dir = next((script.root / "runs").iterdir())
        assert run_dir.is_dir() and json.loads((run_dir / "run.json").read_text())["status"] == "running"
        (script.folder / "stop").touch()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert _status(script.root) == "completed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@needs_unshare
def test_dead_run_of_another_pid_namespace_goes_stale(script, exman_cmd):
    """Killed as pid 1 of its namespace (pid 1 lives here too): not `running` forever once its heartbeat ages."""
    script.path.write_text(WAITS)
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", sys.executable, str(script.path)],
        env=tools_env(),
        cwd=script.folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    meta = _wait_running(script.root)
    proc.kill()  # --kill-child: the namespace's pid 1, the run, gets SIGKILL too
    proc.wait()
    time.sleep(0.5)
    assert meta["pid"] == 1 and os.path.exists("/proc/1")
    run_json = next((script.root / "runs").iterdir()) / "run.json"
    old = time.time() - 3600
    os.utime(run_json, (old, old))  # an hour without a heartbeat
    assert _status(script.root) == "stale"
    done = exman_cmd("--root", script.root, "delete", "--all", "--yes", "1")
    assert "deleted" in done.stdout


def test_zombie_is_not_alive(script, exman_cmd):
    """A run killed but not yet reaped by its parent is crashed, and doctor --fix records it so."""
    script.path.write_text(WAITS)
    proc = subprocess.Popen(
        [sys.executable, str(script.path)],
        env=tools_env(),
        cwd=script.folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_running(script.root)
        os.kill(proc.pid, signal.SIGKILL)
        for _ in range(200):  # wait for the zombie state without reaping it
            with open(f"/proc/{proc.pid}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            time.sleep(0.01)
        assert _status(script.root) == "crashed"
        fix = exman_cmd("--root", script.root, "doctor", "--fix")
        assert "recorded run 1 as crashed" in fix.stdout
    finally:
        proc.wait()


def test_bad_liveness_settings_neither_kill_nor_spin(script):
    script.path.write_text(WAITS)
    proc = script.run("--seconds", "0", check=False, env={"EXMAN_STALE_AFTER": "abc"})
    assert proc.returncode == 0, proc.stderr
    assert "EXMAN_STALE_AFTER" in proc.stderr and "Traceback" not in proc.stderr
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = script.run("--seconds", "1.5", check=False, env={"EXMAN_HEARTBEAT": "0"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert cpu < 1.2, f"a 1.5 s run used {cpu:.2f} s of CPU: the heartbeat spins"
