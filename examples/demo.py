"""The whole exman loop in one command: record a grid of runs, then look at them.

    python examples/demo.py

Sweeps examples/train.py over learning rates x optimizers x 3 seeds on two
workers, adds one learning rate that diverges on purpose (it lands in fails/),
then shows the runs as a notebook sees them: the table from exman.Index, the
mean accuracy over seeds with 95% confidence intervals, whether the optimizers
really differ (Index.compare), which parameters explain the loss (Index.fit),
and a plot.
"""

import sys
from pathlib import Path

import exman

HERE = Path(__file__).resolve().parent
ROOT = HERE / "exman"


def main():
    train = [sys.executable, str(HERE / "train.py"), "--epochs", "15"]
    grid = {"lr": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0], "optimizer": ["sgd", "momentum"]}
    print(f"sweep: {len(grid['lr']) * len(grid['optimizer']) * 3} runs of train.py on 2 workers")
    exman.sweep(train, grid, repeat=3, jobs=2, root=ROOT, quiet=True)
    print("one more run with --lr 100, which diverges on purpose:")
    failed = exman.sweep(train, {"lr": [100]}, root=ROOT, quiet=True)
    print(f"  failed as expected: {len(failed.failures)} run set aside in {ROOT / 'fails'}\n")

    import pandas as pd

    index = exman.Index(ROOT)
    runs = index.info()
    with pd.option_context("display.width", 120, "display.max_columns", 20, "display.max_rows", 12):
        print(f"{len(runs)} runs recorded under {ROOT}:")
        print(runs[["id", "status", *index.varying(runs), "loss", "acc"]])
        print("\naccuracy over seeds, per learning rate and optimizer (Index.summary):")
        summary = index.summary("acc", df=runs)
        print(summary[["lr", "optimizer", "acc_mean", "acc_std", "acc_count", "acc_ci_low", "acc_ci_high"]].round(3))
        print("\nis the loss of momentum really lower than sgd's, at each learning rate? (Index.compare)")
        compare = index.compare("loss", "optimizer", within="lr", df=runs)
        print(compare[["lr", "a", "b", "diff", "ci_low", "ci_high", "test", "p_adj", "hedges_g"]].round(4))
        print("\nwhich parameters explain the loss? (Index.fit: type-II ANOVA)")
        print(index.fit("loss ~ C(optimizer) * np.log10(lr)", df=runs).anova.round(4))
    try:
        figure = index.plot("loss", x="lr", hue="optimizer", df=runs)
    except ImportError as exc:
        print(f"\n(no plot: {exc})")
    else:
        figure.savefig(ROOT / "demo-plot.png", dpi=100)
        print(f"\nplot of loss ~ lr by optimizer: {ROOT / 'demo-plot.png'}")
    print(f"\nNext: exman --root {ROOT} ls   (or open examples/analysis.ipynb)")


if __name__ == "__main__":
    main()
