"""How long ``Index.compare`` takes on 10,000 runs: 20 params (19 grid keys + seed), 5 seeds per cell.

    python benchmarks/bench_compare.py                # on a synthetic Index.info() table
    python benchmarks/bench_compare.py --root         # also on a real root of 10,000 run folders
    python benchmarks/bench_compare.py --root --keep DIR   # build the root in DIR once, reuse it after

The target (issue 14) is under 1 s once ``info()`` is warm. The root is the one
``bench_summary.py`` writes. Timed: ``compare(acc, between="p02", within="p01")``
(3 optimizers compared within 8 values of p01: 24 rows, the other 17 grid keys
pooled), and ``between="p02"`` alone (3 rows, 16,000-odd replicates a side).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_summary import real_index, synthetic_info, timed  # noqa: E402

CASES = ({"between": "p02", "within": "p01"}, {"between": "p02"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", action="store_true", help="also time Index.compare on a real root")
    ap.add_argument("--keep", metavar="DIR", help="build the root in DIR and keep it (default: a temp folder)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from exman.analysis.inference import compare

    df = synthetic_info()
    compare(df, "acc", "p02")  # first call pays scipy's and statsmodels' imports
    for case in CASES:
        med, best, table = timed(lambda: compare(df, "acc", **case))
        print(
            f"compare(info, {case}) synthetic: {len(df)} runs, {len(table)} rows: median {med:.3f} s, best {best:.3f} s"
        )
    if not args.root:
        return
    index = real_index(args.keep, "compare")
    index.info(include_failed=True)  # cold: builds the cache
    for case in CASES:
        med, best, table = timed(lambda: index.compare("acc", **case))
        print(
            f"Index.compare({case}) incl. a warm info(): median {med:.3f} s, best {best:.3f} s, "
            f"{len(table)} rows (target < 1 s)"
        )


if __name__ == "__main__":
    main()
