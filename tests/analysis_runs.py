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

GRID_SCRIPT = """
import math, sys
import exman

LRS = {lrs!r}
OPTIMIZERS = {optimizers!r}
SEEDS = {seeds!r}
MISSING = {missing!r}
FAILING = {failing!r}


def score(lr, optimizer, seed, epoch):
    # Peaks at lr=0.01, adam a bit better, a wobble that depends on the seed and the optimizer
    # (one that did not would make every paired difference the same: nothing to test).
    base = 0.9 - 0.1 * abs(math.log10(lr) + 2) + (0.03 if optimizer == "adam" else 0.0)
    return base - 0.2 / (epoch + 1) + 0.013 * ((seed * 7 + epoch * 3 + 2 * (optimizer == "adam")) % 5 - 2)


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
"""


def score(lr, optimizer, seed, epoch, epochs=4):
    """The same made-up metric as the script, for independent checks."""
    import math

    base = 0.9 - 0.1 * abs(math.log10(lr) + 2) + (0.03 if optimizer == "adam" else 0.0)
    return base - 0.2 / (epoch + 1) + 0.013 * ((seed * 7 + epoch * 3 + 2 * (optimizer == "adam")) % 5 - 2)


def make_grid(folder: Path) -> Path:
    """Record the grid under ``folder/exman``; return that root."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "grid.py"
    script.write_text(
        textwrap.dedent(
            GRID_SCRIPT.format(
                lrs=LRS,
                optimizers=OPTIMIZERS,
                seeds=SEEDS,
                missing=MISSING,
                failing=FAILING,
            )
        )
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env_for_subprocess(), cwd=folder
    )
    assert proc.returncode == 0, proc.stderr
    return folder / "exman"


def load_info(root: Path):
    """``Index(root).info()`` with failed runs, the table the analysis works on."""
    import exman

    return exman.Index(root).info(include_failed=True)


def load_metrics(root: Path):
    import exman

    return exman.Index(root).metrics()


MESSY_SCRIPT = """
import sys
import exman

LRS = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "a-rather-long-optimizer-name")


def one(argv, later):
    parser = exman.ExParser(root=exman.simpleroot(__file__))
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--seed", type=int, default=0)
    if later:  # the project grew: an argument added halfway, and one that never changes a result
        parser.add_argument("--width", type=int, default=128)
        parser.add_argument("--workers", type=int, default=1, volatile=True)
    args = parser.parse_args(argv)
    with args.safe_experiment as run:
        for epoch in range(5):
            acc = 0.5 + 0.08 * epoch + 0.01 * args.seed - 0.02 * OPTIMIZERS.index(args.optimizer)
            run.log(epoch=epoch, loss=1.0 - acc, acc=acc)


n = 0
for lr in LRS[:4]:  # the older runs: no --width, no --workers
    for optimizer in OPTIMIZERS:
        one(["--lr", str(lr), "--optimizer", optimizer], later=False)
for lr in LRS[4:]:
    for optimizer in OPTIMIZERS:
        for seed in range(4):
            n += 1
            one(["--lr", str(lr), "--optimizer", optimizer, "--seed", str(seed), "--workers", str(1 + n % 3)], later=True)
"""


def make_messy(folder: Path) -> Path:
    """A root as a real project leaves it: 100 runs in 40 groups (lr x optimizer, and
    whether --width existed yet), an argument added after 20 runs, a volatile
    argument, a logged step counter (``epoch``) next to ``loss`` and ``acc``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "messy.py"
    script.write_text(textwrap.dedent(MESSY_SCRIPT))
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env_for_subprocess(), cwd=folder
    )
    assert proc.returncode == 0, proc.stderr
    return folder / "exman"


VALUES_SCRIPT = """
import json, sys
import exman

for params, value in json.loads(sys.argv[1]):
    parser = exman.ExParser(root=exman.simpleroot(__file__))
    for key, default in params.items():
        parser.add_argument("--" + key, type=type(default), default=default)
    args = parser.parse_args([f"--{k}={v}" for k, v in params.items()])
    with args.safe_experiment as run:
        for v in value if isinstance(value, list) else [] if value is None else [value]:
            run.log(y=v)
"""


def make_values(folder: Path, runs) -> Path:
    """Record one run per ``(params, y)`` with ``ExParser`` in one subprocess; return the root.

    ``params`` is a dict of str/int/float arguments; ``y`` is logged as the metric ``y``
    (None: the run logs nothing, so its ``y`` is missing; a list: one value a step)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "values.py"
    script.write_text(textwrap.dedent(VALUES_SCRIPT))
    proc = subprocess.run(
        [sys.executable, str(script), json.dumps([[dict(p), y] for p, y in runs])],
        capture_output=True,
        text=True,
        env=env_for_subprocess(),
        cwd=folder,
    )
    assert proc.returncode == 0, proc.stderr
    return folder / "exman"
