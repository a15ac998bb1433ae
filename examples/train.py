"""A small training script recorded by exman: logistic regression on synthetic data.

    python examples/train.py --lr 0.1 --epochs 20 --seed 1
    python examples/train.py --config examples/exman/index/<run>.yaml --lr 0.3   # rerun with an override

Runs in well under a second on a CPU. A very large learning rate (say 100) diverges on
purpose, so a grid can show how exman sets a failed run aside.
"""

import numpy as np

import exman

parser = exman.ExParser(root=exman.simpleroot(__file__), automark=["optimizer"])
parser.add_argument("--lr", type=float, default=0.1, help="learning rate")
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--optimizer", choices=["sgd", "momentum"], default="sgd")
parser.add_argument("--l2", type=exman.optional(float), default=None, help="weight decay, or none")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--samples", type=int, default=2000)
parser.register_validator(lambda a: a.lr > 0, "--lr must be positive, got {lr}")


def make_data(n, rng):
    x = rng.normal(size=(n, 10))
    w = np.linspace(-1, 1, 10)
    y = (x @ w + 0.5 * rng.normal(size=n) > 0).astype(float)
    return x, y


def main(args, run):
    rng = np.random.default_rng(args.seed)
    x, y = make_data(args.samples, rng)
    split = int(0.8 * len(y))
    w = np.zeros(x.shape[1])
    velocity = np.zeros_like(w)
    for epoch in range(args.epochs):
        order = rng.permutation(split)
        for start in range(0, split, args.batch_size):
            idx = order[start : start + args.batch_size]
            p = 1 / (1 + np.exp(-x[idx] @ w))
            grad = x[idx].T @ (p - y[idx]) / len(idx) + (args.l2 or 0.0) * w
            velocity = 0.9 * velocity + grad if args.optimizer == "momentum" else grad
            w -= args.lr * velocity
        logits = np.clip(x[split:] @ w, -500, 500)
        p = 1 / (1 + np.exp(-logits))
        loss = float(-np.mean(y[split:] * np.log(p + 1e-12) + (1 - y[split:]) * np.log(1 - p + 1e-12)))
        acc = float(np.mean((p > 0.5) == y[split:]))
        run.log(loss=loss, acc=acc)
        if not np.isfinite(w).all() or loss > 1.0:  # worse than guessing: diverged
            raise FloatingPointError(f"training diverged at epoch {epoch} (loss {loss:.3g})")
    np.save(args.root / "weights.npy", w)
    print(f"final loss {loss:.4f} acc {acc:.3f}")


if __name__ == "__main__":
    args = parser.parse_args()
    with args.safe_experiment as run:
        main(args, run)
