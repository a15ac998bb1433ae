"""How long the ``exman`` commands take on a root with many runs, as whole processes.

    python benchmarks/bench_cli.py [--runs 1000] [--rounds 5]

Builds a root with N runs (one process, ExParser in a loop, 3 metrics rows each), then times the
installed ``exman`` command: ``ls`` cold (no Index cache) and warm, ``ls --format json``,
``show``, ``diff``, ``mark`` and ``doctor``; medians of the rounds are printed. ``--help`` is the
floor: starting Python, click and the plugin manager.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build(root: Path, n: int) -> None:
    sys.path.insert(0, str(REPO))
    import contextlib
    import io

    import exman

    for i in range(n):
        p = exman.ExParser(root=root)
        p.add_argument("--lr", type=float, default=0.1)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--optimizer", default="sgd")
        with contextlib.redirect_stdout(io.StringIO()):
            args = p.parse_args(["--lr", str(0.01 * (1 + i % 10)), "--seed", str(i % 3)])
            with args.safe_experiment as run:
                for step in range(3):
                    run.log(loss=1.0 / (step + 1 + i), acc=0.5 + 0.01 * step)


def timed(command, env, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    opts = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="exman-bench-cli-"))
    root = tmp / "exman"
    try:
        t = time.perf_counter()
        build(root, opts.runs)
        print(f"built {opts.runs} runs in {time.perf_counter() - t:.1f} s")
        exe = Path(sys.executable).parent / "exman"
        base = [str(exe)] if exe.exists() else [sys.executable, "-m", "exman"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        cmd = [*base, "--root", str(root)]

        rows = [
            ("exman --help (floor)", [*base, "--help"], None),
            ("ls, no Index cache", [*cmd, "ls"], {"EXMAN_INDEX_CACHE": "0"}),
            ("ls, warm", [*cmd, "ls"], None),
            ("ls --format json", [*cmd, "ls", "--format", "json"], None),
            ("ls --where 'lr > 0.05'", [*cmd, "ls", "--where", "lr > 0.05"], None),
            ("show 500", [*cmd, "show", str(min(500, opts.runs))], None),
            ("diff 1 2", [*cmd, "diff", "1", "2"], None),
            ("mark best 1-100", [*cmd, "mark", "best", "1-100"], None),
            ("doctor", [*cmd, "doctor"], None),
        ]
        for label, command, extra in rows:
            ms = timed(command, dict(env, **(extra or {})), opts.rounds) * 1000
            print(f"{label:<28} {ms:8.0f} ms  (median of {opts.rounds})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
