"""Detached sweeps: ``--detach`` submits and exits; ``--status`` and ``--resume`` follow the sweep later
from new processes, from the files under the root and what squeue says. A resume never reruns a cell
whose task SLURM still holds (pending or running)."""

from __future__ import annotations

import json
import os
import re

import pytest


def _submissions(root, sweep_id) -> list:
    return json.loads((root / "sweeps" / sweep_id / "slurm.json").read_text())["submissions"]


def _status(exman_cli, root, sweep_id) -> dict:
    """--status as {cell: row} (a new process each time)."""
    out = exman_cli(root, "sweep", "--status", sweep_id)
    assert out.returncode == 0, out.output
    lines = out.output.splitlines()
    header = lines[0].split()
    rows = {}
    for line in lines[1:]:
        if not re.match(r"\s*\d+\s", line):
            break
        values = line.split()
        values += [""] * (len(header) - len(values))  # an empty state at the end of the line
        row = dict(zip(header, values))
        rows[int(row["cell"])] = row
    return rows


def test_detach_then_status_then_resume_without_duplicates(
    slurm, sweep_script, run_sweep, exman_cli, runs_of, tmp_path
):
    root = tmp_path / "root"
    # --jobs 1: cell 0 runs, cells 1 and 2 wait in SLURM behind the array's throttle; cell 2 (rerun
    # by the resume) is quick, cells 0 and 1 last long enough to be held by SLURM during the resume
    sweep = run_sweep(
        "--launcher",
        "submitit",
        "--detach",
        "-z",
        "x=1,2,3",
        "-z",
        "sleep=3,3,0",
        "--jobs",
        "1",
        script=sweep_script,
        root=root,
        timeout=30,
    )
    assert sweep.returncode == 0, sweep.output
    assert sweep.seconds < 20, sweep.output  # it did not wait for the runs
    sweep_id = re.search(r"sweep (\S+): 3 run\(s\) of 3 cell\(s\) queued; detached", sweep.output).group(1)
    assert f"sweep --status {sweep_id}" in sweep.output and f"sweep --resume {sweep_id}" in sweep.output
    [submitted] = _submissions(root, sweep_id)
    array = submitted["job"]
    assert sorted(submitted["tasks"].values()) == [0, 1, 2]

    slurm.wait_state(f"{array}_0", "RUNNING", 30)
    rows = _status(exman_cli, root, sweep_id)
    assert rows[2]["state"] == "PENDING" and rows[2]["queued"] == "1" and rows[2]["missing"] == "0", rows

    # A pending task cancelled on its own vanishes from SLURM: its cell is missing now, the others are not.
    slurm.scancel(f"{array}_2")
    slurm.wait_for(lambda: f"{array}_2" not in {r["JobID"] for r in slurm.jobs()}, 30, "task 2 to leave the queue")
    resumed = exman_cli(root, "sweep", "--resume", sweep_id, "--jobs", "1", timeout=60)
    assert resumed.returncode == 0, resumed.output
    assert "3 cells: " in resumed.output and "this call ran 1 cell(s)" in resumed.output, resumed.output
    held = re.search(r"still pending or running in the scheduler, not rerun: ([\d, ]+)", resumed.output)
    assert held and {int(c) for c in held.group(1).split(",")} <= {0, 1}, resumed.output
    entries = _submissions(root, sweep_id)
    assert len(entries) == 2 and list(entries[1]["tasks"].values()) == [2], entries

    def all_completed():
        runs = [r for runs in runs_of(root, sweep_id).values() for r in runs]
        return len(runs) == 3 and all(r["status"] == "completed" for r in runs)

    slurm.wait_for(all_completed, 60, "every cell of the detached sweep to complete")
    cells = runs_of(root, sweep_id)
    assert sorted(cells) == [0, 1, 2]
    assert all([r["status"] for r in runs] == ["completed"] for runs in cells.values()), cells
    assert {runs[0]["slurm"]["job_id"] for c, runs in cells.items() if c != 2} == {array}
    import exman

    df = exman.Index(root).info().set_index("sweep_cell")
    assert df.loc[0, "slurm_job"] == array and df.loc[1, "slurm_task"] == 1, df
    assert df.loc[2, "slurm_job"] == entries[1]["job"] and df["slurm_node"].notna().all(), df

    # nothing left to do: a resume now starts nothing and submits nothing
    again = exman_cli(root, "sweep", "--resume", sweep_id)
    assert again.returncode == 0 and "nothing to do" in again.output, again.output
    assert "3 cells: 3 completed" in exman_cli(root, "sweep", "--status", sweep_id).output
    assert len(_submissions(root, sweep_id)) == 2


def _inside(root, sweep_id, runs_of) -> bool:
    """A run of the sweep is inside its safe_experiment block (log.txt is made on entry)."""
    from pathlib import Path

    return any((Path(r["_path"]) / "log.txt").exists() for runs in runs_of(root, sweep_id).values() for r in runs)


SLOW = pytest.mark.skipif(os.environ.get("EXMAN_SLOW") != "1", reason="slow variant: set EXMAN_SLOW=1")


@SLOW  # about 10 s per environment: kept out of CI's budget
def test_resume_leaves_a_requeued_task_to_slurm(slurm, sweep_script, run_sweep, exman_cli, runs_of, tmp_path):
    """A requeued task waits in SLURM (~120 s, BeginTime) and will run the cell again: a resume in
    the meantime must not start the cell a second time."""
    root = tmp_path / "root"
    sweep = run_sweep(
        "--launcher", "submitit", "--detach", "-p", "x=1", "-p", "sleep=60", script=sweep_script, root=root, timeout=30
    )
    assert sweep.returncode == 0, sweep.output
    sweep_id = re.search(r"sweep (\S+): 1 run\(s\) of 1 cell\(s\) queued", sweep.output).group(1)
    [submitted] = _submissions(root, sweep_id)
    job = submitted["job"]  # a 1-cell sweep is a plain job, not an array
    slurm.wait_for(lambda: _inside(root, sweep_id, runs_of), 30, "the run to start")
    slurm.requeue(job)
    slurm.wait_state(job, "PENDING", 30)
    row = _status(exman_cli, root, sweep_id)[0]
    assert (row["completed"], row["missing"], row["state"]) == ("0", "0", "PENDING"), row
    resumed = exman_cli(root, "sweep", "--resume", sweep_id, timeout=30)
    assert resumed.returncode == 0 and "nothing to do" in resumed.output, resumed.output
    assert "not rerun: 0" in resumed.output, resumed.output
    assert len(_submissions(root, sweep_id)) == 1


@SLOW
def test_detached_sweep_larger_than_max_array_size(slurm, sweep_script, run_sweep, exman_cli, runs_of, tmp_path):
    """More cells than MaxArraySize: several arrays, each after the one before (afterany), all
    submitted at once; every cell runs once, and a detached resume then has nothing to do."""
    size = int(slurm.config()["MaxArraySize"])
    cells = size + 2
    root = tmp_path / "root"
    sweep = run_sweep(
        "--launcher",
        "submitit",
        "--detach",
        "-p",
        f"x=range:0:{cells}",
        "--jobs",
        "4",
        script=sweep_script,
        root=root,
        timeout=60,
    )
    assert sweep.returncode == 0, sweep.output
    sweep_id = re.search(r"sweep (\S+): \d+ run\(s\) of \d+ cell\(s\) queued", sweep.output).group(1)
    first, second = _submissions(root, sweep_id)
    assert sorted(first["tasks"].values()) == list(range(size))
    assert sorted(second["tasks"].values()) == [size, size + 1]
    waits = slurm.job(next(iter(second["tasks"])))  # the first array runs for a while yet
    assert f"afterany:{first['job']}_*" in waits.get("Dependency", ""), waits

    def all_completed():
        rows = _status(exman_cli, root, sweep_id)
        return all(row["completed"] == "1" for row in rows.values()) and rows

    slurm.wait_for(all_completed, 240, "every cell of the split detached sweep to complete", poll=2)
    found = runs_of(root, sweep_id)
    assert sorted(found) == list(range(cells)) and all(len(runs) == 1 for runs in found.values())
    again = exman_cli(root, "sweep", "--resume", sweep_id, "--detach")
    assert again.returncode == 0 and "nothing to do" in again.output, again.output
    assert len(_submissions(root, sweep_id)) == 2
