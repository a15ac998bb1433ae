"""A differential fuzz of the Index cache: after every random change to a root, the cached
answer of ``Index.info()`` equals a fresh read (``cache=False``). Heavy: 450 steps."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import warnings

import pandas as pd
import pytest

import exman
from exman import Index

from .tools import SLOW, report


def _new_run(root, rng, fail=False):
    parser = exman.ExParser(root=root, automark=["opt"])
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--opt", default="sgd")
    parser.add_argument("--seed", type=int, default=0)
    argv = [
        "--lr",
        str(rng.choice([0.1, 0.01, 0.001])),
        "--opt",
        rng.choice(["sgd", "adam"]),
        "--seed",
        str(rng.randrange(3)),
    ]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        args = parser.parse_args(argv)
        try:
            with args.safe_experiment as run:
                for _ in range(rng.randrange(3)):
                    run.log(loss=rng.random(), acc=rng.choice([0.5, float("nan"), 1.0]))
                if fail:
                    raise RuntimeError("failing on purpose")
        except RuntimeError:
            pass


def _runs(root):
    return [p for place in ("runs", "fails") for p in sorted((root / place).iterdir())]


def _step(root, rng) -> str:
    runs = _runs(root)
    # (A run that ended is never rewritten by exman, and the Index relies on that: no op edits an ending.)
    op = rng.choice(["new", "new", "fail", "unindex", "remove", "append", "edit"] if runs else ["new"])
    run = rng.choice(runs) if runs else None
    if op == "new":
        _new_run(root, rng)
    elif op == "fail":
        _new_run(root, rng, fail=True)
    elif op == "unindex":
        link = root / "index" / f"{run.name}.yaml"
        if os.path.lexists(link):
            os.unlink(link)
    elif op == "remove":
        link = root / "index" / f"{run.name}.yaml"
        if os.path.lexists(link):
            os.unlink(link)
        shutil.rmtree(run)
    elif op == "append":
        with open(run / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps({"step": 99, "time": 1.0, "loss": rng.random()}) + "\n")
    elif op == "edit":
        text = (run / "params.yaml").read_text()
        (run / "params.yaml").write_text(text.replace("lr: ", "lr: 1") if "lr: " in text else text + "\n")
    return op


@pytest.mark.timeout(1800)
def test_cached_index_equals_a_fresh_read(tmp_path):
    steps = 450 if SLOW else 40
    rng = random.Random(20261130)
    root = tmp_path / "exman"
    _new_run(root, rng)
    mismatches = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(steps):
            op = _step(root, rng)
            for failed in (False, True):
                cached = Index(root).info(include_failed=failed)
                fresh = Index(root, cache=False).info(include_failed=failed)
                try:
                    pd.testing.assert_frame_equal(cached, fresh)
                except AssertionError as exc:
                    mismatches += 1
                    raise AssertionError(f"step {i} ({op}), include_failed={failed}: {exc}") from None
            if os.path.isdir(root / "marked" / "opt"):
                pd.testing.assert_frame_equal(Index(root).info("opt"), Index(root, cache=False).info("opt"))
    report(f"Index cache differential fuzz: {steps} steps, {mismatches} mismatches")
