"""How long the ``exman`` commands take on a root with many runs, as whole processes.

    python benchmarks/bench_cli.py [--runs 1000] [--rounds 5]

Builds a root with N runs (one process, ExParser in a loop, 3 metrics rows each), then times the
installed ``exman`` command as whole processes: ``ls`` cold (no Index cache) and warm,
``ls --format json``, ``show``, ``diff``, ``mark`` and ``doctor``. Each runs once to warm up, then
the rounds are interleaved; medians of wall and CPU time are printed (benchmarks/_common.py).
``--help`` is the floor: starting Python, click and the plugin manager.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, Row, child_env, exman_command, medians, scratch  # noqa: E402


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    opts = ap.parse_args()
    with scratch("cli") as tmp:
        root = tmp / "exman"
        t = time.perf_counter()
        build(root, opts.runs)
        print(f"built {opts.runs} runs in {time.perf_counter() - t:.1f} s")
        base, env = exman_command(), child_env()
        cmd = [*base, "--root", str(root)]
        rows = {
            "exman --help (floor)": Row([*base, "--help"], env),
            "ls, no Index cache": Row([*cmd, "ls"], child_env(EXMAN_INDEX_CACHE="0")),
            "ls, warm": Row([*cmd, "ls"], env),
            "ls --format json": Row([*cmd, "ls", "--format", "json"], env),
            "ls --where 'lr > 0.05'": Row([*cmd, "ls", "--where", "lr > 0.05"], env),
            f"show {min(500, opts.runs)}": Row([*cmd, "show", str(min(500, opts.runs))], env),
            "diff 1 2": Row([*cmd, "diff", "1", "2"], env),
            "mark best 1-100": Row([*cmd, "mark", "best", "1-100"], env),
            "doctor": Row([*cmd, "doctor"], env),
        }
        print(f"median of {opts.rounds} interleaved rounds")
        medians(rows, opts.rounds)


if __name__ == "__main__":
    main()
