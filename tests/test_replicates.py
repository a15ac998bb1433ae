"""Honest replicates: copies of a run count once, pooling is said, bands need two replicates, titles fit.

Each test here failed before replicates were counted by their key.
"""

from __future__ import annotations

import io
import math
import statistics
import subprocess
import sys

import pytest
from analysis_runs import LRS, MISSING, OPTIMIZERS, SEEDS, load_info, load_metrics, make_grid, score
from conftest import env_for_subprocess

stats = pytest.importorskip("scipy.stats")
pytest.importorskip("matplotlib")

EPOCHS = 4


@pytest.fixture(scope="module")
def twice(tmp_path_factory):
    """The grid recorded twice: the same deterministic script, the same seeds, run again."""
    folder = tmp_path_factory.mktemp("twice")
    root = make_grid(folder)
    proc = subprocess.run(
        [sys.executable, str(folder / "grid.py")], capture_output=True, text=True, env=env_for_subprocess(), cwd=folder
    )
    assert proc.returncode == 0, proc.stderr
    return root, load_info(root)


def accs(lr, opt, step=EPOCHS - 1):
    return [score(lr, opt, s, step) for s in SEEDS if (lr, opt, s) != MISSING]


def test_copies_of_a_replicate_count_once_in_summary(twice):
    from exman.analysis.summaries import summary

    root, df = twice
    assert len(df) == 2 * (len(LRS) * len(OPTIMIZERS) * len(SEEDS) - 1 + 1)
    with pytest.warns(UserWarning) as caught:
        table = summary(df, "acc")
    messages = [str(w.message) for w in caught]
    copies = [m for m in messages if "share a replicate" in m]
    assert len(copies) == 1 and copies[0].startswith("46 run(s) share a replicate with another run")
    assert "23 recorded 2 times" in copies[0] and "lr, optimizer, seed" in copies[0]
    assert table.attrs["copies"] == {2: 23}
    for row in table.itertuples(index=False):
        values = accs(row.lr, row.optimizer)
        n = len(values)
        half = stats.t.ppf(0.975, n - 1) * statistics.stdev(values) / math.sqrt(n)
        assert (row.runs, row.replicates, row.acc_count) == (2 * n, n, n)
        assert row.acc_ci_low == pytest.approx(statistics.fmean(values) - half, abs=1e-9)
        assert row.acc_ci_high == pytest.approx(statistics.fmean(values) + half, abs=1e-9)
        assert row.missing_replicates == ((row.lr, row.optimizer) == MISSING[:2])


def test_copies_count_once_in_compare_fit_and_curves(twice, tmp_path):
    from exman.analysis.inference import compare, fit
    from exman.analysis.plotting import metric_curves

    root, df = twice
    once = load_info(make_grid(tmp_path))
    options = dict(within="lr", warn=False)
    got, want = compare(df, "acc", "optimizer", **options), compare(once, "acc", "optimizer", **options)
    for col in ("n_a", "n_b", "paired", "diff", "p", "p_adj", "ci_low", "ci_high", "hedges_g"):
        assert list(got[col]) == pytest.approx(list(want[col]), nan_ok=True), col
    assert fit(df, "acc ~ C(optimizer) + np.log10(lr)", warn=False).model.nobs == len(once) - 1

    curves = metric_curves(df, load_metrics(root), "acc")
    for row in curves.itertuples(index=False):
        values = accs(row.lr, row.optimizer, row.step)
        assert (row.count, row.runs) == (len(values), 2 * len(values))
        assert row.mean == pytest.approx(statistics.fmean(values), abs=1e-12)


def frames(acc_by_run, steps_by_run):
    """A tiny info table and metrics history: runs given as (lr, seed) -> last acc / steps logged."""
    import pandas as pd

    info = pd.DataFrame(
        [
            {"id": i + 1, "status": "completed", "lr": lr, "seed": seed, "acc": acc}
            for i, ((lr, seed), acc) in enumerate(acc_by_run)
        ]
    )
    info.attrs.update(params=["lr", "seed"], metrics=["acc"])
    metrics = pd.DataFrame(
        [
            {"id": i + 1, "step": step, "time": 0.0, "metric": "acc", "value": acc + step}
            for i, ((_, _), acc) in enumerate(acc_by_run)
            for step in range(steps_by_run[i])
        ]
    )
    return info, metrics


def test_copies_that_differ_are_averaged_and_one_replicate_draws_no_band():
    from exman.analysis.plotting import metric_curves, plot_metric
    from exman.analysis.summaries import summary

    # lr 0.1: seed 0 recorded twice with different values (a non-deterministic script), seed 1 once.
    runs = [((0.1, 0), 0.5), ((0.1, 0), 0.7), ((0.1, 1), 0.9), ((1.0, 0), 0.2), ((1.0, 1), 0.4)]
    info, metrics = frames(runs, [5, 5, 3, 3, 3])
    with pytest.warns(UserWarning, match=r"2 run\(s\) share a replicate.*1 recorded 2 times"):
        table = summary(info, "acc")
    row = table[table.lr == 0.1].iloc[0]
    assert (row.runs, row.replicates, row.acc_count) == (3, 2, 2)
    assert row.acc_mean == pytest.approx(statistics.fmean([0.6, 0.9]))
    assert row.acc_std == pytest.approx(statistics.stdev([0.6, 0.9]))

    curves = metric_curves(info, metrics, "acc", by="lr")
    late = curves[(curves.lr == 0.1) & (curves.step >= 3)]
    # Only seed 0 reaches steps 3 and 4, twice: one replicate, so no interval.
    assert list(late["count"]) == [1, 1] and list(late.runs) == [2, 2]
    assert late.ci_low.isna().all()
    fig = plot_metric(info, metrics, "acc", by="lr", warn=False)
    band = fig.axes[0].collections[0]  # lr=0.1's band
    xs = [v[0] for path in band.get_paths() for v in path.vertices]
    assert max(xs) <= 2


def test_pooled_curves_say_so(twice):
    from exman.analysis.plotting import metric_curves, plot_metric

    root, df = twice
    metrics = load_metrics(root)
    curves = metric_curves(df, metrics, "acc", by="optimizer")
    assert curves.attrs["pooled"] == ["lr"] and set(curves.pooled) == {"lr"}
    row = curves[(curves.optimizer == "sgd") & (curves.step == 0)].iloc[0]
    assert (row["count"], row.runs) == (len(LRS) * len(SEEDS), 2 * len(LRS) * len(SEEDS))
    fig = plot_metric(df, metrics, "acc", by="optimizer", warn=False)
    title = fig._suptitle.get_text().replace("\n", " ")
    assert title == "mean ± 95% CI over seed; pooled over lr"


def title_box(fig):
    """Where the title lands once drawn by Agg (what notebooks' PNGs and savefig use)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return fig._suptitle.get_window_extent(canvas.get_renderer()), fig.bbox


def long_table():
    import pandas as pd

    rows = []
    for i in range(16):
        rows.append(
            {
                "id": i + 1,
                "status": "completed",
                "lr": [0.01, 0.1][i % 2],
                "weight_decay_coefficient": [0.0, 0.1][(i // 2) % 2],
                "label_smoothing_epsilon": [0.0, 0.2][(i // 4) % 2],
                "seed": i // 8,
                "acc": 0.1 * (i % 5),
            }
        )
    info = pd.DataFrame(rows)
    info.attrs.update(params=["lr", "weight_decay_coefficient", "label_smoothing_epsilon", "seed"], metrics=["acc"])
    metrics = pd.DataFrame(
        [
            {"id": r["id"], "step": s, "time": 0.0, "metric": "acc", "value": r["acc"] + s}
            for r in rows
            for s in range(3)
        ]
    )
    return info, metrics


@pytest.mark.parametrize("kind", ["plot", "plot_metric"])
def test_titles_are_never_cut(kind):
    from exman.analysis.plotting import plot, plot_metric

    info, metrics = long_table()
    if kind == "plot":
        fig = plot(info, "acc", x="lr", warn=False)
    else:
        fig = plot_metric(info, metrics, "acc", by="lr", warn=False)
    text = fig._suptitle.get_text().replace("\n", " ")
    assert text.endswith("pooled over weight_decay_coefficient, label_smoothing_epsilon")
    box, page = title_box(fig)
    assert box.x0 >= page.x0 and box.x1 <= page.x1 and box.y1 <= page.y1, (box, page)
    png = fig._repr_png_()  # what a notebook shows: the same drawing, saved
    assert png.startswith(b"\x89PNG")
    fig.savefig(io.BytesIO(), format="svg")  # what the report embeds
    box, page = title_box(fig)
    assert box.x0 >= page.x0 and box.x1 <= page.x1
