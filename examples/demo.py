"""The whole exman loop in one command: record a grid of runs, then look at them.

    python examples/demo.py

Runs examples/train.py over learning rates x optimizers x seeds (plus one
learning rate that diverges on purpose and lands in fails/), then prints the
recorded runs as a table, as a notebook would see them with exman.Index.
"""
import itertools
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE / "exman"


def main():
    grid = list(itertools.product(["0.03", "0.3"], ["sgd", "momentum"], ["0", "1"]))
    grid.append(("100", "sgd", "0"))  # diverges: recorded, then moved to fails/
    for lr, optimizer, seed in grid:
        cmd = [sys.executable, str(HERE / "train.py"), "--lr", lr, "--optimizer", optimizer, "--seed", seed, "--epochs", "15"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        outcome = "ok" if proc.returncode == 0 else "failed (kept in fails/)"
        print(f"train.py --lr {lr:<5} --optimizer {optimizer:<8} --seed {seed}: {outcome}")

    import pandas as pd

    import exman

    index = exman.Index(ROOT)
    runs = index.info()
    columns = ["id", "status", *index.varying(runs), "loss", "acc"]
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(f"\n{len(runs)} runs recorded under {ROOT} (failed runs are in {ROOT / 'fails'}):")
        print(runs[columns].to_string(index=False))
        print("\nmean final accuracy by learning rate and optimizer (over seeds):")
        print(runs.groupby(["lr", "optimizer"], observed=True)["acc"].agg(["mean", "std", "count"]).round(3))
    print(f"\nNext: `exman --root {ROOT.relative_to(Path.cwd()) if ROOT.is_relative_to(Path.cwd()) else ROOT} ls`")


if __name__ == "__main__":
    main()
