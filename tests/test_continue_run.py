"""A run continued in its own folder (what a requeued SLURM task of a sweep does through
``EXMAN_CONTINUE_RUN``), and the reason an interrupted run records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from conftest import env_for_subprocess

SOURCE = """
import os, signal, time
import exman

p = exman.ExParser(root=exman.simpleroot(__file__), automark=["x"])
p.add_argument("--x", type=int, default=1)
a = p.parse_args()
with a.safe_experiment as run:
    print(f"attempt {run.restarts} of run {run.id} in {a.root.name}", flush=True)
    for i in range(2):
        run.log(i=i)
    if os.environ.get("STOP"):
        os.kill(os.getpid(), getattr(signal, os.environ["STOP"]))
        time.sleep(10)
"""


def _meta(folder):
    return json.loads((folder / "run.json").read_text())


def test_continued_run_keeps_its_id_folder_and_appends(script):
    script.path.write_text(SOURCE)
    first = script.run(check=False, env={"STOP": "SIGTERM"})
    assert first.returncode == 143, first.stderr
    (folder,) = (script.root / "runs").iterdir()
    assert _meta(folder)["status"] == "interrupted" and _meta(folder)["reason"] == "SIGTERM"

    again = script.run(env={"EXMAN_CONTINUE_RUN": str(folder)})
    assert "attempt 1 of run 1" in again.stdout, again.stdout
    assert list((script.root / "runs").iterdir()) == [folder]  # no new run
    meta = _meta(folder)
    assert meta["status"] == "completed" and meta["restarts"] == 1 and meta["id"] == 1 and "reason" not in meta
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["i"]) for r in rows] == [(0, 0), (1, 1), (2, 0), (3, 1)]  # appended, steps count on
    log = (folder / "log.txt").read_text()
    assert "attempt 0 of run 1" in log and "attempt 1 of run 1" in log
    assert len(list((script.root / "index").iterdir())) == 1

    # a completed run is never reopened: a new run, with one line saying why
    third = script.run(env={"EXMAN_CONTINUE_RUN": str(folder)})
    assert "not continuing" in third.stderr and "Traceback" not in third.stderr
    assert len(list((script.root / "runs").iterdir())) == 2 and _meta(folder)["restarts"] == 1


def test_continue_run_outside_the_root_or_with_other_params_starts_a_new_run(script, tmp_path):
    script.path.write_text(SOURCE)
    script.run(check=False, env={"STOP": "SIGTERM"})
    (folder,) = (script.root / "runs").iterdir()
    other = script.run("--x", "2", env={"EXMAN_CONTINUE_RUN": str(folder)})
    assert "not continuing" in other.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "run.json").write_text((folder / "run.json").read_text())
    script.run(env={"EXMAN_CONTINUE_RUN": str(outside)})
    assert len(list((script.root / "runs").iterdir())) == 3 and _meta(folder)["status"] == "interrupted"
    assert not (outside / "metrics.jsonl").exists()


def test_sigusr2_under_slurm_is_a_time_limit(script):
    """SLURM's warning before the time limit (submitit's --signal=USR2@N) ends the run
    interrupted, exit 143, instead of killing it; outside SLURM USR2 is left alone."""
    script.path.write_text(SOURCE)
    proc = script.run(check=False, env={"SLURM_JOB_ID": "1", "STOP": "SIGUSR2"})
    assert proc.returncode == 143, proc.stderr
    (folder,) = (script.root / "runs").iterdir()
    meta = _meta(folder)
    assert meta["status"] == "interrupted" and meta["reason"] == "time limit", meta
    assert meta["slurm"]["job_id"] == "1"

    env = env_for_subprocess(STOP="SIGUSR2")
    env.pop("SLURM_JOB_ID", None)
    plain = subprocess.run([sys.executable, str(script.path)], env=env, capture_output=True, cwd=script.folder)
    assert plain.returncode == -signal.SIGUSR2
    assert os.path.isdir(script.root / "runs")
