"""A sweep under SLURM always ends: cancelled pending tasks, Ctrl-C, sbatch errors, big arrays."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path


def _array_id(slurm, sweep_id, timeout=30):
    def listed():
        rows = slurm.jobs(f"exman-{sweep_id}")
        return rows and rows[0]["JobID"].split("_")[0]

    return slurm.wait_for(listed, timeout, "the sweep's array in squeue")


def test_scancel_of_a_pending_task_is_reported_and_the_sweep_ends(slurm, sweep_script, start_sweep, runs_of, tmp_path):
    root = tmp_path / "root"
    sweep = start_sweep(
        "--launcher", "submitit", "-p", "x=1,2,3", "-p", "sleep=4", "--jobs", "1", script=sweep_script, root=root
    )
    sweep_id = sweep.wait_output(r"sweep (\S+): 3 run\(s\)", 30).group(1)
    array = _array_id(slurm, sweep_id)
    slurm.wait_state(f"{array}_0", "RUNNING", 30)
    slurm.scancel(f"{array}_2")  # pending: leaves no record in scontrol, squeue or sacct
    assert sweep.wait(60) == 1, sweep.output
    assert re.search(r"cell 2 x=3 sleep=4: not started", sweep.output), sweep.output
    assert "2 completed" in sweep.output, sweep.output
    cells = runs_of(root, sweep_id)
    assert sorted(cells) == [0, 1]
    assert all(r["status"] == "completed" for runs in cells.values() for r in runs)


def _inside(cells: dict) -> bool:
    """Some run of the sweep has entered its ``with args.safe_experiment`` block."""
    return any((Path(run["_path"]) / "log.txt").exists() for runs in cells.values() for run in runs)


def test_scancel_of_a_running_task_interrupts_its_run(slurm, sweep_script, start_sweep, runs_of, tmp_path):
    root = tmp_path / "root"
    sweep = start_sweep(
        "--launcher", "submitit", "-p", "x=1", "-p", "sleep=60", "--jobs", "1", script=sweep_script, root=root
    )
    sweep_id = sweep.wait_output(r"sweep (\S+): 1 run\(s\)", 30).group(1)
    job = _array_id(slurm, sweep_id)
    # Inside its safe_experiment block (log.txt is made on entry): a run killed between
    # parse_args and the block has no handler to record its end.
    slurm.wait_for(lambda: _inside(runs_of(root, sweep_id)), 30, "the run to start")
    slurm.scancel(job)
    assert sweep.wait(40) == 1, sweep.output
    assert "exit 143" in sweep.output, sweep.output
    [[run]] = runs_of(root, sweep_id).values()
    assert run["status"] == "interrupted", run


def test_sigint_with_tasks_pending_stops_promptly(slurm, sweep_script, start_sweep, runs_of, tmp_path):
    root = tmp_path / "root"
    sweep = start_sweep(
        "--launcher", "submitit", "-p", "x=1,2,3,4", "-p", "sleep=60", "--jobs", "1", script=sweep_script, root=root
    )
    sweep_id = sweep.wait_output(r"sweep (\S+): 4 run\(s\)", 30).group(1)
    slurm.wait_for(lambda: _inside(runs_of(root, sweep_id)), 30, "the first run to start")
    sent = time.monotonic()
    sweep.signal(signal.SIGINT)
    assert sweep.wait(40) == 130, sweep.output
    assert time.monotonic() - sent < 20, sweep.output
    assert re.search(r"not started: 3 cell\(s\)", sweep.output), sweep.output
    assert "left the queue" not in sweep.output, "the pending tasks the stop cancelled are reported as lost"
    [[run]] = runs_of(root, sweep_id).values()
    assert run["status"] == "interrupted", run
    assert not slurm.jobs(f"exman-{sweep_id}") or all(
        r["State"] not in ("RUNNING", "PENDING") for r in slurm.jobs(f"exman-{sweep_id}")
    )


def test_a_stopped_resume_reports_its_unstarted_cells_as_not_started(
    slurm, sweep_script, start_sweep, runs_of, tmp_path
):
    # Every cell ran once (and left its log), then a resume runs one at a time and is stopped:
    # the two pending tasks it cancelled did not start, whatever logs the first call left.
    root = tmp_path / "root"
    sweep = start_sweep(
        "--launcher", "submitit", "-p", "x=1,2,3", "-p", "sleep=60", "--jobs", "3", script=sweep_script, root=root
    )
    sweep_id = sweep.wait_output(r"sweep (\S+): 3 run\(s\)", 30).group(1)

    def inside() -> int:
        return sum((Path(r["_path"]) / "log.txt").exists() for runs in runs_of(root, sweep_id).values() for r in runs)

    slurm.wait_for(lambda: inside() == 3, 60, "the three runs to start")
    sweep.signal(signal.SIGINT)
    assert sweep.wait(40) == 130, sweep.output
    resumed = start_sweep("--resume", sweep_id, "--jobs", "1", command=[], root=root)
    slurm.wait_for(lambda: inside() == 4, 60, "the resume's first run to start")
    resumed.signal(signal.SIGINT)
    assert resumed.wait(40) == 130, resumed.output
    assert "this call ran 1 cell(s)" in resumed.output and "not started: 2 cell(s)" in resumed.output, resumed.output
    assert "without a result" not in resumed.output, resumed.output


def test_sbatch_error_is_one_line(slurm, sweep_script, run_sweep, tmp_path):
    sweep = run_sweep(
        "--launcher",
        "submitit",
        "-p",
        "x=1,2",
        "-o",
        "slurm_partition=nope",
        script=sweep_script,
        root=tmp_path / "root",
        timeout=60,
    )
    assert sweep.returncode == 1, sweep.output
    assert "Traceback" not in sweep.output, sweep.output
    errors = [ln for ln in sweep.output.splitlines() if "sbatch failed" in ln]
    assert len(errors) == 1 and "--resume" in errors[0], sweep.output


def test_more_cells_than_max_array_size_are_split(slurm, sweep_script, run_sweep, runs_of, tmp_path):
    size = int(slurm.config()["MaxArraySize"])
    root = tmp_path / "root"
    cells = size + 2
    sweep = run_sweep(
        "--launcher", "submitit", "-p", f"x=range:0:{cells}", "--jobs", "4", script=sweep_script, root=root, timeout=150
    )
    assert sweep.returncode == 0, sweep.output
    assert f"{cells} cells: {cells} completed; {cells} runs: {cells} completed; this call" in sweep.output, sweep.output
    found = runs_of(root, sweep.sweep_id)
    assert sorted(found) == list(range(cells))
    assert all(len(runs) == 1 for runs in found.values())
    submitted = (root / "sweeps" / sweep.sweep_id / "submitit").glob("*_submitted.pkl")
    assert len({p.name.split("_")[0] for p in submitted}) == 2


def test_a_task_that_wrote_its_result_is_not_queued(slurm, tmp_path):
    """squeue lists a task a moment after its result is written (COMPLETING): its cell is over.
    The end of a sweep whose last run failed called that cell queued, --status then missing."""
    from exman_plugins.launchers.slurm_array import RECORD, queued_cells

    folder = tmp_path / "sweeps" / "s"
    (folder / "submitit").mkdir(parents=True)
    job = slurm.run("sbatch", "--parsable", "-o", tmp_path / "job.out", "--wrap", "sleep 300").stdout.strip()
    (folder / RECORD).write_text(json.dumps({"submissions": [{"job": job, "tasks": {job: 3}}]}))
    assert slurm.wait_for(lambda: queued_cells(folder), 30, "the job in squeue").keys() == {3}
    (folder / "submitit" / f"{job}_0_result.pkl").write_bytes(b"")
    assert queued_cells(folder) == {}
    slurm.scancel(job)
