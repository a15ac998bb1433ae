"""`exman doctor --fix --reindex` in a loop beside runs being started (M2).

Doctor may link a run that is still being recorded: the script that then finds
its link already made must accept it, and doctor must accept a link the script
made while it looked. Every start succeeds, every run ends up indexed once.
"""

from __future__ import annotations

import subprocess

from .test_writers import start_round
from .tools import SLOW, check_root, python, report

DOCTOR_LOOP = """
import pathlib, sys
from exman.cli import main

stop = pathlib.Path(sys.argv[2])
n = 0
while not stop.exists():
    try:
        main(["--root", sys.argv[1], "doctor", "--fix", "--reindex"])
    except SystemExit:
        pass
    n += 1
print(n)
"""


def test_doctor_reindex_beside_starting_runs(tmp_path):
    from .test_writers import WRITER

    writers, rounds = (16, 6) if SLOW else (8, 3)
    script = tmp_path / "main.py"
    script.write_text(WRITER)
    start_round(tmp_path, script, 1, 99)  # make the root
    loop = tmp_path / "doctor.py"
    loop.write_text(DOCTOR_LOOP)
    stop = tmp_path / "stop"
    doctor = python([loop, tmp_path / "exman", stop], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for rnd in range(rounds):
            start_round(tmp_path, script, writers, rnd)  # asserts every start succeeded
    finally:
        stop.touch()
        out, err = doctor.communicate(timeout=120)
    assert doctor.returncode == 0 and "Traceback" not in err, err[-2000:]
    rep = check_root(tmp_path / "exman")
    assert len(rep.runs["runs"]) == writers * rounds + 1 and not rep.runs["fails"]
    assert len(rep.links) == writers * rounds + 1
    loops = out.strip().splitlines()[-1]
    report(f"doctor --fix --reindex x{loops} beside {writers * rounds} starts: all recorded and indexed once")
