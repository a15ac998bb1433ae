"""Validators returning each kind of value, and one that raises.

``all`` tries every verdict in this process, catching the refusals; any other
first argument makes one uncaught call with that verdict."""
import sys

import exman
from _show import note, show

VERDICTS = {"true": True, "none": None, "false": False, "message": "lr is too large", "one": 1}

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--verdict", default="true")
parser.add_argument("--lr", type=float, default=0.1)


def check(params):
    if params.verdict == "raise":
        raise ValueError("cannot judge")
    return VERDICTS[params.verdict]


parser.register_validator(check, "refused: verdict={verdict} lr={lr}")

if sys.argv[1] == "all":
    for verdict in ["true", "none", "false", "message", "one", "raise"]:
        try:
            args = parser.parse_args(["--verdict", verdict])
        except exman.ArgumentError as exc:
            note(verdict, outcome="refused", error=type(exc).__name__, message=str(exc))
        except SystemExit as exc:
            note(verdict, outcome="exit", code=exc.code)
        else:
            note(verdict, outcome="accepted")
else:
    args = parser.parse_args(["--verdict", sys.argv[1]])
    show(args)
