"""A script written before exman had its own --name: it defines --name itself, with a default.

0.1.9 refuses the definition (argparse: conflicting option string); ours lets the
script own the name. Shape seen in public scripts that use exman."""
import exman
from _show import show

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--name", type=str, default="unnamed")
parser.add_argument("--critic", type=bool, default=False)
parser.add_argument("--steps", type=int, default=100)

args = parser.parse_args()
show(args)
with args.safe_experiment:
    print("steps", args.steps)
