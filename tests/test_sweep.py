"""Sweeps through the installed ``exman`` command: real scripts, real children, real clusters."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import Script, env_for_subprocess, exman_command

SWEEP_SCRIPT = """
import os, pathlib, time
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--tag", default="x")
args = parser.parse_args()
with args.safe_experiment as run:
    # The "cause" of a failure lives outside the params, so it can be fixed before --resume.
    if args.lr == 0.01 and pathlib.Path("broken").exists():
        raise RuntimeError("broken on purpose")
    time.sleep(args.sleep)
    run.log(loss=args.lr * (args.seed + 1), ppid=os.getppid())
"""


@pytest.fixture
def sweep_script(tmp_path) -> Script:
    return Script(tmp_path, SWEEP_SCRIPT)


def sweep_args(root: Path, script: Script, *args, script_args=()) -> list:
    """``--root ROOT sweep ARGS -- python SCRIPT SCRIPT_ARGS``: the command line of every sweep here."""
    return ["--root", root, "sweep", *args, "--", sys.executable, script.path, *script_args]


@pytest.fixture
def run_sweep(exman_cmd):
    """``run_sweep(root, script, *args, script_args=(), check=True, ...)``: an ``exman sweep`` of
    ``script`` run to its end in the script's folder (other keywords go to ``exman_cmd``)."""

    def run(root: Path, script: Script, *args, script_args=(), **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("cwd", script.folder)
        return exman_cmd(*sweep_args(root, script, *args, script_args=script_args), **kwargs)

    return run


def start_sweep(root: Path, script: Script, *args, script_args=(), **kwargs) -> subprocess.Popen:
    """The same sweep in the background, its output in pipes (other keywords go to ``Popen``)."""
    return subprocess.Popen(
        [*exman_command(), *map(str, sweep_args(root, script, *args, script_args=script_args))],
        env=env_for_subprocess(),
        cwd=script.folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def records(root: Path) -> list[dict]:
    out = []
    for sub in ("runs", "fails"):
        for file in sorted((root / sub).glob("*/run.json")):
            meta = json.loads(file.read_text())
            meta["folder"] = sub
            out.append(meta)
    return out


def sweep_id_of(root: Path) -> str:
    (spec,) = (root / "sweeps").glob("*.yaml")
    return spec.stem


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_dry_run_prints_each_combination_and_starts_nothing(exman_cmd, run_sweep, sweep_script, tmp_path):
    root = tmp_path / "fresh"
    proc = run_sweep(
        root, sweep_script, "-p", "lr=log:1e-3:1e-1:3", "-p", "tag=a b,c", "--dry-run", script_args=["--sleep", "0"]
    )
    lines = proc.stdout.splitlines()
    expected = [
        shlex.join([sys.executable, str(sweep_script.path), "--sleep", "0", "--lr", lr, "--tag", tag])
        for lr, tag in itertools.product(["0.001", "0.01", "0.1"], ["a b", "c"])
    ]
    assert lines == expected
    assert not root.exists()
    proc = exman_cmd("sweep", "-p", "hidden=[32,32],[128]", "--dry-run", "--", "python", "train.py")
    assert proc.stdout.splitlines() == ["python train.py --hidden 32 32", "python train.py --hidden 128"]


def test_file_zip_and_repeat_expand_in_order(exman_cmd, sweep_script, tmp_path):
    file = tmp_path / "sweep.yaml"
    file.write_text(
        yaml.safe_dump(
            {
                "command": f"{sys.executable} {sweep_script.path}",
                "grid": {"lr": [0.1, 0.2]},
                "zip": {"tag": ["p", "q"], "sleep": [0, 0.5]},
                "repeat": 2,
            },
            sort_keys=False,
        )
    )
    proc = exman_cmd("sweep", "--file", file, "--dry-run")
    got = [shlex.split(line)[2:] for line in proc.stdout.splitlines()]
    want = [
        ["--lr", lr, "--tag", tag, "--sleep", sl, "--seed", seed]
        for lr, (tag, sl), seed in itertools.product(["0.1", "0.2"], [("p", "0"), ("q", "0.5")], ["0", "1"])
    ]
    assert got == want


def test_one_number_spelled_twice_is_pointed_out(exman_cmd):
    proc = exman_cmd("sweep", "-p", "lr=1e-3,0.001,0.01", "-p", "n=1,2", "--dry-run", "--", "python", "t.py")
    assert len(proc.stdout.splitlines()) == 6  # still run as asked: a string option tells them apart
    assert proc.stderr.splitlines() == [
        "exman sweep: lr=1e-3 and 0.001 are one number: if the script reads lr as a number, "
        "their combinations run twice"
    ]


def test_bad_input_is_one_line(exman_cmd, run_sweep, sweep_script, tmp_path):
    # --detach needs a launcher that queues runs outside exman sweep (submitit on SLURM)
    for args in (
        ["-p", "lr"],
        ["-z", "a=1,2", "-z", "b=1"],
        ["-p", "lr=log:0:1:3"],
        ["--launcher", "nope", "-p", "lr=1"],
        ["--detach", "-p", "lr=1"],
        ["--detach", "--launcher", "submitit", "-o", "cluster=local", "-p", "lr=1"],
    ):
        proc = run_sweep(tmp_path / "r", sweep_script, *args, check=False)
        assert proc.returncode != 0, args
        assert "Traceback" not in proc.stderr and proc.stderr.strip().startswith("Error:"), proc.stderr
    assert not (tmp_path / "r").exists(), "refused input must not leave a root behind"
    for sub in ("runs", "index"):
        (tmp_path / "r" / sub).mkdir(parents=True)
    proc = exman_cmd("--root", tmp_path / "r", "sweep", "--resume", "nosuchid", check=False)
    assert proc.returncode != 0 and "no sweep 'nosuchid'" in proc.stderr


def test_sweeps_of_a_root_without_sweeps_says_so(exman_cmd, tmp_path):
    for sub in ("runs", "index"):
        (tmp_path / "r" / sub).mkdir(parents=True)
    proc = exman_cmd("--root", tmp_path / "r", "sweeps")
    assert proc.stdout == "" and proc.stderr.startswith(f"no sweeps in {tmp_path / 'r'}"), proc.stderr


@pytest.mark.parametrize(
    "body",
    ["jobs: two", "jobs: 0", "options: [1, 2]", "options: {jobs: two}", "command: 5", "zip: 5"],
)
def test_bad_sweep_file_is_one_line(body, tmp_path):
    # Each of these once escaped as a TypeError or ValueError traceback.
    import exman
    from exman.errors import SweepError

    file = tmp_path / "sweep.yaml"
    file.write_text("command: python train.py\ngrid: {lr: [0.1]}\n" + body + "\n")
    with pytest.raises(SweepError):
        exman.sweep(file=file, dry_run=True)


def test_bad_jobs_option_is_one_line(exman_cmd, tmp_path):
    proc = exman_cmd("sweep", "-o", "jobs=two", "-p", "lr=1", "--dry-run", "--", "python", "t.py", check=False)
    assert proc.returncode != 0 and proc.stderr.strip() == "Error: jobs must be a positive integer, got 'two'"


def test_local_two_workers(exman_cmd, run_sweep, sweep_script, tmp_path):
    root = tmp_path / "new-root"  # a fresh project starts with a sweep
    started = time.monotonic()
    proc = run_sweep(
        root, sweep_script, "-p", "lr=0.1,0.2", "-p", "seed=range:0:2", "--jobs", "2", script_args=["--sleep", "1"]
    )
    elapsed = time.monotonic() - started
    sweep_id = sweep_id_of(root)
    spec = yaml.safe_load((root / "sweeps" / f"{sweep_id}.yaml").read_text())
    assert spec["cells"] == [
        {"lr": "0.1", "seed": 0},
        {"lr": "0.1", "seed": 1},
        {"lr": "0.2", "seed": 0},
        {"lr": "0.2", "seed": 1},
    ]
    assert spec["launcher"] == "local" and spec["options"]["jobs"] == 2
    runs = records(root)
    assert len(runs) == 4 and all(r["status"] == "completed" and r["folder"] == "runs" for r in runs)
    assert all(r["sweep"] == sweep_id for r in runs)
    by_cell = {int(r["sweep_cell"]): r for r in runs}
    assert sorted(by_cell) == [0, 1, 2, 3]
    for cell, params in enumerate(spec["cells"]):
        assert by_cell[cell]["params"]["lr"] == float(params["lr"])
        assert by_cell[cell]["params"]["seed"] == params["seed"]
    # Children of `exman sweep` itself, and at most two at a time, at least two at once.
    intervals = sorted((r["start"], r["end"]) for r in runs)
    overlaps = [max(0, sum(1 for s, e in intervals if s <= start < e)) for start, _ in intervals]
    assert max(overlaps) == 2, intervals
    assert elapsed < 60
    assert f"sweep {sweep_id}: 4 cells: 4 completed; 4 runs: 4 completed; this call ran 4 cell(s) in " in proc.stdout
    status = exman_cmd("--root", root, "sweep", "--status", sweep_id).stdout
    assert f"sweep {sweep_id}: 4 cells: 4 completed; 4 runs: 4 completed\n" in status
    import exman

    df = exman.Index(root).info()
    assert (df["sweep"] == sweep_id).all() and sorted(df["sweep_cell"].astype(int)) == [0, 1, 2, 3]
    listed = exman_cmd("--root", root, "ls", "--where", f"sweep == '{sweep_id}'").stdout
    assert sorted(int(line.split()[0]) for line in listed.splitlines()[1:]) == sorted(r["id"] for r in runs)
    assert exman_cmd("--root", root, "ls", "--where", "sweep == 'other'", check=False).stdout.count("\n") <= 1


def test_failures_then_resume_reruns_only_the_failed(exman_cmd, run_sweep, sweep_script, tmp_path):
    root = tmp_path / "exman"
    (sweep_script.folder / "broken").write_text("")
    proc = run_sweep(root, sweep_script, "-p", "lr=0.1,0.01", "-p", "seed=0,1", "--jobs", "2", check=False)
    assert proc.returncode == 1
    sweep_id = sweep_id_of(root)
    assert (
        f"sweep {sweep_id}: 4 cells: 2 completed, 2 missing; 4 runs: 2 completed, 2 failed; this call ran 4"
        in proc.stdout
    )
    first = records(root)
    failed = sorted((r for r in first if r["status"] == "failed"), key=lambda r: int(r["sweep_cell"]))
    assert [r["params"]["lr"] for r in failed] == [0.01, 0.01] and all(r["folder"] == "fails" for r in failed)
    for r in failed:
        seed = r["params"]["seed"]
        line = next(ln for ln in proc.stdout.splitlines() if f"lr=0.01 seed={seed} " in ln)
        assert line.strip().startswith(f"failed: cell {r['sweep_cell']} ") and f"run {r['id']} " in line
    assert f"sweep --resume {sweep_id}" in proc.stdout

    planned = exman_cmd("--root", root, "sweep", "--resume", sweep_id, "--dry-run").stdout.splitlines()
    assert planned == [
        shlex.join([sys.executable, str(sweep_script.path), "--lr", "0.01", "--seed", str(r["params"]["seed"])])
        for r in failed
    ]
    # Fix the cause, resume from elsewhere: no command, same sweep id, only the two failed cells rerun.
    (sweep_script.folder / "broken").unlink()
    proc = exman_cmd("--root", root, "sweep", "--resume", sweep_id, "--jobs", "2", cwd=tmp_path.parent)
    # The end of the sweep counts the whole sweep as --status and `exman sweeps` do, then this call.
    assert (
        f"sweep {sweep_id}: 4 cells: 4 completed; 6 runs: 4 completed, 2 failed; this call ran 2 cell(s)" in proc.stdout
    )
    after = records(root)
    new = [r for r in after if r["id"] not in {f["id"] for f in first}]
    assert sorted(int(r["sweep_cell"]) for r in new) == sorted(int(r["sweep_cell"]) for r in failed)
    assert all(r["sweep"] == sweep_id and r["status"] == "completed" for r in new)
    status = exman_cmd("--root", root, "sweep", "--status", sweep_id).stdout
    # Cells and runs counted apart and worded the same in both commands: the two retried
    # cells are completed now; their first, failed runs are still counted as runs.
    line = "4 cells: 4 completed; 6 runs: 4 completed, 2 failed"
    assert f"sweep {sweep_id}: {line}" in status
    listing = exman_cmd("--root", root, "sweeps").stdout
    assert listing.startswith(f"{sweep_id}  {line}  ")
    # Nothing left to do: a second resume starts nothing and succeeds.
    proc = exman_cmd("--root", root, "sweep", "--resume", sweep_id)
    assert len(records(root)) == len(after)


def test_a_cell_that_stops_before_exparser_records_says_so_once(run_sweep, sweep_script, tmp_path):
    """A bad value stops the script in argparse: no run, and the summary says so with the log's last line."""
    root = tmp_path / "exman"
    proc = run_sweep(root, sweep_script, "-p", "lr=0.1,abc", check=False)
    assert proc.returncode == 1
    sweep_id = sweep_id_of(root)
    lines = proc.stdout.splitlines()
    at = lines.index(f"  failed: cell 1 lr=abc  no run recorded, exit 2  (sweeps/{sweep_id}/cell-0001.log)")
    assert lines[at + 1].startswith("          ") and "error: argument --lr" in lines[at + 1]


def test_resume_refuses_when_slurm_cannot_say_what_it_holds(exman_cmd, run_sweep, sweep_script, tmp_path):
    """A sweep whose cells went to SLURM (sweeps/<id>/slurm.json): a resume that cannot ask squeue
    whether SLURM still holds them refuses in one line rather than risk running a cell twice."""
    root = tmp_path / "exman"
    (sweep_script.folder / "broken").write_text("")
    proc = run_sweep(root, sweep_script, "-p", "lr=0.01", check=False)
    assert proc.returncode == 1
    (sweep_script.folder / "broken").unlink()
    sweep_id = sweep_id_of(root)
    # what the submitit launcher records for each submission (here: the cell as SLURM job 999999)
    (root / "sweeps" / sweep_id / "slurm.json").write_text(
        json.dumps(
            {"submissions": [{"job": "999999", "submitted": "2026-11-30T08:00:00+00:00", "tasks": {"999999": 0}}]}
        )
    )
    no_slurm = {"PATH": str(Path(sys.executable).parent)}  # no squeue there
    proc = exman_cmd("--root", root, "sweep", "--resume", sweep_id, env=no_slurm, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "squeue is not on PATH" in proc.stderr, proc.stderr
    assert len(records(root)) == 1
    status = exman_cmd("--root", root, "sweep", "--status", sweep_id, env=no_slurm)
    assert "cells still queued there show as missing" in status.stderr and "1 missing" in status.stdout


def test_a_stopped_resume_reports_only_its_own_runs(exman_cmd, run_sweep, sweep_script, tmp_path):
    root = tmp_path / "exman"
    (sweep_script.folder / "broken").write_text("")  # both runs fail before their sleep
    run_sweep(root, sweep_script, "-p", "lr=0.01", "-p", "seed=0,1", script_args=["--sleep", "60"], check=False)
    first = {int(r["sweep_cell"]): r["id"] for r in records(root)}
    (sweep_script.folder / "broken").unlink()
    sweep_id = sweep_id_of(root)
    resumed = subprocess.Popen(
        [*exman_command(), "--root", str(root), "sweep", "--resume", sweep_id, "--jobs", "1"],
        env=env_for_subprocess(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: any(r["status"] == "running" for r in records(root)))
        resumed.send_signal(signal.SIGINT)
        out, _ = resumed.communicate(timeout=30)
    finally:
        if resumed.poll() is None:
            resumed.kill()
    # Cell 1 did not start in this call: its failed run of the first call is not this call's.
    assert "this call ran 1 cell(s)" in out and "not started: 1 cell(s): 1" in out, out
    assert f"run {first[1]} " not in out, out
    assert [r["status"] for r in records(root) if r["id"] == first[1]] == ["failed"]


def test_a_killed_sweeps_starting_children_are_not_rerun(exman_cmd, tmp_path):
    # exman sweep killed outright while its children import (no run.json yet): they go on, so
    # --status must not call their cells missing nor --resume start them a second time.
    script = Script(tmp_path, "import time\ntime.sleep(8)  # a slow import; room for two exman calls\n" + SWEEP_SCRIPT)
    root = tmp_path / "root"
    proc = start_sweep(root, script, "-p", "seed=0,1,2", "--jobs", "2")
    _wait_for(lambda: len(list(root.glob("sweeps/*/cell-*.log"))) == 2)
    proc.kill()
    proc.communicate()
    sweep_id = sweep_id_of(root)
    status = exman_cmd("--root", root, "sweep", "--status", sweep_id).stdout.splitlines()
    assert status[-1] == f"sweep {sweep_id}: 3 cells: 2 running, 1 missing; 0 runs", status
    dry = exman_cmd("--root", root, "sweep", "--resume", sweep_id, "--dry-run").stdout.splitlines()
    assert [shlex.split(line)[2:] for line in dry] == [["--seed", "2"]]
    exman_cmd("--root", root, "sweep", "--resume", sweep_id)
    _wait_for(lambda: len(records(root)) == 3 and all(r["status"] == "completed" for r in records(root)))
    time.sleep(0.5)  # a duplicate would have recorded itself by now
    assert sorted(r["sweep_cell"] for r in records(root)) == ["0", "1", "2"]


def test_python_api(sweep_script, tmp_path, monkeypatch):
    import exman

    monkeypatch.setenv("PYTHONPATH", env_for_subprocess()["PYTHONPATH"])
    monkeypatch.chdir(sweep_script.folder)
    (sweep_script.folder / "broken").write_text("")
    root = tmp_path / "api-root"
    result = exman.sweep([sys.executable, str(sweep_script.path)], {"lr": [0.1, 0.01]}, jobs=2, root=root, quiet=True)
    assert result.exit_code == 1 and not result.ok
    assert [f.params for f in result.failures] == [{"lr": 0.01}]
    (bad,) = result.failures
    assert bad.status == "failed" and Path(bad.run_path).parent == root / "fails"
    assert json.loads((Path(bad.run_path) / "run.json").read_text())["id"] == bad.run_id
    df = exman.sweep.status(root, result.sweep_id)
    assert df[["completed", "failed", "missing"]].values.tolist() == [[1, 0, 0], [0, 1, 1]]
    # The working folder does not lead to the root: the hint names it, so it works as printed.
    hint = f"exman --root {shlex.quote(str(root.resolve()))} sweep --resume {result.sweep_id}"
    assert hint in result.summary().splitlines()[-1]


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


SLOW = pytest.mark.skipif(not os.environ.get("EXMAN_SLOW"), reason="slow variant: set EXMAN_SLOW=1")
LAUNCHERS = [
    pytest.param(["--launcher", "local"], id="local"),
    pytest.param(
        ["--launcher", "dask"],
        id="dask",
        marks=[
            SLOW,
            pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="distributed not installed"),
        ],
    ),
    pytest.param(
        ["--launcher", "submitit", "-o", "cluster=local"],
        id="submitit",
        marks=[SLOW, pytest.mark.skipif(importlib.util.find_spec("submitit") is None, reason="submitit not installed")],
    ),
]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_sigint_stops_cleanly(exman_cmd, sweep_script, tmp_path, launcher):
    root = tmp_path / "exman"
    proc = start_sweep(
        root,
        sweep_script,
        "-p",
        "lr=0.1,0.2,0.3,0.4,0.5",
        "--jobs",
        "2",
        *launcher,
        script_args=["--sleep", "60"],
        start_new_session=True,
    )
    try:
        assert _wait_for(
            lambda: (root / "runs").is_dir() and sum(r["status"] == "running" for r in records(root)) == 2
        ), "two runs never started"
        # Ctrl-C on a terminal: SIGINT to the foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    runs = records(root)
    assert len(runs) == 2, "a new combination started after SIGINT"
    assert all(r["status"] == "interrupted" for r in runs), [r["status"] for r in runs]
    assert not any(pid_alive(r["pid"]) for r in runs)
    assert "stopped by SIGINT" in out and "sweep --resume" in out and "not started: 3 cell(s): 2, 3, 4" in out
    # What is left will not run: no ETA once stopping.
    assert "ETA" not in err.split("stopping")[-1], err
    # Every cell is still to do, so --resume would run all five.
    sweep_id = sweep_id_of(root)
    status = exman_cmd("--root", root, "sweep", "--status", sweep_id, check=False)
    assert f"sweep {sweep_id}: 5 cells: 5 missing; 2 runs: 2 interrupted\n" in status.stdout
    assert f"sweep {sweep_id}: 5 cells: 5 missing; 2 runs: 2 interrupted; this call ran 2 cell(s)" in out


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="distributed not installed (exman[dask])")
def test_dask_local_cluster(run_sweep, sweep_script, tmp_path):
    root = tmp_path / "exman"
    proc = run_sweep(
        root, sweep_script, "--launcher", "dask", "--jobs", "2", "-p", "lr=0.1,0.2,0.3", script_args=["--sleep", "4"]
    )
    runs = records(root)
    # A run's time counts from its start, not from when dask queued it on a busy worker (4 s earlier).
    took = {int(m[1]): float(m[2]) for m in re.finditer(r"\] cell (\d+) .*: ok ([\d.]+)s", proc.stderr)}
    assert len(took) == 3, proc.stderr
    for r in runs:
        assert took[int(r["sweep_cell"])] < r["duration"] + 3.5, (took, proc.stderr)
    assert len(runs) == 3 and all(r["status"] == "completed" and r["sweep"] == sweep_id_of(root) for r in runs)
    assert sorted(int(r["sweep_cell"]) for r in runs) == [0, 1, 2]
    # Each run is the child of a dask worker process, not of `exman sweep`.
    parents = set()
    for r in runs:
        lines = (Path(root / "runs" / r["name"]) / "metrics.jsonl").read_text().splitlines()
        parents.add(json.loads(lines[-1])["ppid"])
    assert 1 <= len(parents) <= 2
    assert "3 completed" in proc.stdout


@pytest.mark.skipif(importlib.util.find_spec("submitit") is None, reason="submitit not installed (exman[submitit])")
def test_submitit_local_executor(run_sweep, sweep_script, tmp_path):
    root = tmp_path / "exman"
    (sweep_script.folder / "broken").write_text("")
    proc = run_sweep(
        root,
        sweep_script,
        "--launcher",
        "submitit",
        "-o",
        "cluster=local",
        "-o",
        "timeout_min=5",
        "--jobs",
        "2",
        "-p",
        "lr=0.1,0.01",
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    sweep_id = sweep_id_of(root)
    runs = {r["params"]["lr"]: r for r in records(root)}
    assert runs[0.1]["status"] == "completed" and runs[0.01]["status"] == "failed"
    assert all(r["sweep"] == sweep_id for r in runs.values())
    assert (root / "sweeps" / sweep_id / "submitit").is_dir()
    assert f"failed: cell 1 lr=0.01  run {runs[0.01]['id']} " in proc.stdout


def test_sigterm_to_sweep_alone(exman_cmd, sweep_script, tmp_path):
    """`kill PID` (a batch system's stop) rather than Ctrl-C: same clean stop, exit 143."""
    root = tmp_path / "exman"
    proc = start_sweep(root, sweep_script, "-p", "lr=0.1,0.2,0.3", "--jobs", "2", script_args=["--sleep", "60"])
    try:
        assert _wait_for(
            lambda: (root / "runs").is_dir() and sum(r["status"] == "running" for r in records(root)) == 2
        ), "two runs never started"
        # While it runs, nobody else may run its cells.
        second = exman_cmd("--root", root, "sweep", "--resume", sweep_id_of(root), check=False)
        assert second.returncode != 0 and f"is being run by pid {proc.pid}" in second.stderr, second.stderr
        # ...and --status and `exman sweeps` say so: its missing cell is still to come.
        owner = f"being run by pid {proc.pid} on {os.uname().nodename}"
        status = exman_cmd("--root", root, "sweep", "--status", sweep_id_of(root)).stdout.splitlines()[-1]
        assert status.endswith(f"1 missing; 2 runs: 2 running; {owner}"), status
        assert owner in exman_cmd("--root", root, "sweeps").stdout
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    runs = records(root)
    assert len(runs) == 2 and all(r["status"] == "interrupted" for r in runs)
    assert not any(pid_alive(r["pid"]) for r in runs)
    assert "stopped by SIGTERM" in out
    assert "being run by" not in exman_cmd("--root", root, "sweeps").stdout


def test_help_imports_no_launcher_library():
    code = (
        "import sys\nfrom exman.cli import make_cli\n"
        "try:\n    make_cli().main(['sweep', '--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "import exman\nexman.sweep\n"
        "print(sorted(m for m in ('distributed', 'dask', 'submitit', 'pandas', 'rich') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env_for_subprocess(), check=True
    )
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert "--launcher" in proc.stdout


def test_eta_counts_waves_of_parallel_runs():
    from exman.sweeps.progress import eta

    assert eta([], [1.0], 11, 2) is None  # nothing finished: nothing to go by
    # Two runs of 3 s finished, 10 left two at a time: five more waves of 3 s.
    assert eta([3.0, 3.0], [], 10, 2) == 15.0
    assert eta([2.0], [], 0, 2) == 0.0
    # A run going for 1 s, expected to take 3 s like the one that took longer: 2 s more.
    assert eta([0.5, 3.0], [1.0], 0, 2) == 2.0


def _schedule(durations: list, parallel: int) -> list:
    """Run ``durations`` in order, ``parallel`` at a time, as the local launcher does: at each
    completion, (time, finished durations, elapsed of the running runs, runs not started)."""
    clock, todo, running, finished, events = 0.0, list(durations), [], [], []
    while todo and len(running) < parallel:
        running.append((0.0, todo.pop(0)))
    while running:
        start, took = min(running, key=lambda r: r[0] + r[1])
        running.remove((start, took))
        clock = start + took
        finished.append(took)
        while todo and len(running) < parallel:
            running.append((clock, todo.pop(0)))
        events.append((clock, list(finished), [clock - s for s, _ in running], len(todo)))
    return events


@pytest.mark.parametrize(
    "durations, parallel",
    [
        ([1.0, 2.0, 3.0, 4.0] * 4, 4),  # the first cells finish at different times
        ([1.0 + 9.0 * ((7 * i) % 32) / 31 for i in range(32)], 8),  # 1 to 10 s, shuffled
        ([5.0 + 0.1 * (i % 3) for i in range(24)], 8),  # alike: waves end together
    ],
)
def test_eta_early_in_a_sweep_whose_runs_differ(durations, parallel):
    from exman.sweeps.progress import eta

    events = _schedule(durations, parallel)
    end = events[-1][0]
    # Once a quarter of the first wave has finished, and over the first half of the sweep, the
    # ETA stays within a factor of 2.5 of the time really left. (The rule before, the mean of the
    # finished runs times the waves left, was 2.9x too small at the first completion of the first
    # case, 3.3x at the third of the second, and under half for its first seven.)
    for clock, finished, running, left in events[max(parallel // 4, 1) : len(events) // 2]:
        ratio = eta(finished, running, left, parallel) / (end - clock)
        assert 1 / 2.5 <= ratio <= 2.5, (clock, ratio)


def test_grid_syntax():
    from exman.sweeps.grid import SweepError, expand, parse_values

    assert parse_values("log:1e-4:1e-1:4") == pytest.approx([10.0**k for k in range(-4, 0)], rel=1e-12)
    assert parse_values("lin:0:1:5") == pytest.approx([i / 4 for i in range(5)])
    assert parse_values("range:0:5") == list(range(5)) and parse_values("range:10:0:-3") == list(range(10, 0, -3))
    assert parse_values("range:0:1:0.25") == pytest.approx([0, 0.25, 0.5, 0.75])
    assert parse_values("a,b") == ["a", "b"] and parse_values(["x,y", "range:0:2"]) == ["x,y", 0, 1]
    # A list argument (nargs) from -p: bracketed values; brackets inside a plain value stay text.
    assert parse_values("[32,32],[128],[]") == [["32", "32"], ["128"], []]
    assert parse_values("x[1],y") == ["x[1]", "y"]
    assert expand({"hidden": "[32,32],[128]"}) == [{"hidden": ["32", "32"]}, {"hidden": ["128"]}]
    cells = expand({"a": [1, 2]}, [{"b": "x,y", "c": [True, False]}], {"count": 2, "key": "rep"})
    assert cells == [
        {"a": a, "b": b, "c": c, "rep": r} for a in (1, 2) for b, c in (("x", True), ("y", False)) for r in (0, 1)
    ]
    for bad in ("range:0:5:0", "log:-1:1:3", "lin:0:1:x", "a,,b", "[32,32", "[1,,2]"):
        with pytest.raises(SweepError):
            parse_values(bad)
    with pytest.raises(SweepError):
        expand({"a": [1]}, {"a": [2]})
    with pytest.raises(SweepError):
        expand({"--a": [1]})


CELL_SCRIPT = """
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--cell", type=int, default=0)
parser.add_argument("--completed", default="no")
args = parser.parse_args()
with args.safe_experiment as run:
    if args.cell == 7:
        raise RuntimeError("failing on purpose")
    run.log(loss=float(args.cell))
"""


def test_parameters_named_like_the_status_columns(exman_cmd, run_sweep, tmp_path):
    """A script parameter called `cell` (or `completed`) must not stand for the grid cell's number."""
    script = Script(tmp_path, CELL_SCRIPT)
    root = tmp_path / "root"
    proc = run_sweep(root, script, "-p", "cell=5,7", "-p", "completed=a", "--jobs", "2", check=False)
    assert proc.returncode == 1, proc.stderr
    sweep_id = sweep_id_of(root)
    import exman

    df = exman.sweep.status(root, sweep_id)
    assert df["cell"].tolist() == [0, 1] and df["cell_param"].tolist() == ["5", "7"]
    assert df["completed_param"].tolist() == ["a", "a"] and df["completed"].tolist() == [1, 0]
    assert df.attrs["params"] == ["cell_param", "completed_param"]
    planned = exman_cmd("--root", root, "sweep", "--resume", sweep_id, "--dry-run").stdout.splitlines()
    assert len(planned) == 1 and "--cell 7" in planned[0], planned
