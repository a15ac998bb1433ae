"""``--config`` gives an argument the text the command line would give it (M4).

YAML 1.1 types unquoted scalars by itself (``1.10`` -> 1.1, ``0123`` -> 83,
``yes`` -> True, a date, the key ``on`` -> True). The reference is the same
values typed on the command line: both runs must record the same params.
"""

from __future__ import annotations

import json

ARGS = """
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--version", type=str, default="x")
parser.add_argument("--code", default="x")
parser.add_argument("--flag", default="x")
parser.add_argument("--day", default="x")
parser.add_argument("--n", type=int, default=0)
parser.add_argument("--on", action="store_true")
parser.add_argument("--k", default=10)  # an int default without a type: restored as the int it was
parser.add_argument("--tags", nargs="+", default=["a"])
args = parser.parse_args()
"""


def _params(run) -> dict:
    return json.loads((run / "run.json").read_text())["params"]


def test_config_values_arrive_as_the_command_line_gives_them(script):
    script.path.write_text(ARGS)
    script.run(
        "--version",
        "1.10",
        "--code",
        "0123",
        "--flag",
        "yes",
        "--day",
        "2026-01-01",
        "--n",
        "0123",
        "--on",
        "--tags",
        "1.10",
        "yes",
        "q",
    )
    config = script.folder / "hand.yaml"
    config.write_text(
        "version: 1.10\ncode: 0123\nflag: yes\nday: 2026-01-01\nn: 0123\non: true\ntags: [1.10, yes, q]\n"
    )
    script.run("--config", config)
    first, second = sorted((script.root / "runs").iterdir())
    assert _params(second) == _params(first)
    assert _params(first)["version"] == "1.10" and _params(first)["n"] == 123
    # exman's own params.yaml restores itself exactly, as before
    script.run("--config", second / "params.yaml")
    third = sorted((script.root / "runs").iterdir())[-1]
    assert _params(third) == _params(first) and _params(third)["k"] == 10
