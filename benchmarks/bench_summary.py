"""How long ``summary`` takes on 10,000 runs: 20 params (19 grid keys + seed), 5 seeds per cell.

    python benchmarks/bench_summary.py            # on a synthetic Index.info() table
    python benchmarks/bench_summary.py --root     # also on a real root of 10,000 run folders

The target (issue 8) is under 0.5 s once ``info()`` is warm. The real-root
mode writes the run files in the documented format directly (ExParser would
take minutes for 10,000 runs), then times ``Index.info()`` cold and warm and
``Index.summary`` with the table cached.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RUNS, SEEDS, PARAMS = 10_000, 5, 20


def grid_params(n_cells: int, seed: int = 0) -> list[dict]:
    """One dict of 19 params per cell, every param varying, mixed types."""
    import random

    rng = random.Random(seed)
    cells = []
    for cell in range(n_cells):
        p = {}
        for k in range(PARAMS - 1):
            kind = k % 4
            if kind == 0:
                p[f"p{k:02d}"] = rng.choice([1e-4, 1e-3, 1e-2, 0.1, 1.0])
            elif kind == 1:
                p[f"p{k:02d}"] = rng.randrange(1, 9)
            elif kind == 2:
                p[f"p{k:02d}"] = rng.choice(["sgd", "adam", "rmsprop"])
            else:
                p[f"p{k:02d}"] = rng.random() < 0.5
        p["p00"] = cell  # makes every cell distinct
        cells.append(p)
    return cells


def synthetic_info():
    import numpy as np
    import pandas as pd

    cells = grid_params(RUNS // SEEDS)
    rows = []
    rng = np.random.default_rng(1)
    for i, cell in enumerate(c for c in cells for _ in range(SEEDS)):
        rows.append(
            {
                "id": i + 1,
                "status": "completed" if rng.random() > 0.01 else "failed",
                **cell,
                "seed": i % SEEDS,
                "acc": rng.random(),
                "loss": rng.random(),
            }
        )
    df = pd.DataFrame(rows)
    df.attrs["params"] = [c for c in df.columns if c.startswith("p")] + ["seed"]
    df.attrs["metrics"] = ["acc", "loss"]
    return df


def timed(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), result


def write_root(root: Path) -> None:
    """10,000 run folders with params.yaml, run.json and a short metrics.jsonl."""
    import yaml

    for folder in ("runs", "index", "marked", "tmp", "fails"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    schema_types = {int: "int", float: "float", str: "str", bool: "bool"}
    start = datetime.datetime(2026, 1, 1).astimezone()
    cells = grid_params(RUNS // SEEDS)
    for i in range(RUNS):
        rid = i + 1
        params = {**cells[i // SEEDS], "seed": i % SEEDS}
        t = start + datetime.timedelta(seconds=rid)
        name = f"{rid:06d}-{t:%Y-%m-%d-%H-%M-%S}"
        run = root / "runs" / name
        run.mkdir()
        record = {**params, "root": f"runs/{name}", "time": t.strftime("%Y-%m-%dT%H:%M:%S"), "id": rid}
        (run / "params.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
        st = os.stat(run / "params.yaml")
        meta = {
            "format": 1,
            "id": rid,
            "name": name,
            "status": "completed",
            "start": t.isoformat(),
            "end": (t + datetime.timedelta(seconds=3)).isoformat(),
            "duration": 3.0,
            "argv": ["train.py"],
            "cwd": "/",
            "host": "bench",
            "user": "bench",
            "pid": 1,
            "python": "3",
            "exman": "0.2.0",
            "sweep": None,
            "sweep_cell": None,
            "tmp": False,
            "params": params,
            "extra": {k: record[k] for k in ("root", "time", "id")},
            "schema": {
                k: {"type": schema_types[type(v)], "list": False, "nargs": None, "choices": None, "nullable": False}
                for k, v in params.items()
            },
            "params_file": "params.yaml",
            "params_stat": [st.st_mtime_ns, st.st_size],
        }
        (run / "run.json").write_text(json.dumps(meta))
        lines = [
            json.dumps({"step": s, "time": 0.0, "acc": (rid * 7 + s) % 100 / 100, "loss": s / 10}) for s in range(3)
        ]
        (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        os.symlink(f"../runs/{name}/params.yaml", root / "index" / f"{name}.yaml")


def real_index(keep: str | None, bench: str):
    """An ``Index`` of the benchmark root in ``keep`` (written there once) or in a temp folder."""
    from exman import Index

    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix=f"exman-bench-{bench}-"))
    root = folder / "exman"
    if not (root / "runs").is_dir():
        t = time.perf_counter()
        write_root(root)
        print(f"wrote {RUNS} runs in {time.perf_counter() - t:.1f} s under {root}")
    return Index(root)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", action="store_true", help="also time Index.summary on a real root")
    ap.add_argument("--keep", metavar="DIR", help="build the root in DIR and keep it (default: a temp folder)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from exman.analysis.summaries import summary

    df = synthetic_info()
    med, best, table = timed(lambda: summary(df, ["acc", "loss"]))
    print(
        f"summary(info) synthetic: {len(df)} runs, {len(table)} groups of {len(table.attrs['by'])} keys: "
        f"median {med:.3f} s, best {best:.3f} s (target < 0.5 s)"
    )
    if not args.root:
        return
    index = real_index(args.keep, "summary")
    t = time.perf_counter()
    info = index.info()
    print(f"Index.info() first call: {time.perf_counter() - t:.2f} s ({len(info)} runs)")
    med, best, _ = timed(lambda: index.info(), repeat=3)
    print(f"Index.info() warm: median {med:.3f} s")
    full = index.info(include_failed=True)
    med, best, _ = timed(lambda: summary(full, ["acc", "loss"]))
    print(f"summary(info) on that table: median {med:.3f} s, best {best:.3f} s")
    med, best, table = timed(lambda: index.summary(["acc", "loss"]))
    print(
        f"Index.summary() incl. a warm info(): median {med:.3f} s, best {best:.3f} s, {len(table)} groups "
        "(target < 0.5 s)"
    )


if __name__ == "__main__":
    main()
