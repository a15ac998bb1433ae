"""Two ``exman sweep --resume`` of one sweep at once: only one may run its cells (M1).

Real processes start at the same moment (a gate) and each tries to become the
sweep's owner, over a left-over owner file of a process that died; exactly one
may hold it, the rest are refused while it does.
"""

from __future__ import annotations

import os
import subprocess

from .tools import SLOW, Gate, python, report

CONTENDER = (
    """
import sys, time
from pathlib import Path
from exman.sweeps.records import Owner
from exman.sweeps.grid import SweepError
"""
    + Gate.WAIT
    + """
try:
    with Owner(Path(sys.argv[1]), "s1"):
        start = time.time()
        time.sleep(0.5)
        print("owner", start, time.time(), flush=True)
except SweepError as exc:
    print("refused", exc, flush=True)
"""
)


def test_one_owner_among_simultaneous_resumes(tmp_path):
    rounds, procs_per_round = (20, 16) if SLOW else (3, 10)
    script = tmp_path / "contender.py"
    script.write_text(CONTENDER)
    doubled = 0
    for r in range(rounds):
        root = tmp_path / f"root{r}"
        (root / "sweeps" / "s1").mkdir(parents=True)
        # The owner file of a sweep driver that was SIGKILLed: a pid that is not running.
        (root / "sweeps" / "s1" / "owner").write_text(f"{os.uname().nodename} 999999\n")
        gate = Gate(tmp_path / f"gate{r}")
        procs = [
            python([script, root], env_extra=gate.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(procs_per_round)
        ]
        gate.open_when(procs_per_round, procs)
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
        spans = sorted(tuple(map(float, o[0].split()[1:3])) for o in outs if o[0].startswith("owner"))
        assert spans, "nobody became the owner"
        # Owners one after the other are fine (a late starter); two at once are the fault.
        doubled += any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))
        for out, _ in outs:
            if out.startswith("refused"):
                assert "is being run by" in out
    report(f"sweep owner: {rounds} rounds of {procs_per_round} simultaneous resumes, {doubled} with two owners")
    assert doubled == 0
