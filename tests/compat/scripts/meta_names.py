"""Script arguments whose names other tools use for run metadata."""
import exman
from _show import show

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--user", default="alice")
parser.add_argument("--host", default="gpu7")
parser.add_argument("--status", default="draft")
parser.add_argument("--start", type=int, default=0)
parser.add_argument("--end", type=int, default=10)
parser.add_argument("--duration", type=float, default=1.5)
parser.add_argument("--sweep", default="s1")
parser.add_argument("--sweep-cell", default="c1")
parser.add_argument("--commit", default="abc123")
parser.add_argument("--dirty", type=bool, default=False)

args = parser.parse_args()
show(args)
