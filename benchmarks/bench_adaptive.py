"""An adaptive sweep against a fixed ``--repeat 10`` sweep, and the race's error rates by simulation.

    python benchmarks/bench_adaptive.py [--jobs 2] [--trials 50] [--no-sweeps]

1. Real sweeps of a script whose ``acc`` is drawn from a known normal distribution per cell: 8
   cells, half clear-cut (one tight best cell, three far worse ones), half close calls with a wide
   spread. Both sweeps' conclusions come from ``Index.compare`` on their own runs: which cell is
   best, and which cells are significantly worse than it (Holm, alpha 0.05). Prints the runs each
   sweep needed and whether the conclusions agree.
2. ``trials`` simulated sweeps through the same decision code (``exman.sweeps.adaptive.simulate``):
   how often the true best cell is raced out (a close runner-up beside it), and how often a cell
   exactly as good as the best is raced out (the worst case, which alpha bounds).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CELLS = {
    # clear-cut: a tight best cell and three far worse ones
    "c1": (0.90, 0.002),
    "c2": (0.50, 0.01),
    "c3": (0.40, 0.01),
    "c4": (0.60, 0.005),
    # close calls, wide spread
    "c5": (0.88, 0.02),
    "c6": (0.89, 0.03),
    "c7": (0.87, 0.02),
    "c8": (0.86, 0.03),
}
SCRIPT = f"""
import random
import exman

CELLS = {CELLS!r}
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--cell", default="c1")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
with args.safe_experiment as run:
    mean, std = CELLS[args.cell]
    run.log(acc=random.Random(f"{{args.cell}}-{{args.seed}}").gauss(mean, std))
"""
ADAPTIVE = ["--repeat", "3", "--max-repeat", "10", "--until", "ci(acc) <= 0.02", "--race", "max(acc)"]


def exman_command() -> list:
    exe = Path(sys.executable).parent / "exman"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "exman"]


def sweep(folder: Path, args: list, jobs: int) -> tuple:
    folder.mkdir()
    (folder / "synth.py").write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    began = time.perf_counter()
    subprocess.run(
        [
            *exman_command(),
            "--root",
            folder / "exman",
            "sweep",
            "-p",
            "cell=" + ",".join(CELLS),
            "-j",
            str(jobs),
            "-q",
            *args,
            "--",
            sys.executable,
            folder / "synth.py",
        ],
        env=env,
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return folder / "exman", time.perf_counter() - began


def conclusions(root: Path) -> tuple:
    """(runs, best cell, cells significantly worse than it) from ``Index.compare`` on the runs."""
    import exman

    df = exman.Index(root).info()
    means = df.groupby("cell")["acc"].mean()
    best = means.idxmax()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = exman.Index(root).compare("acc", "cell")
    rows = table[(table["a"] == best) | (table["b"] == best)]
    worse = sorted(r.b if r.a == best else r.a for r in rows.itertuples() if r.p_adj < 0.05)
    return len(df), best, worse


def simulated(trials: int) -> None:
    import numpy as np

    from exman.sweeps.adaptive import settings, simulate

    rule = settings(3, until="ci(acc) <= 0.02", max_repeat=10, race="max(acc)")
    means, stds = [0.90, 0.88, 0.85, 0.60], [0.02] * 4
    began = time.perf_counter()
    runs, best_out, far_out = [], 0, 0
    for t in range(trials):
        decisions, seeds = simulate(means, stds, rule, np.random.default_rng(t))
        best_out += decisions[0]["state"] == "raced"
        far_out += decisions[3]["state"] == "raced"
        runs.append(sum(seeds))
    print(
        f"simulated, cells {means} std 0.02, {trials} trials ({time.perf_counter() - began:.1f} s): "
        f"true best raced out {best_out}/{trials}, far worse cell raced out {far_out}/{trials}, "
        f"{np.mean(runs):.1f} runs on average vs {10 * len(means)} for --repeat 10"
    )
    race_only = settings(3, max_repeat=10, race="max(acc)")
    tied = sum(
        simulate([0.9, 0.9, 0.5], [0.02] * 3, race_only, np.random.default_rng(t))[0][1]["state"] == "raced"
        for t in range(trials * 4)
    )
    print(
        f"simulated worst case, two equally good cells, race only: the second raced out {tied}/{trials * 4} "
        f"({tied / (trials * 4):.1%}; alpha {rule['alpha']})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--no-sweeps", action="store_true", help="only the simulation")
    args = ap.parse_args()
    if not args.no_sweeps:
        with tempfile.TemporaryDirectory() as tmp:
            fixed_root, fixed_s = sweep(Path(tmp) / "fixed", ["--repeat", "10"], args.jobs)
            adaptive_root, adaptive_s = sweep(Path(tmp) / "adaptive", ADAPTIVE, args.jobs)
            fixed, adaptive = conclusions(fixed_root), conclusions(adaptive_root)
        print(
            f"fixed --repeat 10: {fixed[0]} runs, {fixed_s:.1f} s; best {fixed[1]}, significantly worse: "
            f"{', '.join(fixed[2])}"
        )
        print(
            f"adaptive {' '.join(ADAPTIVE)}: {adaptive[0]} runs, {adaptive_s:.1f} s; best {adaptive[1]}, "
            f"significantly worse: {', '.join(adaptive[2])}"
        )
        same = fixed[1:] == adaptive[1:]
        print(
            f"same conclusions: {'yes' if same else 'NO'}; runs saved {fixed[0] - adaptive[0]} "
            f"({1 - adaptive[0] / fixed[0]:.0%}), wall time {adaptive_s / fixed_s:.2f}x"
        )
    simulated(args.trials)


if __name__ == "__main__":
    main()
