"""How long ``exman report`` takes on 100 runs, as a whole process, against a naive page.

    python benchmarks/bench_report.py [--runs 100] [--rounds 7]

Builds a root as a project leaves it (the report test's messy root: lr x optimizer, an
argument added after a fifth of the runs, a volatile one, a logged step counter, 5 steps of
loss/acc/epoch per run), then times, as whole processes with warm bytecode:
  naive   a script that reads the same runs (``Index.info()``, ``Index.metrics()``) and writes
          ``info.to_html()``: the least any report page costs (Python, pandas, the read);
  ls      ``exman ls`` on the same root, for scale;
  report  ``exman report``.
Rounds are interleaved so machine noise hits all alike; medians of wall time and of CPU time
(user + system: less sensitive to other work on shared cores) are printed, with report/naive.
The issue's target is ``exman report`` under 1 s for 100 runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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


def timed(command, env) -> tuple[float, float]:
    """(wall, cpu) seconds of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=7)
    opts = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="exman-bench-report-"))
    root = tmp / "exman"
    try:
        build(root, opts.runs)
        exe = Path(sys.executable).parent / "exman"
        base = [str(exe)] if exe.exists() else [sys.executable, "-m", "exman"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as after any first run
        (tmp / "naive.py").write_text(NAIVE)
        rows = {
            "naive (read + to_html)": [sys.executable, str(tmp / "naive.py"), str(root), str(tmp / "naive.html")],
            "exman ls": [*base, "--root", str(root), "ls"],
            "exman report": [*base, "--root", str(root), "report", "--out", str(tmp / "report.html")],
        }
        for command in rows.values():  # warm: bytecode written, Index cache filled
            timed(command, env)
        times: dict = {label: [] for label in rows}
        for _ in range(opts.rounds):
            for label, command in rows.items():
                times[label].append(timed(command, env))
        print(f"{opts.runs} runs, median of {opts.rounds} interleaved rounds")
        median = {}
        for label, pairs in times.items():
            wall, cpu = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
            median[label] = (wall, cpu)
            print(f"{label:<24} wall {wall * 1000:6.0f} ms   cpu {cpu * 1000:6.0f} ms")
        (naive_wall, naive_cpu), (wall, cpu) = median["naive (read + to_html)"], median["exman report"]
        print(
            f"report / naive: {wall / naive_wall:.2f}x wall, {cpu / naive_cpu:.2f}x cpu   "
            f"(target: report under 1000 ms wall)"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
