"""What the whole-process benchmarks share (bench_cli.py, bench_report.py): a scratch folder for
the root they build, the ``exman`` command with a checkout first on the path, and timing commands
as whole processes in interleaved rounds, wall and CPU time (user + system of the child, which
other work on shared cores inflates less), medians printed."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def scratch(name: str):
    """A temporary folder, removed at the end whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix=f"exman-bench-{name}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def exman_command() -> list:
    """The installed ``exman`` console script, or ``python -m exman`` without one."""
    script = Path(sys.executable).parent / "exman"
    return [str(script)] if script.exists() else [sys.executable, "-m", "exman"]


def child_env(repo: Path = REPO, **extra) -> dict:
    """This environment with ``repo`` (this checkout) first on PYTHONPATH, plus ``extra``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as after any first run
    env.update(extra)
    return env


class Row(NamedTuple):
    """A command to time, its environment, and what to do before each run of it (untimed)."""

    command: list
    env: dict
    before: Callable[[], None] | None = None


def timed(command, env, before=None) -> tuple:
    """(wall, cpu) seconds of one run of ``command``, its output discarded (it must succeed);
    ``before()`` runs first, untimed."""
    if before:
        before()
    start_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - start_usage.ru_utime) + (after.ru_stime - start_usage.ru_stime)


def medians(rows: dict, rounds: int, each_round: Callable[[], None] | None = None) -> dict:
    """``rows``: label -> :class:`Row`. Each runs once to warm up (bytecode written, caches
    filled), then ``rounds`` times, interleaved so machine noise hits all alike; ``each_round()``
    ends every round (work timed its own way, interleaved too). Prints and returns
    label -> (median wall, median cpu) in seconds."""
    for row in rows.values():
        timed(*row)
    times: dict = {label: [] for label in rows}
    for _ in range(rounds):
        for label, row in rows.items():
            times[label].append(timed(*row))
        if each_round:
            each_round()
    width = max(len(label) for label in rows)
    found = {}
    for label, pairs in times.items():
        wall, cpu = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        found[label] = (wall, cpu)
        print(f"{label:<{width}}  wall {wall * 1000:6.0f} ms   cpu {cpu * 1000:6.0f} ms")
    return found
