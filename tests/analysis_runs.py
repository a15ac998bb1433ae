"""A small grid of real runs for the analysis, report and notebook tests.

One subprocess records every run through ``ExParser``: lr x optimizer x seed,
one grid cell missing a seed, one extra run that fails. The metrics are made
up but deterministic, so the tests can recompute every number themselves.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import env_for_subprocess

LRS = (0.001, 0.01, 0.1, 1.0)
OPTIMIZERS = ("sgd", "adam")
SEEDS = (0, 1, 2)
MISSING = (1.0, "adam", 2)  # this replicate is never run
FAILING = (0.1, "sgd", 3)  # an extra replicate that raises (the script fails on seed 3)

GRID_SCRIPT = '''
import math, sys
import exman

LRS = {lrs!r}
OPTIMIZERS = {optimizers!r}
SEEDS = {seeds!r}
MISSING = {missing!r}
FAILING = {failing!r}


def score(lr, optimizer, seed, epoch):
    # Peaks at lr=0.01, adam a bit better, a seed-dependent wobble.
    base = 0.9 - 0.1 * abs(math.log10(lr) + 2) + (0.03 if optimizer == "adam" else 0.0)
    return base - 0.2 / (epoch + 1) + 0.013 * ((seed * 7 + epoch * 3) % 5 - 2)


def one(argv):
    parser = exman.ExParser(root=exman.simpleroot(__file__))
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    args = parser.parse_args(argv)
    with args.safe_experiment as run:
        for epoch in range(args.epochs):
            acc = score(args.lr, args.optimizer, args.seed, epoch)
            run.log(loss=1.0 - acc, acc=acc)
        if args.seed == 3:
            raise RuntimeError("seed 3 diverges, on purpose")


for lr in LRS:
    for optimizer in OPTIMIZERS:
        for seed in SEEDS:
            if (lr, optimizer, seed) != MISSING:
                one(["--lr", str(lr), "--optimizer", optimizer, "--seed", str(seed)])
lr, optimizer, seed = FAILING
try:
    one(["--lr", str(lr), "--optimizer", optimizer, "--seed", str(seed)])
except RuntimeError:
    pass
'''


def score(lr, optimizer, seed, epoch, epochs=4):
    """The same made-up metric as the script, for independent checks."""
    import math

    base = 0.9 - 0.1 * abs(math.log10(lr) + 2) + (0.03 if optimizer == "adam" else 0.0)
    return base - 0.2 / (epoch + 1) + 0.013 * ((seed * 7 + epoch * 3) % 5 - 2)


def make_grid(folder: Path) -> Path:
    """Record the grid under ``folder/exman``; return that root."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "grid.py"
    script.write_text(textwrap.dedent(GRID_SCRIPT.format(
        lrs=LRS, optimizers=OPTIMIZERS, seeds=SEEDS, missing=MISSING, failing=FAILING,
    )))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env_for_subprocess(), cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return folder / "exman"


def load_info(root: Path):
    """``Index(root).info()`` with failed runs, the table the analysis works on."""
    import exman

    return exman.Index(root).info(include_failed=True)


def load_metrics(root: Path):
    import exman

    return exman.Index(root).metrics()


# TEMPORARY: a stand-in for Index.info()/metrics() until issue 4 lands on main.
def _fallback_info(root: Path):
    import json

    import pandas as pd

    rows, params, metrics = [], [], []
    for folder in ("runs", "fails"):
        for run in sorted((root / folder).iterdir()):
            meta = json.loads((run / "run.json").read_text())
            row = {"id": meta["id"], "name": meta["name"], "root": run, "time": pd.Timestamp(meta["extra"]["time"]),
                   "status": meta["status"], "duration": meta["duration"], "sweep": meta["sweep"],
                   "sweep_cell": meta["sweep_cell"], "host": meta["host"], "user": meta["user"]}
            for k, v in meta["params"].items():
                row[k] = v
                if k not in params:
                    params.append(k)
            last = {}
            mfile = run / "metrics.jsonl"
            if mfile.exists():
                for line in mfile.read_text().splitlines():
                    last.update({k: v for k, v in json.loads(line).items() if k not in ("step", "time")})
            for k, v in last.items():
                row[k] = v
                if k not in metrics:
                    metrics.append(k)
            rows.append(row)
    df = pd.DataFrame(rows).sort_values("id").reset_index(drop=True)
    df.attrs["params"] = params
    df.attrs["metrics"] = metrics
    return df


def _fallback_metrics(root: Path):
    import json

    import pandas as pd

    rows = []
    for folder in ("runs", "fails"):
        for run in sorted((root / folder).iterdir()):
            rid = json.loads((run / "run.json").read_text())["id"]
            mfile = run / "metrics.jsonl"
            if mfile.exists():
                for line in mfile.read_text().splitlines():
                    rec = json.loads(line)
                    for k, v in rec.items():
                        if k not in ("step", "time"):
                            rows.append({"id": rid, "step": rec["step"], "time": rec["time"], "metric": k, "value": v})
    return pd.DataFrame(rows)


try:
    import exman.index  # noqa: F401
except ImportError:
    def load_info(root: Path):  # noqa: F811
        return _fallback_info(root)

    def load_metrics(root: Path):  # noqa: F811
        return _fallback_metrics(root)
