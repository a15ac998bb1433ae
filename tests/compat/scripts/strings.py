"""parse_args called with one string, as notebooks and quick scripts do, or with a list.

The first command-line argument only picks which call this run makes."""
import sys

import exman
from _show import show

CALLS = {
    "long": "--lr 0.5 --epochs 3",
    "short": "-v 3 --epochs 2",
    "list": ["--lr", "0.5", "--epochs", "3"],
    "empty": [],
}

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("-v", default="0")

args = parser.parse_args(CALLS[sys.argv[1]])
show(args)
