"""A diverged run logs NaN or inf: every table keeps the metric a number (H1).

Real runs log ``float("nan")``, ``float("inf")`` and numpy's NaN beside finite
values; the Index, ``ls --sort``/``--where``, ``summary`` and ``Index.metrics``
must all treat the column as floats.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from exman import Index
from exman.index import meta_column

LOGS = """
import sys
import numpy as np
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--value", default="0.5")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
with args.safe_experiment as run:
    value = {"nan": float("nan"), "inf": float("inf"), "-inf": -float("inf"), "npnan": np.float32("nan")}.get(args.value)
    run.log(loss=float(args.value) if value is None else value, acc=0.5)
"""


@pytest.fixture
def diverged(script):
    script.path.write_text(LOGS)
    for i, loss in enumerate(["0.5", "nan", "0.25", "inf", "-inf", "npnan"]):
        script.run(f"--value={loss}", "--seed", i)
    return script


def test_nonfinite_metrics_stay_floats(diverged, exman_cmd):
    df = Index(diverged.root).info()
    assert df["loss"].dtype == np.float64
    values = df.sort_values(meta_column(df, "id"))["loss"].tolist()
    assert values[0] == 0.5 and values[2] == 0.25
    assert math.isnan(values[1]) and math.isnan(values[5])
    assert values[3] == math.inf and values[4] == -math.inf
    assert (df["loss"] < 1).sum() == 3  # 0.5, 0.25, -inf
    long = Index(diverged.root).metrics()
    assert long.loc[long["metric"] == "loss", "value"].dtype == np.float64

    proc = exman_cmd("--root", diverged.root, "ls", "--sort", "loss", "--format", "csv", "-c", "id,loss")
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()[1:]
    assert [line.split(",")[1] for line in lines][-4:] == ["-inf", "0.25", "0.5", "inf"]
    proc = exman_cmd("--root", diverged.root, "ls", "--where", "loss < 1", "--format", "csv", "-c", "id")
    assert sorted(proc.stdout.split()[1:]) == ["1", "3", "5"]


def test_summary_skips_nan_and_keeps_inf(diverged):
    import warnings

    df = Index(diverged.root).info()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = Index(diverged.root).summary("loss", by=[], agg=("mean", "count", "max"), df=df)
    row = out.iloc[0]
    assert row["loss_count"] == 4  # NaN is skipped, like pandas; the infinities count
    assert math.isnan(row["loss_mean"])  # inf + -inf
    assert row["loss_max"] == math.inf


def test_old_roots_with_text_nan_read_as_floats(script):
    """Roots written before the fix hold the text "nan"/"inf" in metrics.jsonl."""
    script.run()
    script.run()
    runs = sorted((script.root / "runs").iterdir())
    (runs[0] / "metrics.jsonl").write_text('{"step": 0, "time": 1.0, "loss": "nan", "acc": "inf"}\n')
    df = Index(script.root).info()
    assert df["loss"].dtype == np.float64 and df["acc"].dtype == np.float64
    assert math.isnan(df["loss"].iloc[0]) and df["acc"].iloc[0] == math.inf
