"""summary / plot / plot_metric on real runs, every number recomputed here."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys

import pytest
from analysis_runs import FAILING, LRS, MISSING, OPTIMIZERS, SEEDS, load_info, load_metrics, make_grid, score
from conftest import env_for_subprocess

scipy_stats = pytest.importorskip("scipy.stats")

EPOCHS = 4


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    root = make_grid(tmp_path_factory.mktemp("grid"))
    return root, load_info(root)


def seeds_of(lr, optimizer):
    return [s for s in SEEDS if (lr, optimizer, s) != MISSING]


def expected(values, level=0.95):
    """mean, std, count, CI from first principles and scipy's t quantile."""
    n = len(values)
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if n > 1 else math.nan
    half = scipy_stats.t.ppf((1 + level) / 2, n - 1) * std / math.sqrt(n) if n > 1 else math.nan
    return mean, std, n, mean - half, mean + half


def test_grid_is_what_the_tests_assume(grid):
    _, df = grid
    done = df[df.status == "completed"]
    assert len(done) == len(LRS) * len(OPTIMIZERS) * len(SEEDS) - 1
    assert df.status.value_counts().to_dict() == {"completed": len(done), "failed": 1}
    assert {"lr", "optimizer", "seed", "epochs"} <= set(df.attrs["params"])
    assert {"acc", "loss"} <= set(df.attrs["metrics"])


def test_summary_numbers(grid):
    from exman.analysis.summaries import summary

    _, df = grid
    with pytest.warns(UserWarning, match=r"1 run\(s\) left out by status \(1 failed\)") as caught:
        table = summary(df, ["acc", "loss"])
    assert caught[0].filename == __file__  # points at the user's line
    assert table.attrs["by"] == ["lr", "optimizer"]
    assert table.attrs["over"] == ["seed"]
    assert table.attrs["excluded"] == {"failed": 1}
    assert len(table) == len(LRS) * len(OPTIMIZERS)
    for row in table.itertuples(index=False):
        seeds = seeds_of(row.lr, row.optimizer)
        accs = [score(row.lr, row.optimizer, s, EPOCHS - 1) for s in seeds]
        mean, std, n, low, high = expected(accs)
        assert row.runs == n
        assert row.acc_count == n
        assert row.acc_mean == pytest.approx(mean, abs=1e-12)
        assert row.acc_std == pytest.approx(std, abs=1e-12)
        assert row.acc_ci_low == pytest.approx(low, abs=1e-9)
        assert row.acc_ci_high == pytest.approx(high, abs=1e-9)
        losses = [1.0 - a for a in accs]
        assert row.loss_mean == pytest.approx(statistics.fmean(losses), abs=1e-12)
        assert row.missing_replicates == ((row.lr, row.optimizer) == MISSING[:2])
        assert row.excluded == (1 if (row.lr, row.optimizer) == FAILING[:2] else 0)


def test_summary_include_all_counts_the_failed_run(grid):
    from exman.analysis.summaries import summary

    _, df = grid
    table = summary(df, "acc", include="all")
    assert table.attrs["excluded"] == {}
    lr, opt, bad_seed = FAILING
    row = table[(table.lr == lr) & (table.optimizer == opt)].iloc[0]
    accs = [score(lr, opt, s, EPOCHS - 1) for s in [*SEEDS, bad_seed]]
    mean, std, n, low, high = expected(accs)
    assert (row.runs, row.acc_count) == (n, n)
    assert row.acc_mean == pytest.approx(mean, abs=1e-12)
    assert row.acc_ci_high == pytest.approx(high, abs=1e-9)
    # Now that group is the largest: every other one lacks a replicate.
    assert table.missing_replicates.sum() == len(table) - 1


def test_summary_by_over_agg_and_level(grid):
    from exman.analysis.summaries import summary

    _, df = grid
    table = summary(df, "acc", by="optimizer", agg=("mean", "median", "min", "max"), ci=0.9, warn=False)
    assert list(table.optimizer) == list(OPTIMIZERS)
    for row in table.itertuples(index=False):
        accs = [score(lr, row.optimizer, s, EPOCHS - 1) for lr in LRS for s in seeds_of(lr, row.optimizer)]
        mean, _, n, low, high = expected(accs, level=0.9)
        assert row.runs == n
        assert row.acc_median == pytest.approx(statistics.median(accs), abs=1e-12)
        assert (row.acc_min, row.acc_max) == (pytest.approx(min(accs)), pytest.approx(max(accs)))
        assert row.acc_ci_low == pytest.approx(low, abs=1e-9)
        assert row.acc_ci_high == pytest.approx(high, abs=1e-9)
    assert "acc_std" not in table.columns  # only what was asked, plus the CI

    # No replicate key: each run is its own group, and one value has no interval.
    single = summary(df, "acc", over=None, warn=False)
    assert single.attrs["by"] == ["lr", "seed", "optimizer"]
    done = single[single.runs > 0]
    assert (done.acc_count == 1).all() and done.acc_ci_low.isna().all()


def test_summary_without_varying_params_is_one_row(grid):
    from exman.analysis.summaries import summary

    _, df = grid
    cell = df[(df.lr == 0.01) & (df.optimizer == "adam")]
    table = summary(cell, "acc")
    assert len(table) == 1 and table.attrs["by"] == []
    accs = [score(0.01, "adam", s, EPOCHS - 1) for s in SEEDS]
    assert table.acc_mean[0] == pytest.approx(statistics.fmean(accs))
    assert not table.missing_replicates[0]


def test_summary_bad_input_says_what_exists(grid):
    from exman.analysis.summaries import summary

    _, df = grid
    with pytest.raises(KeyError, match="metrics are: .*acc"):
        summary(df, "accuracy")
    with pytest.raises(KeyError, match="no column"):
        summary(df, "acc", by="momentum")
    with pytest.raises(TypeError, match="non-numeric"):
        summary(df, "optimizer", by="lr")


def test_plot_draws_the_summary(grid):
    from exman.analysis.plotting import plot
    from exman.analysis.summaries import summary

    _, df = grid
    table = summary(df, "acc", by=["lr", "optimizer"], warn=False)
    with pytest.warns(UserWarning, match="1 failed"):
        fig = plot(df, "acc", x="lr", hue="optimizer")
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"  # lr spans three decades
    lines = [bars.lines[0] for bars in ax.containers]  # the data line of each errorbar
    assert len(lines) == len(OPTIMIZERS)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(OPTIMIZERS)
    for line, opt in zip(lines, list(OPTIMIZERS)):
        want = table[table.optimizer == opt].sort_values("lr")
        assert list(line.get_xdata()) == pytest.approx(list(want.lr))
        assert list(line.get_ydata()) == pytest.approx(list(want.acc_mean))
    for bars, opt in zip(ax.containers, list(OPTIMIZERS)):
        want = table[table.optimizer == opt].sort_values("lr")
        (segments,) = [c.get_segments() for c in bars.lines[2]]
        assert [seg[0][1] for seg in segments] == pytest.approx(list(want.acc_ci_low))
        assert [seg[1][1] for seg in segments] == pytest.approx(list(want.acc_ci_high))
    assert "95% CI over seed" in fig._suptitle.get_text()

    png = fig._repr_png_()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_plot_panels_categories_and_pooling(grid):
    from exman.analysis.plotting import plot

    _, df = grid
    fig = plot(df, "acc", x="optimizer", col="lr", warn=False)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [f"lr={lr:g}" for lr in LRS]  # 1.0 reads 1, as in every table
    assert all(ax.get_xscale() == "linear" for ax in visible)
    assert [t.get_text() for t in visible[0].get_xticklabels()] == list(OPTIMIZERS)

    with pytest.raises(ValueError, match="no runs to plot"):
        plot(df[df.lr > 100], "acc", x="lr")
    fig = plot(df[df.lr <= 0.01], "acc", x="lr", logx=False, warn=False)
    assert fig.axes[0].get_xscale() == "linear"
    assert "pooled over optimizer" in fig._suptitle.get_text()


def test_plot_metric_curves(grid):
    from exman.analysis.plotting import metric_curves, plot_metric

    root, df = grid
    metrics = load_metrics(root)
    curves = metric_curves(df, metrics, "acc", by="optimizer")
    for row in curves.itertuples(index=False):
        accs = [score(lr, row.optimizer, s, row.step) for lr in LRS for s in seeds_of(lr, row.optimizer)]
        mean, _, n, low, high = expected(accs)
        assert (row.count, row.mean) == (n, pytest.approx(mean, abs=1e-12))
        assert (row.ci_low, row.ci_high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert curves.attrs["excluded"] == {"failed": 1}
    with pytest.warns(UserWarning, match="1 failed") as caught:
        fig = plot_metric(df, metrics, "acc", by="optimizer")
    assert caught[0].filename == __file__
    lines = fig.axes[0].get_lines()
    assert len(lines) == len(OPTIMIZERS)
    assert list(lines[0].get_xdata()) == list(range(EPOCHS))
    with pytest.raises(KeyError, match="logged metrics are: acc, loss"):
        plot_metric(df, metrics, "nope", warn=False)


def test_plotting_needs_the_extra_and_core_never_imports_it(tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import exman, exman.analysis, exman.analysis.plotting\n"
        "import pandas as pd\n"
        "df = pd.DataFrame({'id': [1, 2], 'x': [1, 2], 'y': [0.1, 0.2], 'status': 'completed'})\n"
        "df.attrs['params'] = ['x']\n"
        "exman.analysis.plotting.plot(df, 'y', 'x')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_for_subprocess())
    assert proc.returncode != 0
    assert "pip install 'exman[plot]'" in proc.stderr.strip().splitlines()[-1]

    code = (
        "import sys, exman, exman.analysis, exman.analysis.plotting, exman.analysis.report\n"
        "print(sorted(m for m in ('matplotlib', 'scipy', 'pandas') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_for_subprocess())
    assert proc.stdout.strip() == "[]", proc.stderr


def test_notebook_runs_on_a_real_kernel(grid, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from conftest import REPO

    root, _ = grid
    nb = nbformat.read(REPO / "examples" / "analysis.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env_for_subprocess(EXMAN_ROOT=str(root)))  # raises CellExecutionError on any error
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html_tables = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    images = [o.data["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    assert len(html_tables) == 4 and len(images) == 2
    summary_html, compare_html, anova_html = html_tables[1:]
    assert "acc_ci_low" in summary_html and "missing_replicates" in summary_html
    assert "hedges_g" in compare_html and "p_adj" in compare_html and "paired t" in compare_html
    assert "partial_eta_sq" in anova_html and "C(optimizer):np.log10(lr)" in anova_html
    assert len(images[0]) > 5000  # base64 PNG of a real figure


def test_list_and_missing_params_are_groups_and_levels():
    """nargs params (lists) group by content; an unset optional(float) is a level of its own."""
    import pandas as pd

    from exman.analysis.plotting import plot
    from exman.analysis.summaries import summary

    df = pd.DataFrame(
        {
            "id": range(1, 9),
            "status": ["completed"] * 7 + ["failed"],
            "layers": [[1, 2], [1, 2], [3], [3], [1, 2], [1, 2], [3], [3]],
            "l2": [None, None, None, None, 0.1, 0.1, 0.1, 0.1],
            "seed": [0, 1] * 4,
            "acc": [0.1 * i for i in range(8)],
        }
    )
    df["l2"] = df["l2"].astype(float)
    df.attrs.update(params=["layers", "l2", "seed"], metrics=["acc"])
    table = summary(df, "acc", warn=False)
    assert table.attrs["by"] == ["layers", "l2"]
    got = {
        (row.layers, "none" if math.isnan(row.l2) else row.l2): (row.runs, row.acc_mean)
        for row in table.itertuples(index=False)
    }
    assert got == {
        ((1, 2), "none"): (2, pytest.approx(0.05)),
        ((3,), "none"): (2, pytest.approx(0.25)),
        ((1, 2), 0.1): (2, pytest.approx(0.45)),
        ((3,), 0.1): (1, pytest.approx(0.6)),
    }
    assert list(table.missing_replicates) == [r == 1 for r, _ in got.values()]
    fig = plot(df, "acc", x="l2", hue="layers", warn=False)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0.1", "missing"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "[1, 2]",
        "[3]",
    ]  # lists read as in every table
