"""Argument and root spellings seen in public scripts that use exman.

The script sits in bin/ and puts its root beside that folder, spelled
``<dir of this file>/../exman``; here bin/ is a symlink (a tools folder linked
into the project), so the OS puts the root under the link's target. Also: a
description as the first positional, a required short option, a ``str``
argument with an int default (argparse leaves the default unconverted), a
pathlib.Path argument with a text default, ``type=bool`` flags, choices,
validators without a message, and a helper that builds one command string
from keyword arguments, as a notebook calls it."""
import os
import pathlib
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)

import exman  # noqa: E402
from _show import note, show  # noqa: E402

parser = exman.ExParser("Train a small detector", root=os.path.join(here, "..", "exman"))
parser.add_argument("--data_dir", type=pathlib.Path, default="./data/")
parser.add_argument("--epochs", "-e", type=int, default=30)
parser.add_argument("--lr", type=float, default=0.001)
parser.add_argument("--augment", type=bool, default=True)
parser.add_argument("-v", type=str, required=True)
parser.add_argument("-a", type=str, default=1)
parser.add_argument("--optimizer", type=str, choices=("adam", "sgd"), default="adam")
parser.register_validator(lambda p: p.epochs >= 1)


def from_keywords(**kwargs):
    line = ""
    for key, value in kwargs.items():
        line += f"-{key} {value} " if len(key) == 1 else f"--{key} {value} "
    return parser.parse_args(line)


if sys.argv[1:] == ["keywords"]:
    args = from_keywords(v=2, epochs=3, optimizer="sgd")
else:
    args = parser.parse_args()
show(args)
os.makedirs(os.path.join(args.root, "models"), exist_ok=True)
note("model folder", inside_root=os.path.isdir(os.path.join(str(args.root), "models")))
