"""The README's team recipe: runs marked by --user, whose value lives in local.cfg."""
import exman
from _show import show

parser = exman.ExParser(
    root=exman.simpleroot(__file__),
    automark=["user"],
    default_config_files=["local.cfg"],
)
parser.add_argument("--user")
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=1)

args = parser.parse_args()
show(args)
