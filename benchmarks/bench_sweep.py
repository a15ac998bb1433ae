"""Wall time of a 64-run sweep against the same commands run one after another,
and the per-run scheduling cost of the dask launcher over the local one.

    python benchmarks/bench_sweep.py [--runs 64] [--jobs 2] [--repeat 3] [--no-dask]

Prints figures; asserts nothing (the machine is shared, timings vary).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = """
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--x", type=int, default=0)
args = parser.parse_args()
with args.safe_experiment as run:
    run.log(y=args.x * 2)
"""


def exman_command() -> list[str]:
    exe = Path(sys.executable).parent / "exman"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "exman"]


def timed(argv, env, cwd) -> float:
    began = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=64)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds of serial vs local")
    ap.add_argument("--no-dask", action="store_true")
    opts = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="exman-bench-sweep-"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    try:
        script = work / "main.py"
        script.write_text(SCRIPT)
        n = opts.runs

        def serial_once(tag: str) -> float:
            env_serial = dict(env, EXMAN_RUN_ROOT=str(work / f"serial-{tag}"))
            began = time.perf_counter()
            for x in range(n):
                subprocess.run(
                    [sys.executable, str(script), "--x", str(x)],
                    env=env_serial,
                    cwd=work,
                    check=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            return time.perf_counter() - began

        def sweep(launcher: str, count: int, tag: str = "") -> float:
            target = work / f"{launcher}-{count}{tag}"
            return timed(
                [
                    *exman_command(),
                    "--root",
                    str(target),
                    "sweep",
                    "-q",
                    "--launcher",
                    launcher,
                    "--jobs",
                    str(opts.jobs),
                    "-p",
                    f"x=range:0:{count}",
                    "--",
                    sys.executable,
                    str(script),
                ],
                env,
                work,
            )

        # Interleaved and repeated: the machine is shared, so compare the best of each.
        serials, locals_ = [], []
        for r in range(opts.repeat):
            serials.append(serial_once(str(r)))
            locals_.append(sweep("local", n, f"-{r}"))
            print(
                f"  round {r + 1}: serial {serials[-1]:6.2f} s, local --jobs {opts.jobs} {locals_[-1]:6.2f} s "
                f"({locals_[-1] / serials[-1]:.2f} x)"
            )
        serial, local = min(serials), min(locals_)
        print(
            f"{n} runs serially (best of {opts.repeat}):            {serial:6.2f} s  ({serial / n * 1000:.0f} ms/run)"
        )
        print(
            f"{n} runs, local launcher, --jobs {opts.jobs} (best of {opts.repeat}): {local:6.2f} s  = "
            f"{local / serial:.2f} x serial (target <= 0.6)"
        )
        if opts.no_dask:
            return
        try:
            import distributed  # noqa: F401
        except ImportError:
            print("dask: distributed not installed (pip install 'exman[dask]'); skipped")
            return
        local1, dask1, daskn = sweep("local", 1), sweep("dask", 1), sweep("dask", n)
        per_run = ((daskn - dask1) - (local - local1)) / (n - 1)
        print(f"{n} runs, dask LocalCluster, --jobs {opts.jobs}: {daskn:6.2f} s  = {daskn / serial:.2f} x serial")
        print(f"dask fixed cost (cluster start/stop, 1-run sweep minus local): {dask1 - local1:5.2f} s")
        print(f"dask scheduling overhead per run over local:          {per_run * 1000:5.0f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
