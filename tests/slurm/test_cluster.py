"""The test cluster itself and the conftest helpers, on plain sbatch jobs (no exman involved)."""

from __future__ import annotations

import time


def test_cluster_is_configured_for_the_tests(slurm):
    config = slurm.config()
    assert config["AccountingStorageType"] == "accounting_storage/slurmdbd"  # submitit polls sacct
    assert int(config["MaxArraySize"]) <= 100  # small enough to test splitting big sweeps
    assert config["JobRequeue"] == "1"
    assert config["PreemptMode"] == "REQUEUE"
    partitions = slurm.run("sinfo", "-h", "-o", "%P").stdout.split()
    assert "debug*" in partitions and "high" in partitions


def test_requeued_job_runs_again_at_once_when_released(slurm, tmp_path):
    """``scontrol requeue`` holds a job ~120 s (Reason=BeginTime); ``release_requeued`` makes it
    start at once, with SLURM_RESTART_COUNT=1."""
    out = tmp_path / "job.out"
    job_id = slurm.run(
        "sbatch", "--parsable", "-o", out, "--wrap", "echo restart=${SLURM_RESTART_COUNT:-0}; sleep 300"
    ).stdout.strip()
    slurm.wait_state(job_id, "RUNNING", 30)
    slurm.wait_for(lambda: out.exists() and "restart=0" in out.read_text(), 30, "the first start")

    slurm.requeue(job_id)
    # Reason is None for a moment, until the scheduler looks at the job again
    pending = slurm.wait_for(
        lambda: (lambda j: j if j.get("Reason") == "BeginTime" else None)(slurm.job(job_id)), 30, "Reason=BeginTime"
    )
    assert pending["JobState"] == "PENDING", pending
    assert pending["Restarts"] == "1", pending

    began = time.monotonic()
    info = slurm.release_requeued(job_id)
    assert info["JobState"] in ("RUNNING", "COMPLETING", "COMPLETED"), info
    assert time.monotonic() - began < 10
    slurm.wait_for(lambda: "restart=1" in out.read_text(), 30, "the second start")
    slurm.scancel(job_id)
    slurm.wait_for(lambda: slurm.job(job_id).get("JobState") in ("CANCELLED", None, ""), 30, "the cancel")


def test_job_fields_keep_spaces_of_a_live_job(slurm, tmp_path):
    """``slurm.job`` (exman.slurm.fields) on a job whose name, comment, folder and command hold spaces."""
    folder = tmp_path / "work dir"
    folder.mkdir()
    script = folder / "job a.sh"
    script.write_text("#!/bin/sh\nsleep 300\n")
    job_id = slurm.run(
        "sbatch",
        "--parsable",
        "--job-name",
        "my job=x y",
        "--comment",
        "hello world Reason=fake",
        "-D",
        folder,
        "-o",
        folder / "out %j.txt",
        script,
        "arg1",
        "arg two",
    ).stdout.strip()
    info = slurm.wait_state(job_id, "RUNNING", 30)
    assert info["JobId"] == job_id and info["JobName"] == "my job=x y"
    assert info["Comment"] == "hello world Reason=fake" and info["Reason"] == "None"
    assert info["WorkDir"] == str(folder)
    assert info["Command"] == f"{script} arg1 arg two"
    assert info["StdOut"] == str(folder / f"out {job_id}.txt")
    slurm.scancel(job_id)
