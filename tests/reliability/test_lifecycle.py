"""A run's life under odd scripts and odd moves: nested blocks (M6), a root renamed while it trains (M9)."""

from __future__ import annotations

import json
import subprocess
import time

from exman import Index
from exman.index import meta_column

from .tools import python

NESTED = """
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
args = parser.parse_args()
with args.safe_experiment as run:
    with args.safe_experiment:
        print("inside")
        run.log(loss=1.0)
    raise RuntimeError("outer block fails")
"""

NESTED_OK = """
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
args = parser.parse_args()
with args.safe_experiment as run:
    with args.safe_experiment(prompt=False):
        print("inside")
    print("still inside")
print("after the run")
"""


def test_nested_safe_experiment_records_the_outer_outcome(script):
    script.path.write_text(NESTED)
    proc = script.run(check=False)
    assert proc.returncode == 1 and "RuntimeError: outer block fails" in proc.stderr
    assert not list((script.root / "runs").iterdir())
    run = next((script.root / "fails").iterdir())
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert (run / "log.txt").read_text().splitlines().count("inside") == 1


def test_nested_safe_experiment_captures_output_once_and_stops(script):
    script.path.write_text(NESTED_OK)
    proc = script.run()
    assert proc.stdout.splitlines().count("inside") == 1 and "after the run" in proc.stdout
    run = next((script.root / "runs").iterdir())
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    log = (run / "log.txt").read_text()
    assert log.splitlines().count("inside") == 1 and "still inside" in log and "after the run" not in log


TRAINS = """
import pathlib, time
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
args = parser.parse_args()
here = pathlib.Path(__file__).parent
with args.safe_experiment as run:
    step = 0
    while not (here / "stop").exists():
        run.log(loss=1.0 / (step + 1))
        step += 1
        time.sleep(0.01)
        if step == 5:
            (here / "started").touch()
    run.log(loss=0.0, last=1)
"""


def test_root_renamed_while_the_run_trains(tmp_path):
    (tmp_path / "main.py").write_text(TRAINS)
    proc = python(
        [tmp_path / "main.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env_extra={"EXMAN_HEARTBEAT": "0.05"},
    )
    try:
        end = time.time() + 60
        while not (tmp_path / "started").exists() and time.time() < end and proc.poll() is None:
            time.sleep(0.01)
        (tmp_path / "exman").rename(tmp_path / "moved")
        time.sleep(0.3)  # rows and heartbeats after the move
        (tmp_path / "stop").touch()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    root = tmp_path / "moved"
    run = next((root / "runs").iterdir())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1].get("last") == 1 and [r["step"] for r in rows] == list(range(len(rows)))
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    assert not (tmp_path / "exman").exists()
    df = Index(root).info()
    assert df[meta_column(df, "status")].tolist() == ["completed"]
