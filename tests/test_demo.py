"""The README's demo runs end to end: a sweep, a failure set aside, the table, a summary, a plot."""
from __future__ import annotations

import shutil
import subprocess
import sys

from conftest import REPO, env_for_subprocess


def test_demo_records_the_grid_and_prints_the_table(tmp_path):
    for name in ("demo.py", "train.py"):
        shutil.copy(REPO / "examples" / name, tmp_path / name)
    proc = subprocess.run([sys.executable, str(tmp_path / "demo.py")], capture_output=True, text=True,
                          env=env_for_subprocess(), timeout=240)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "36 runs recorded" in out and "failed as expected: 1 run" in out
    assert "acc_ci_low" in out and (tmp_path / "exman" / "demo-plot.png").stat().st_size > 10_000
    root = tmp_path / "exman"
    assert len(list((root / "runs").iterdir())) == 36 and len(list((root / "fails").iterdir())) == 1
