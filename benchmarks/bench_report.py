"""How long ``exman report`` takes on 100 runs, as a whole process, against a naive page.

    python benchmarks/bench_report.py [--runs 100] [--rounds 7] [--repo CHECKOUT] [--valgrind]

Builds a root as a project leaves it (the report test's messy root: lr x optimizer, an
argument added after a fifth of the runs, a volatile one, a logged step counter, 5 steps of
loss/acc/epoch per run), then times, as whole processes with warm bytecode:
  naive     a script that reads the same runs (``Index.info()``, ``Index.metrics()``) and writes
            ``info.to_html()``: the least any report page costs (Python, pandas, the read);
  ls        ``exman ls`` on the same root, for scale;
  report, statistics computed    ``exman report`` with the root's statistics cache removed
            first (scipy.stats and statsmodels imported, as on a first report or after new runs);
  report, statistics remembered  ``exman report`` again over the same runs (the cache answers).
Each runs once to warm up, then the rounds are interleaved so machine noise hits all alike;
medians of wall time and of CPU time (user + system: less sensitive to other work on shared
cores) are printed, with report/naive (benchmarks/_common.py).
Then the CPU time of one report process split into its phases (median over the rounds):
Python's start, exman's CLI (click, pluggy, plugins), pandas, scipy.stats + statsmodels
(only when computed), and exman's own work (read the Index, render, write).
``--repo`` times another checkout (e.g. an older commit in a worktree) with this script;
``--valgrind`` also counts each command's instructions, a figure other work cannot move.
The issue's target is ``exman report`` under 1 s for 100 runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, Row, child_env, exman_command, medians, scratch  # noqa: E402

STATS_CACHE = Path(".exman") / "stats-cache.json"  # exman_plugins.commands.report.stats_cache
LRS = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "a-rather-long-optimizer-name")

NAIVE = """
import sys
import exman
index = exman.Index(sys.argv[1])
info = index.info(include_failed=True)
index.metrics(info)
open(sys.argv[2], "w").write(info.to_html())
"""

# One report in phases, in this process's CPU time; the first reading is Python's own start.
PHASES = """
import json, sys, time
marks = [time.process_time()]
import exman.cli
cli = exman.cli.make_cli()
marks.append(time.process_time())
import pandas
marks.append(time.process_time())
if sys.argv[3] == "computed":
    import scipy.stats, statsmodels.stats.multitest
marks.append(time.process_time())
cli.main(args=["--root", sys.argv[1], "report", "--out", sys.argv[2]], standalone_mode=False)
marks.append(time.process_time())
print(json.dumps([marks[0]] + [b - a for a, b in zip(marks, marks[1:])]))
"""
PHASE_NAMES = ("Python start", "exman CLI + plugins", "pandas", "scipy.stats + statsmodels", "exman's own work")


def one(root: Path, argv: list, later: bool) -> None:
    import exman

    parser = exman.ExParser(root=root)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--seed", type=int, default=0)
    if later:
        parser.add_argument("--width", type=int, default=128)
        parser.add_argument("--workers", type=int, default=1, volatile=True)
    with contextlib.redirect_stdout(io.StringIO()):
        args = parser.parse_args(argv)
        with args.safe_experiment as run:
            for epoch in range(5):
                acc = 0.5 + 0.08 * epoch + 0.01 * args.seed - 0.02 * OPTIMIZERS.index(args.optimizer)
                run.log(epoch=epoch, loss=1.0 - acc, acc=acc)


def build(root: Path, n: int) -> None:
    """The first fifth of the runs before --width and --workers existed, then seeds 0-3."""
    sys.path.insert(0, str(REPO))
    older = n // 5
    for i in range(older):
        one(root, ["--lr", str(LRS[i % 4]), "--optimizer", OPTIMIZERS[i // 4 % len(OPTIMIZERS)]], later=False)
    for i in range(n - older):
        lr, optimizer, seed = LRS[4 + i // 20 % 4], OPTIMIZERS[i // 4 % len(OPTIMIZERS)], i % 4
        one(
            root,
            ["--lr", str(lr), "--optimizer", optimizer, "--seed", str(seed), "--workers", str(1 + i % 3)],
            later=True,
        )


def instructions(command, env, before=None) -> int:
    """Instructions one run of ``command`` executes, counted by valgrind (whatever else the machine runs)."""
    if before:
        before()
    counted = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *command],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    return int(re.search(r"I\s+refs:\s+([\d,]+)", counted).group(1).replace(",", ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repo", type=Path, default=REPO, help="checkout whose exman is timed (default: this one)")
    ap.add_argument(
        "--valgrind",
        action="store_true",
        help="also count each command's instructions once under valgrind (slow; the same on a loaded machine)",
    )
    opts = ap.parse_args()
    repo = opts.repo.resolve()
    with scratch("report") as tmp:
        root = tmp / "exman"
        build(root, opts.runs)
        base, env = exman_command(), child_env(repo)
        (tmp / "naive.py").write_text(NAIVE)
        (tmp / "phases.py").write_text(PHASES)
        report = [*base, "--root", str(root), "report", "--out", str(tmp / "report.html")]

        def forget():
            with contextlib.suppress(FileNotFoundError):
                (root / STATS_CACHE).unlink()

        rows = {
            "naive (read + to_html)": Row(
                [sys.executable, str(tmp / "naive.py"), str(root), str(tmp / "naive.html")], env
            ),
            "exman ls": Row([*base, "--root", str(root), "ls"], env),
            "report, stats computed": Row(report, env, forget),
            "report, stats remembered": Row(report, env),
        }
        phases: dict = {"computed": [], "remembered": []}

        def time_phases():  # interleaved with the rows, each round
            for case in phases:
                if case == "computed":
                    forget()
                out = subprocess.run(
                    [sys.executable, str(tmp / "phases.py"), str(root), str(tmp / "phases.html"), case],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                phases[case].append(json.loads(out.strip().splitlines()[-1]))

        print(f"{opts.runs} runs, median of {opts.rounds} interleaved rounds, exman from {repo}")
        median = medians(rows, opts.rounds, each_round=time_phases)
        naive_wall, naive_cpu = median["naive (read + to_html)"]
        for label in ("report, stats computed", "report, stats remembered"):
            wall, cpu = median[label]
            print(f"{label} / naive: {wall / naive_wall:.2f}x wall, {cpu / naive_cpu:.2f}x cpu")
        print("CPU time of one report by phase (ms, median):")
        for case, rounds in phases.items():
            parts = [statistics.median(r[i] for r in rounds) * 1000 for i in range(len(PHASE_NAMES))]
            split = ", ".join(f"{name} {ms:.0f}" for name, ms in zip(PHASE_NAMES, parts) if ms >= 0.5)
            print(f"  stats {case}: {split}; total {sum(parts):.0f}")
        if opts.valgrind:
            print("instructions (valgrind cachegrind, one run each):")
            for label, row in rows.items():
                print(f"  {label:<26} {instructions(*row) / 1e9:6.2f} G")
        print("target: report under 1000 ms")


if __name__ == "__main__":
    main()
