"""Time ``Index.info()`` on roots of N runs: cold, first call, warm, again, after one new run.

    python benchmarks/bench_index.py [N ...] [--keep DIR] [--repeat 3]
    EXMAN_BENCH_BIG=1 python benchmarks/bench_index.py      # adds N = 100,000

Default N: 1,000 and 10,000. Each run has 20 params (ints, floats, strings, a
choice, bools, a list), 3 metrics logged 5 times. One template run is made by
``ExParser`` in this process; the N runs are its files copied with other
values, in the exact format exman writes (``params.yaml`` by the params_yaml
plugin's dumper, ``run.json`` with a matching ``params_stat``, ``metrics.jsonl``
lines, relative index links), because starting 100,000 real runs takes hours.

"cold" is ``Index(root, cache=False).info()``: every run's files are read and
parsed; the OS page cache is warm (dropping it needs root and hurts others).
"first" has no cache file yet (reads every run and writes the cache), "warm" is
a new ``Index`` in a process that has one on disk, "again" a repeated call on
the same ``Index`` object (answered from memory after checking the files),
"one new run" a new ``Index``'s call after one run was added (more than the
racy window before). Best of ``--repeat`` is printed for each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import exman  # noqa: E402
from exman_plugins.params_yaml import dumps  # noqa: E402


def template_parser(root):
    p = exman.ExParser(root=root)
    for i in range(1, 6):
        p.add_argument(f"--i{i}", type=int, default=i)
    for i in range(1, 6):
        p.add_argument(f"--f{i}", type=float, default=i / 10)
    for i in range(1, 4):
        p.add_argument(f"--s{i}", default=f"value{i}")
    p.add_argument("--opt", choices=["sgd", "adam", "rmsprop"], default="sgd")
    for i in range(1, 4):
        p.add_argument(f"--b{i}", type=bool, default=False)
    p.add_argument("--layers", type=int, nargs="+", default=[64, 64])
    p.add_argument("--seed", type=exman.optional(int), default=None)
    p.add_argument("--data", default="cifar10")
    return p


def generate(root: Path, n: int) -> None:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        args = template_parser(root).parse_args([])
        with args.safe_experiment as run:
            run.log(loss=1.0, acc=0.5, lr=0.1)
    tpl = json.loads((args.root / "run.json").read_text())
    shutil.rmtree(args.root)
    for link in (root / "index").iterdir():
        link.unlink()
    (root / ".exman" / "template.json").write_text(json.dumps(tpl))
    for number in range(1, n + 1):
        write_run(root, tpl, number)


def write_run(root: Path, tpl: dict, number: int) -> Path:
    """Run ``number``'s folder and index link, in the format exman writes."""
    opts = ["sgd", "adam", "rmsprop"]
    name = f"{number:06d}-2026-01-01-00-00-00"
    folder = root / "runs" / name
    folder.mkdir()
    params = dict(tpl["params"])
    params.update(
        i1=number,
        i2=number % 7,
        f1=number / 1000,
        f2=(number % 13) / 10,
        s1=f"v{number % 5}",
        opt=opts[number % 3],
        b1=bool(number % 2),
        layers=[64, number % 4 + 1],
        seed=number if number % 2 else None,
    )
    record = dict(params, root=f"runs/{name}", time="2026-01-01T00:00:00", id=number)
    (folder / "params.yaml").write_text(dumps(record))
    st = os.stat(folder / "params.yaml")
    meta = dict(
        tpl,
        id=number,
        name=name,
        params=params,
        extra={"root": f"runs/{name}", "time": "2026-01-01T00:00:00", "id": number},
        params_stat=[st.st_mtime_ns, st.st_size],
    )
    (folder / "run.json").write_text(json.dumps(meta, ensure_ascii=False, allow_nan=False))
    with open(folder / "metrics.jsonl", "w") as fh:
        for step in range(5):
            fh.write(
                json.dumps(
                    {
                        "step": step,
                        "time": 1767225600.0 + step,
                        "loss": 1 / (step + 1 + number % 10),
                        "acc": step / 10,
                        "lr": 0.1,
                    }
                )
                + "\n"
            )
    os.symlink(f"../runs/{name}/params.yaml", root / "index" / f"{name}.yaml")
    return folder


def after_new_run(root: Path, n: int, repeat: int) -> str:
    """A new run appears (written more than the racy window ago), then one info() in a new Index."""
    template = root / ".exman" / "template.json"
    if not template.exists():  # a root kept by an older version of this script: any run will do
        template = root / "runs" / "000001-2026-01-01-00-00-00" / "run.json"
    tpl = json.loads(template.read_text())
    runs = []

    times = []
    for k in range(repeat):
        runs.append(write_run(root, tpl, n + 1 + k))
        time.sleep(2.1)  # past the Index's racy window: the usual case, a run that ended a while ago
        start, cpu = time.perf_counter(), time.process_time()
        df = exman.Index(root).info()
        times.append((time.perf_counter() - start, time.process_time() - cpu))
        assert len(df) == n + 1 + k
    for folder in runs:  # back to N runs for the next invocation
        (root / "index" / (folder.name + ".yaml")).unlink()
        shutil.rmtree(folder)
    exman.Index(root).info()
    wall, cpu = min(times)
    return f"{wall:.3f} ({cpu:.3f})"


def best(fn, repeat: int) -> str:
    """Best wall time, and the CPU time of that call: on a shared machine the gap is other processes."""
    runs = []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - start, time.process_time() - cpu))
    wall, cpu = min(runs)
    return f"{wall:.3f} ({cpu:.3f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sizes", nargs="*", type=int)
    ap.add_argument("--keep", type=Path, help="generate roots here and keep them (reused when present)")
    ap.add_argument("--repeat", type=int, default=3)
    opts = ap.parse_args()
    sizes = opts.sizes or [1000, 10000] + ([100000] if os.environ.get("EXMAN_BENCH_BIG") else [])
    base = opts.keep or Path(tempfile.mkdtemp(prefix="exman-bench-index-"))
    import pandas  # noqa: F401  (imported once, outside the timings)

    print(
        f"seconds, best of {opts.repeat}: wall (cpu of this process); {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    print(f"{'N':>8} {'generate':>9} {'cold':>16} {'first':>16} {'warm':>16} {'again':>16} {'one new run':>16}")
    for n in sizes:
        root = base / f"n{n}" / "exman"
        gen = float("nan")
        if not (root / "index").is_dir() or sum(1 for _ in os.scandir(root / "index")) != n:
            shutil.rmtree(root.parent, ignore_errors=True)
            root.parent.mkdir(parents=True)
            t0 = time.perf_counter()
            generate(root, n)
            gen = time.perf_counter() - t0
            time.sleep(2.1)  # past the Index's racy window, or the warm call re-reads the newest runs
        df = exman.Index(root, cache=False).info()
        assert len(df) == n and len(df.attrs["params"]) == 20, (len(df), df.attrs["params"])
        cold = best(lambda: exman.Index(root, cache=False).info(), opts.repeat)

        def first():
            for cache in (root / ".exman").glob("index-*.pickle"):
                cache.unlink()
            exman.Index(root).info()

        build = best(first, opts.repeat)
        warm = best(lambda: exman.Index(root).info(), opts.repeat)
        same = exman.Index(root)
        same.info()
        again = best(same.info, opts.repeat)
        new = after_new_run(root, n, opts.repeat)
        print(f"{n:>8} {gen:>9.1f} {cold:>16} {build:>16} {warm:>16} {again:>16} {new:>16}", flush=True)
    if not opts.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
