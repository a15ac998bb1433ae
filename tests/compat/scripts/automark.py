"""automark with an argument and a constant level, as in the 0.1.9 README."""
import exman
from _show import show

parser = exman.ExParser(root=exman.simpleroot(__file__), automark=["arg1", "constant"])
parser.add_argument("--arg1", default="a")
parser.add_argument("--seed", type=int, default=0)

args = parser.parse_args()
show(args)
