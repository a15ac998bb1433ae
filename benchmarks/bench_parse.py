"""Cost of recording one run, as whole processes, against plain argparse and a floor.

    python benchmarks/bench_parse.py [--rounds 40] [--inprocess 10000] [--instructions 3]

Three scripts with the same 20 arguments (ints, floats, strings, bools, lists):
  argparse  parse and exit;
  floor     argparse + mkdir of the run folder + params.yaml (PyYAML's C dumper) + the index
            symlink: the least any recorder must do;
  floor+libs  the floor plus `import pluggy, configargparse`;
  exman     exman.ExParser(...).parse_args().
Rounds are interleaved (a, b, c, a, b, c, ...) so machine noise hits all three alike; medians are
printed with the ratios, of wall time and of the child's CPU time (user + system), which a loaded
machine inflates less. --instructions N counts the instructions each script executes (valgrind's
callgrind, median of N), which a shared machine does not move. Then --inprocess N starts N runs in
one process on one root and compares the mean cost of the last 100 with the first 100: recording
must not slow down as the root grows.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib.metadata import distributions
from pathlib import Path

ARGS = textwrap.dedent("""
    p.add_argument("--i1", type=int, default=1)
    p.add_argument("--i2", type=int, default=2)
    p.add_argument("--i3", type=int, default=3)
    p.add_argument("--i4", type=int, default=4)
    p.add_argument("--f1", type=float, default=0.1)
    p.add_argument("--f2", type=float, default=0.2)
    p.add_argument("--f3", type=float, default=0.3)
    p.add_argument("--f4", type=float, default=0.4)
    p.add_argument("--s1", default="adam")
    p.add_argument("--s2", default="resnet")
    p.add_argument("--s3", default="cifar10")
    p.add_argument("--s4", choices=["a", "b"], default="a")
    p.add_argument("--b1", type=bool, default=False)
    p.add_argument("--b2", type=bool, default=True)
    p.add_argument("--b3", action="store_true")
    p.add_argument("--b4", action="store_false")
    p.add_argument("--l1", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--l2", type=float, nargs="*", default=[0.5])
    p.add_argument("--l3", nargs="+", default=["x", "y"])
    p.add_argument("--l4", type=int, nargs=2, default=[3, 4])
""")

PLAIN = (
    "import argparse\np = argparse.ArgumentParser()\n" + ARGS.replace("type=bool", "type=str") + "a = p.parse_args()\n"
)

FLOOR = (
    "import argparse, datetime, os, yaml\np = argparse.ArgumentParser()\n"
    + ARGS.replace("type=bool", "type=str")
    + textwrap.dedent("""
    a = p.parse_args()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor")
    for d in ("runs", "index"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    n = len(os.listdir(os.path.join(root, "runs"))) + 1
    name = "%06d-%s" % (n, datetime.datetime.now().strftime("%Y-%m-%d-%H-%M-%S"))
    run = os.path.join(root, "runs", name)
    os.mkdir(run)
    with open(os.path.join(run, "params.yaml"), "w") as f:
        yaml.dump(vars(a), f, Dumper=yaml.CDumper, default_flow_style=False)
    os.symlink(os.path.join("..", "runs", name, "params.yaml"), os.path.join(root, "index", name + ".yaml"))
""")
)

# The floor plus importing the two libraries the design card mandates (pluggy pulls in
# inspect, configargparse pulls in ast/configparser/csv): what is left above this is exman's own.
FLOOR_LIBS = "import pluggy, configargparse\n" + FLOOR

EXMAN = "import exman\np = exman.ExParser(root=exman.simpleroot(__file__))\n" + ARGS + "a = p.parse_args()\n"


# Installed packages run from bytecode; without this a machine that sets
# PYTHONDONTWRITEBYTECODE would recompile exman's sources on every start.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ARGV = ["--i1", "7", "--f1", "0.01", "--b1", "yes"]


def time_process(script: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one whole process."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, str(script), *ARGV],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = status  # reaped here: keep Popen from waiting again
    if status:
        raise RuntimeError(f"{script.name} failed ({status})")
    return wall, usage.ru_utime + usage.ru_stime


def instructions(script: Path) -> int:
    """Instructions one whole process executes, counted by valgrind's callgrind."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, str(script), *ARGV],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        check=True,
    )
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1))


def whole_process(rounds: int, counts: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scripts = {}
        for name, source in (("argparse", PLAIN), ("floor", FLOOR), ("floor+libs", FLOOR_LIBS), ("exman", EXMAN)):
            scripts[name] = Path(tmp) / f"bench_{name}.py"  # not argparse.py: it would shadow the module
            scripts[name].write_text(source)
        for script in scripts.values():  # warm caches (bytecode, entry points)
            time_process(script)
        times: dict = {name: [] for name in scripts}
        for _ in range(rounds):
            for name, script in scripts.items():
                times[name].append(time_process(script))
        counted: dict = {name: [] for name in scripts}
        for _ in range(counts):
            for name, script in scripts.items():
                counted[name].append(instructions(script))
    if rounds:
        print(
            f"whole process, median of {rounds} interleaved rounds ({sum(1 for _ in distributions())} distributions "
            f"installed, load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):"
        )
        for label, index in (("wall", 0), ("cpu", 1)):
            _ratios(label, {name: statistics.median(t[index] for t in ts) * 1000 for name, ts in times.items()}, "ms")
    if counts:
        print(f"instructions, median of {counts} (callgrind):")
        _ratios("instructions", {name: statistics.median(c) / 1e6 for name, c in counted.items()}, "M")


def _ratios(label: str, med: dict, unit: str) -> None:
    print(f"  {label}: " + ", ".join(f"{name} {value:.1f} {unit}" for name, value in med.items()))
    print(
        f"    floor / argparse {med['floor'] / med['argparse']:.2f}x, exman / argparse "
        f"{med['exman'] / med['argparse']:.2f}x, exman / floor {med['exman'] / med['floor']:.2f}x (target <= 1.5x), "
        f"floor+libs / floor {med['floor+libs'] / med['floor']:.2f}x, "
        f"exman / floor+libs {med['exman'] / med['floor+libs']:.2f}x"
    )


def in_process(n: int) -> None:
    import contextlib
    import io

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import exman

    with tempfile.TemporaryDirectory() as tmp:
        p = exman.ExParser(root=Path(tmp) / "exman")
        exec(ARGS, {"p": p})
        durations = []
        sink = io.StringIO()
        for _ in range(n):
            start = time.perf_counter()
            with contextlib.redirect_stdout(sink):
                p.parse_args([])
            durations.append(time.perf_counter() - start)
            sink.seek(0)
            sink.truncate()
        first = statistics.mean(durations[:100])
        last = statistics.mean(durations[-100:])
        print(
            f"in process, {n} runs on one root: first 100 {first * 1000:.2f} ms/run, "
            f"last 100 {last * 1000:.2f} ms/run, ratio {last / first:.2f}x   (target <= 1.5x)"
        )


def entry_point_lookup() -> None:
    """The plugin lookup every start pays: a scan of dist-info folders, then a cache hit."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from exman import plugins

    dists = sum(1 for _ in distributions())
    start = time.perf_counter()
    for _ in range(20):
        plugins._scan(entry for entry, _ in plugins._path_key())
    scan = (time.perf_counter() - start) / 20
    plugins._entry_points()
    start = time.perf_counter()
    for _ in range(200):
        plugins._entry_points()
    cached = (time.perf_counter() - start) / 200
    print(
        f"entry-point lookup over {dists} installed distributions: full scan {scan * 1000:.2f} ms, "
        f"cached {cached * 1000:.3f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--inprocess", type=int, default=10000)
    ap.add_argument("--instructions", type=int, default=0, metavar="N", help="count instructions (valgrind), N times")
    opts = ap.parse_args()
    if opts.instructions and not shutil.which("valgrind"):
        ap.error("--instructions needs valgrind")
    entry_point_lookup()
    if opts.rounds or opts.instructions:
        whole_process(opts.rounds, opts.instructions)
    if opts.inprocess:
        in_process(opts.inprocess)


if __name__ == "__main__":
    main()
