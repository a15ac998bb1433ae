"""A script that leans on exman's own options being in the namespace, as real scripts do."""
import os

import exman
from _show import note, show

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--seed", type=int, default=0)

args = parser.parse_args()
show(args)
note("root in args", value="root" in args)
# A debug run may reuse its checkpoint folder; a real run must not.
checkpoints = os.path.join(str(args.root), "checkpoints")
os.makedirs(checkpoints, exist_ok=args.tmp)
note("own options", tmp=args.tmp, name=args.name, git_dirty=args.git_dirty, config_file=args.config_file)
