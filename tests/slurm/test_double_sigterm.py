"""SLURM signals every process of a step, twice on preemption and at a time limit: the run still ends
``interrupted`` and the task reports 143, never -1 or a run left ``running``."""

from __future__ import annotations

import time


def test_two_sigterms_in_a_row_end_the_run_interrupted(slurm, sweep_script, start_sweep, runs_of, tmp_path):
    root = tmp_path / "root"
    sweep = start_sweep(
        "--launcher", "submitit", "-p", "x=1,2", "-p", "sleep=60", "--jobs", "2", script=sweep_script, root=root
    )
    sweep_id = sweep.wait_output(r"sweep (\S+): 2 run\(s\)", 30).group(1)
    slurm.wait_for(lambda: len(runs_of(root, sweep_id)) == 2, 40, "both runs to start")
    array = slurm.jobs(f"exman-{sweep_id}")[0]["JobID"].split("_")[0]
    # to every process of the steps (the task's python and the run), twice, like a preemption does
    slurm.scancel(array, signal="TERM")
    time.sleep(0.02)
    slurm.scancel(array, signal="TERM")
    assert sweep.wait(60) == 1, sweep.output
    assert sweep.output.count("exit 143") >= 2, sweep.output
    assert "exit -1" not in sweep.output and "Traceback" not in sweep.output, sweep.output
    for runs in runs_of(root, sweep_id).values():
        assert [r["status"] for r in runs] == ["interrupted"], runs


def test_preemption_records_runs_interrupted_with_exit_143(slurm, sweep_script, start_sweep, runs_of, tmp_path):
    root = tmp_path / "root"
    sweep = start_sweep(
        "--launcher", "submitit", "-p", "x=1,2", "-p", "sleep=60", "--jobs", "2", script=sweep_script, root=root
    )
    sweep_id = sweep.wait_output(r"sweep (\S+): 2 run\(s\)", 30).group(1)
    slurm.wait_for(lambda: len(runs_of(root, sweep_id)) == 2, 40, "both runs to start")
    slurm.preempt(seconds=2)
    slurm.wait_for(
        lambda: all(r["status"] != "running" for runs in runs_of(root, sweep_id).values() for r in runs),
        30,
        "the runs to end",
    )
    for runs in runs_of(root, sweep_id).values():
        assert runs[0]["status"] == "interrupted", runs
    sweep.kill()  # what the sweep does with a requeued task is another test's business
