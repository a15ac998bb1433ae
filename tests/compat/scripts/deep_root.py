"""A root under folders that do not exist yet, like $SCRATCH/project/exman on first use."""
import os

import exman
from _show import show

here = os.path.dirname(os.path.abspath(__file__))
parser = exman.ExParser(root=os.path.join(here, "scratch", "project", "exman"))
parser.add_argument("--lr", type=float, default=0.1)

args = parser.parse_args()
show(args)
