"""The submitit launcher on a real SLURM cluster: the path that works today."""

from __future__ import annotations

import json


def test_sweep_on_slurm_runs_each_cell_once(slurm, sweep_script, run_sweep, runs_of, tmp_path):
    root = tmp_path / "root"
    sweep = run_sweep(
        "--launcher", "submitit", "-p", "x=1,2,3", "--jobs", "2", script=sweep_script, root=root, timeout=120
    )
    assert sweep.returncode == 0, sweep.output
    sweep_id = sweep.sweep_id
    assert sweep_id, sweep.output
    assert "3 cells: 3 completed; 3 runs: 3 completed; this call ran 3 cell(s)" in sweep.output, sweep.output

    cells = runs_of(root, sweep_id)
    assert sorted(cells) == [0, 1, 2]
    for cell, runs in cells.items():
        assert [r["status"] for r in runs] == ["completed"], (cell, runs)
        assert runs[0]["params"] == {"x": cell + 1, "sleep": 0.0}
        assert runs[0]["slurm"]["array_task_id"] is not None and runs[0]["slurm"]["node"], runs[0]
    # one job array on the cluster, every task completed according to accounting
    submitted = list((root / "sweeps" / sweep_id / "submitit").glob("*_submitted.pkl"))
    array_ids = {p.name.split("_")[0] for p in submitted}
    assert len(array_ids) == 1, submitted
    array_id = array_ids.pop()
    assert {runs[0]["slurm"]["job_id"] for runs in cells.values()} == {array_id}
    assert sorted(int(runs[0]["slurm"]["array_task_id"]) for runs in cells.values()) == [0, 1, 2]

    def tasks_completed():
        # the sweep ends on the result files; the tasks leave RUNNING in accounting a moment later
        states = sorted(r["State"] for r in slurm.sacct(array_id) if "." not in r["JobID"])
        return states == ["COMPLETED"] * 3

    slurm.wait_for(tasks_completed, 30, f"sacct to show the 3 tasks of {array_id} COMPLETED")
    spec = (root / "sweeps" / f"{sweep_id}.yaml").read_text()
    assert "submitit" in spec
    assert json.loads((root / "runs").iterdir().__next__().joinpath("run.json").read_text())["sweep"] == sweep_id
