"""A training script written the way the 0.1.9 README teaches: ExParser beside the script,
typed arguments, exman.optional, a volatile argument, and the work inside safe_experiment."""
import os

import exman
from _show import show

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
parser.add_argument("--augment", type=bool, default=True)
parser.add_argument("--layers", type=int, nargs="+", default=[8, 4])
parser.add_argument("--tag", default="plain")
parser.add_argument("--patience", type=exman.optional(int), default=None)
# Both set per job by a scheduler: a rerun must take them from its own environment.
parser.add_argument("--job-id", default=os.environ.get("JOB_ID"), volatile=True)
parser.add_argument("--slot", default=os.environ.get("SLOT"), volatile=True)
parser.add_argument("--outcome", choices=["ok", "crash", "interrupt"], default="ok")

if __name__ == "__main__":
    args = parser.parse_args()
    show(args)
    with args.safe_experiment:
        for epoch in range(args.epochs):
            print("epoch %d loss %.4f" % (epoch, args.lr / (epoch + 1)))
        if args.outcome == "crash":
            raise ValueError("loss diverged")
        if args.outcome == "interrupt":
            raise KeyboardInterrupt
