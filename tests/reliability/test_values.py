"""Values that tables used to lose: ints past 2**53 beside gaps, automark values starting with '.'."""

from __future__ import annotations

from exman import Index

BIG = """
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__), automark=["data"])
parser.add_argument("--data", default="d")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
with args.safe_experiment as run:
    run.log(loss=1.0)
"""


def test_big_ints_with_gaps_stay_exact(script):
    script.path.write_text(BIG)
    script.run()  # no --big yet: the column has a gap
    script.path.write_text(
        BIG.replace(
            'parser.add_argument("--seed"',
            'parser.add_argument("--big", type=int, default=0)\nparser.add_argument("--seed"',
        )
    )
    script.run("--big", str(2**60 + 1))
    script.run("--big", str(-(2**55) - 3))
    df = Index(script.root).info()
    values = df["big"].tolist()
    assert values[1] == 2**60 + 1 and values[2] == -(2**55) - 3
    assert values[0] != values[0]  # NaN for the run without it


def test_automark_value_starting_with_a_dot_is_listed(script):
    script.path.write_text(BIG)
    script.run("--data", "./data")
    script.run("--data", ".hidden")
    script.run("--data", "plain")
    script.run("--data", "two\nlines")  # a newline in a mark folder's name: no command could name it
    assert len(Index(script.root).info("data")) == 4
    assert len(Index(script.root).info("data/two_lines")) == 1
    assert len(Index(script.root).info("data/._data")) == 1
