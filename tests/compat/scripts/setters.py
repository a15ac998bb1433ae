"""A setter derives a value before the validator checks it."""
import exman
from _show import show

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--width", type=int, default=4)
parser.add_argument("--depth", type=int, default=3)
parser.register_setter(lambda p: setattr(p, "size", p.width * p.depth))
parser.register_validator(lambda p: p.size <= 100, "size {size} is too large")

args = parser.parse_args()
show(args)
