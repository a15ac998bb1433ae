"""compare and fit: every number recomputed here with scipy, statsmodels and the textbook formulas."""

from __future__ import annotations

import inspect
import json
import math
import subprocess
import sys

import pytest
from analysis_runs import LRS, MISSING, OPTIMIZERS, SEEDS, load_info, make_grid, score
from conftest import env_for_subprocess

stats = pytest.importorskip("scipy.stats")
smf = pytest.importorskip("statsmodels.formula.api")
from statsmodels.stats.anova import anova_lm  # noqa: E402
from statsmodels.stats.multitest import multipletests  # noqa: E402

EPOCHS = 4


def runs_table(cells, missing=(), failed=(), seeds=range(5), rng_seed=3):
    """An ``Index.info()``-shaped table of noisy runs: one row per cell and seed."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(rng_seed)
    rows = []
    for cell in cells:
        for seed in seeds:
            if (*cell.values(), seed) in missing:
                continue
            status = "failed" if (*cell.values(), seed) in failed else "completed"
            acc = 0.7 + 0.05 * (cell.get("optimizer") == "adam") + 0.02 * rng.normal()
            rows.append({"id": len(rows) + 1, "status": status, **cell, "seed": seed, "acc": acc})
    df = pd.DataFrame(rows)
    df.attrs.update(params=[*cells[0], "seed"], metrics=["acc"])
    return df


def values(df, **where):
    sel = df.status == "completed"
    for k, v in where.items():
        sel &= df[k] == v
    part = df[sel].sort_values("seed")
    return part.acc.to_numpy(), part.seed.tolist()


def hedges_g(a, b):
    na, nb = len(a), len(b)
    sp = math.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    return (a.mean() - b.mean()) / sp * (1 - 3 / (4 * (na + nb) - 9))


def welch_ci(a, b, level):
    va, vb, na, nb = a.var(ddof=1), b.var(ddof=1), len(a), len(b)
    se = math.sqrt(va / na + vb / nb)
    dof = se**4 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    half = stats.t.ppf((1 + level) / 2, dof) * se
    return a.mean() - b.mean() - half, a.mean() - b.mean() + half


def paired_ci(a, b, level):
    d = a - b
    half = stats.t.ppf((1 + level) / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return d.mean() - half, d.mean() + half


CELLS = [{"lr": lr, "optimizer": opt} for lr in (0.01, 0.1) for opt in ("sgd", "adam", "rmsprop")]


@pytest.mark.parametrize("test,level", [("t", 0.95), ("wilcoxon", 0.9)])
def test_compare_within_matches_scipy_and_statsmodels(test, level):
    from exman.analysis.inference import compare

    # One replicate missing: that pair is unpaired; one failed run: left out.
    df = runs_table(CELLS, missing={(0.1, "adam", 4)}, failed={(0.01, "sgd", 2)}, seeds=range(6))
    with pytest.warns(UserWarning, match=r"1 run\(s\) left out by status \(1 failed\)") as caught:
        table = compare(df, "acc", "optimizer", within="lr", level=level, test=test)
    assert caught[0].filename == __file__
    assert list(table.columns[:3]) == ["lr", "a", "b"]
    assert len(table) == 2 * 3
    raw = []
    for row in table.itertuples(index=False):
        a, seeds_a = values(df, lr=row.lr, optimizer=row.a)
        b, seeds_b = values(df, lr=row.lr, optimizer=row.b)
        assert (row.n_a, row.n_b) == (len(a), len(b))
        assert row.paired == (seeds_a == seeds_b)
        assert row.diff == pytest.approx(a.mean() - b.mean(), abs=1e-12)
        assert row.hedges_g == pytest.approx(hedges_g(a, b), rel=1e-10)
        if row.paired:
            want = stats.ttest_rel(a, b) if test == "t" else stats.wilcoxon(a, b)
            low, high = paired_ci(a, b, level)
            assert row.test == ("paired t" if test == "t" else "wilcoxon signed-rank")
        else:
            want = stats.ttest_ind(a, b, equal_var=False) if test == "t" else stats.mannwhitneyu(a, b)
            low, high = welch_ci(a, b, level)
            assert row.test == ("welch t" if test == "t" else "mann-whitney u")
        assert row.statistic == pytest.approx(want[0], rel=1e-10)
        assert row.p == pytest.approx(want[1], rel=1e-10)
        assert (row.ci_low, row.ci_high) == (pytest.approx(low, rel=1e-10), pytest.approx(high, rel=1e-10))
        raw.append(want[1])
    # (0.01, sgd) lost seed 2 by failing, (0.1, adam) never ran seed 4: one paired pair per lr
    assert table.paired.sum() == 2
    assert list(table.p_adj) == pytest.approx(list(multipletests(raw, method="holm")[1]), rel=1e-12)


def test_compare_pooled_corrections_and_levels():
    from exman.analysis.inference import compare

    df = runs_table(CELLS)
    table = compare(df, "acc", "optimizer", correction="fdr_bh", warn=False)
    # lr is neither compared nor a within key: pooled, and the table says so.
    assert table.attrs["pooled"] == ["lr"] and set(table.pooled) == {"lr"}
    assert [(r.a, r.b) for r in table.itertuples()] == [("adam", "rmsprop"), ("adam", "sgd"), ("rmsprop", "sgd")]
    for row in table.itertuples(index=False):
        a = df[df.optimizer == row.a].sort_values(["lr", "seed"]).acc.to_numpy()
        b = df[df.optimizer == row.b].sort_values(["lr", "seed"]).acc.to_numpy()
        assert row.paired and row.n_a == 10  # paired on (lr, seed)
        assert row.p == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-10)
    assert list(table.p_adj) == pytest.approx(list(multipletests(list(table.p), method="fdr_bh")[1]), rel=1e-12)
    plain = compare(df, "acc", "optimizer", correction=None, warn=False)
    assert list(plain.p_adj) == list(plain.p)

    # Two between keys: their combinations are compared; a and b hold tuples.
    both = compare(df, "acc", ["lr", "optimizer"], warn=False)
    assert len(both) == math.comb(6, 2) and both.a[0] == (0.01, "adam") and both.paired.all()  # on seed
    assert both.attrs["pooled"] == [] and "pooled" not in both.columns
    a, _ = values(df, lr=0.01, optimizer="adam")
    b, _ = values(df, lr=0.01, optimizer="rmsprop")
    assert both.p[0] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-10)
    # No replicate key: seed is then a parameter like any other, pooled and said to be.
    no_over = compare(df, "acc", ["lr", "optimizer"], over=None, warn=False)
    assert no_over.attrs["pooled"] == ["seed"] and set(no_over.pooled) == {"seed"}
    assert list(no_over.p) == pytest.approx(list(both.p), rel=1e-12)


def test_compare_too_few_replicates_and_bad_input():
    from exman.analysis.inference import compare

    df = runs_table(CELLS, seeds=range(2), missing={(0.01, "sgd", 1)})
    table = compare(df, "acc", "optimizer", within="lr", warn=False)
    short = table[(table.lr == 0.01) & ((table.a == "sgd") | (table.b == "sgd"))]
    assert len(short) == 2 and short.p.isna().all() and short.p_adj.isna().all()
    assert short.test.str.startswith("none").all()
    # The correction runs over the rows that have a p-value only.
    ok = table.p.notna()
    assert list(table.p_adj[ok]) == pytest.approx(list(multipletests(list(table.p[ok]), method="holm")[1]))
    with pytest.raises(KeyError, match="no column.*momentum"):
        compare(df, "acc", "momentum")
    with pytest.raises(KeyError, match="metrics are: acc"):
        compare(df, "accuracy", "optimizer")
    with pytest.raises(TypeError, match="non-numeric"):
        compare(df, "optimizer", "lr")
    with pytest.raises(ValueError, match="correction"):
        compare(df, "acc", "optimizer", correction="bonferonni")


def test_fit_matches_statsmodels_on_real_runs(grid):
    import numpy as np
    import pandas as pd

    from exman import Index

    root, df = grid
    with pytest.warns(UserWarning, match="1 failed"):
        result = Index(root).fit("acc ~ C(optimizer) * np.log10(lr)")
    rows = [
        {"lr": lr, "optimizer": opt, "acc": score(lr, opt, s, EPOCHS - 1)}
        for lr in LRS
        for opt in OPTIMIZERS
        for s in SEEDS
        if (lr, opt, s) != MISSING
    ]
    want_model = smf.ols("acc ~ C(optimizer) * np.log10(lr)", data=pd.DataFrame(rows)).fit()
    want = anova_lm(want_model, typ=2)
    got = result.anova
    assert list(got.index) == list(want.index)
    assert list(got.columns) == ["sum_sq", "df", "F", "PR(>F)", "partial_eta_sq"]
    for col in ("sum_sq", "df", "F", "PR(>F)"):
        assert np.allclose(got[col], want[col], rtol=1e-9, equal_nan=True), col
    resid = want.loc["Residual", "sum_sq"]
    eta = [ss / (ss + resid) for ss in want.sum_sq[:-1]]
    assert list(got.partial_eta_sq[:-1]) == pytest.approx(eta, rel=1e-9)
    assert math.isnan(got.partial_eta_sq["Residual"])
    assert result.model.nobs == len(rows)
    # The reference level may differ (choices order vs sorted); the fit itself may not.
    assert result.model.rsquared == pytest.approx(want_model.rsquared, rel=1e-9)
    assert sorted(result.model.fittedvalues) == pytest.approx(sorted(want_model.fittedvalues), rel=1e-9)
    assert "R²" in repr(result) and "<table" in result._repr_html_()


# Montgomery, "Design and Analysis of Experiments" (5th ed.), Example 5-1: battery life (hours) by
# plate material type and temperature (°F), four batteries per cell; ANOVA in Table 5-5.
BATTERY = {
    1: {15: (130, 155, 74, 180), 70: (34, 40, 80, 75), 125: (20, 70, 82, 58)},
    2: {15: (150, 188, 159, 126), 70: (136, 122, 106, 115), 125: (25, 70, 58, 45)},
    3: {15: (138, 110, 168, 160), 70: (174, 120, 150, 139), 125: (96, 104, 82, 60)},
}
# term: (sum of squares, degrees of freedom, F, P) as printed in the book
BATTERY_ANOVA = {
    "C(material)": (10683.72, 2, 7.91, 0.0020),
    "C(temperature)": (39118.72, 2, 28.97, None),  # printed as "< 0.0001"
    "C(material):C(temperature)": (9613.78, 4, 3.56, 0.0186),
    "Residual": (18230.75, 27, None, None),
}


def test_fit_reproduces_a_published_two_way_anova():
    import pandas as pd

    from exman.analysis.inference import fit

    rows = [
        {"id": i + 1, "status": "completed", "material": m, "temperature": t, "battery": k, "life": float(v)}
        for i, (m, t, k, v) in enumerate(
            (m, t, k, v) for m, by_t in BATTERY.items() for t, lives in by_t.items() for k, v in enumerate(lives)
        )
    ]
    df = pd.DataFrame(rows)
    df.attrs.update(params=["material", "temperature", "battery"], metrics=["life"])
    anova = fit(df, "life ~ C(material) * C(temperature)", over="battery").anova
    for term, (ss, dof, f, p) in BATTERY_ANOVA.items():
        assert anova.loc[term, "sum_sq"] == pytest.approx(ss, abs=0.005)
        assert anova.loc[term, "df"] == dof
        if f is not None:
            assert anova.loc[term, "F"] == pytest.approx(f, abs=0.005)
        if p is not None:
            assert anova.loc[term, "PR(>F)"] == pytest.approx(p, abs=0.00005)
    assert anova.loc["C(temperature)", "PR(>F)"] < 0.0001


def test_fit_errors_are_one_clear_line():
    from exman.analysis.inference import fit

    df = runs_table(CELLS)
    for formula, kind, pattern in [
        ("acc ~ C(optimizer) + momentum", KeyError, "names no column 'momentum'.*params are: lr, optimizer, seed"),
        ("accuracy ~ lr", KeyError, "names no column 'accuracy'.*metrics are: acc"),
        ("optimizer ~ lr", TypeError, "non-numeric"),
        ("acc lr", ValueError, "interest ~ parameters"),
        ("acc ~ C(optimizer) +", ValueError, "cannot read the formula"),
    ]:
        with pytest.raises(kind, match=pattern) as info:
            fit(df, formula, warn=False)
        assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    root = make_grid(tmp_path_factory.mktemp("grid"))
    return root, load_info(root)


def test_index_compare_and_the_command_agree(grid, exman_cmd):
    from exman import Index

    root, df = grid
    with pytest.warns(UserWarning, match="1 failed"):
        table = Index(root).compare("acc", "optimizer", within="lr")
    for row in table.itertuples(index=False):
        a = [score(row.lr, row.a, s, EPOCHS - 1) for s in SEEDS if (row.lr, row.a, s) != MISSING]
        b = [score(row.lr, row.b, s, EPOCHS - 1) for s in SEEDS if (row.lr, row.b, s) != MISSING]
        assert row.diff == pytest.approx(statistics_mean(a) - statistics_mean(b), abs=1e-12)
        assert row.paired == (len(a) == len(b))

    proc = exman_cmd("--root", root, "compare", "acc", "--between", "optimizer", "--within", "lr", "--format", "json")
    records = json.loads(proc.stdout)
    assert [(r["lr"], r["a"], r["b"], r["n_a"], r["n_b"], r["paired"]) for r in records] == [
        (r.lr, r.a, r.b, r.n_a, r.n_b, r.paired) for r in table.itertuples()
    ]
    assert [r["diff"] for r in records] == pytest.approx(list(table["diff"]))
    # On the command line the way to keep them is the option, not the Python keyword.
    assert (
        "exman: warning: 1 run(s) left out by status (1 failed); pass --include STATUS or --include all" in proc.stderr
    )
    assert "include=" not in proc.stderr

    proc = exman_cmd("--root", root, "compare", "acc", "-b", "optimizer", "--correction", "none", "--format", "csv")
    assert proc.stdout.splitlines()[0].startswith("a,b,n_a,n_b,mean_a,mean_b,paired,diff,ci_low,ci_high,test,")
    assert proc.stdout.splitlines()[0].endswith(",pooled")

    proc = exman_cmd("--root", root, "compare", "acc", "-b", "optimizer", "--within", "lr")
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("acc: 95% CI of mean(a) - mean(b) over seed; p_adj: holm over the 4 rows with a p-value")
    assert lines[1].split() == [
        "lr",
        "a",
        "b",
        "n_a",
        "n_b",
        "paired",
        "diff",
        "ci_low",
        "ci_high",
        "test",
        "p",
        "p_adj",
        "hedges_g",
    ]
    assert len(lines) == 2 + len(LRS)

    # Bad input: one clear line, exit status 1. In-process (click's runner) to spare a Python start
    # and the stats imports per case; the command is the same one the installed script builds.
    from click.testing import CliRunner

    from exman.cli import make_cli

    # click before 8.2 mixes stderr into stdout unless asked not to; 8.2 and later always keep it apart.
    separate = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}
    for args, message in [
        (("acc", "-b", "momentum"), "no column(s) momentum"),
        (("optimizer", "-b", "lr"), "non-numeric"),
        (("acc", "-b", "lr", "--where", "lr >"), "bad --where expression"),
    ]:
        result = CliRunner(**separate).invoke(make_cli(), ["--root", str(root), "compare", *args])
        assert result.exit_code == 1 and message in result.stderr, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and errors[0] == result.stderr.strip().splitlines()[-1]


def statistics_mean(xs):
    return sum(xs) / len(xs)


def test_stats_extra_is_imported_only_when_needed_and_named_when_missing():
    code = (
        "import sys, exman, exman.analysis, exman.analysis.inference, exman.analysis.plotting, exman.analysis.report\n"
        "print(sorted(m for m in ('scipy', 'statsmodels', 'pandas') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_for_subprocess())
    assert proc.stdout.strip() == "[]", proc.stderr
    table = (
        "import pandas as pd\n"
        "df = pd.DataFrame({'id': [1, 2, 3, 4], 'x': [1, 1, 2, 2], 'seed': [0, 1, 0, 1], 'y': [.1, .2, .3, .5],"
        " 'status': 'completed'})\n"
        "df.attrs['params'] = ['x', 'seed']\n"
    )
    for blocked, call in [
        ("scipy", "exman.analysis.summary(df, 'y')"),
        ("statsmodels", "exman.analysis.inference.compare(df, 'y', 'x')"),
        ("statsmodels", "exman.analysis.inference.fit(df, 'y ~ x')"),
    ]:
        code = f"import sys; sys.modules[{blocked!r}] = None\nimport exman.analysis, exman.analysis.inference\n{table}{call}\n"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_for_subprocess())
        assert proc.returncode != 0
        assert proc.stderr.strip().splitlines()[-1].endswith('pip install "exman[stats]"'), proc.stderr


def test_report_has_a_significance_section(grid):
    pytest.importorskip("matplotlib")
    from exman.analysis.inference import compare
    from exman.analysis.report import render

    root, df = grid
    from analysis_runs import load_metrics

    page = render(df, load_metrics(root), interest=["acc"])
    start = page.index("<h3>Significance: acc between values of optimizer</h3>")
    section = page[start : page.index("</table>", start)]
    assert "pooled over lr" in section and "Holm over the 1 row with a p-value" in section
    table = compare(df, "acc", "optimizer", warn=False)
    for value in (table["diff"][0], table.ci_low[0], table.ci_high[0], table.p_adj[0], table.hedges_g[0]):
        assert f">{value:.4g}<" in section
    assert "<h3>Significance: acc between values of lr</h3>" in page


def test_fit_refuses_designs_whose_anova_would_mean_nothing(tmp_path):
    """R's lm refuses a one-level factor and gives aliased coefficients NA (car::Anova then
    refuses the model), and with no residual degrees of freedom there is no F. statsmodels
    fits all three (by pseudo-inverse): a one-valued width got the intercept's sum of squares,
    F and p, and a saturated model failed inside the ANOVA with a message about NaNs."""
    from analysis_runs import make_values

    from exman import Index

    runs = [
        ({"opt": opt, "lr": lr, "warmup": int(lr * 1000), "width": 64, "seed": seed}, 0.1 * seed + lr + (opt == "b"))
        for opt in ("a", "b")
        for lr in (0.1, 0.2)
        for seed in (0, 1)
    ]
    index = Index(make_values(tmp_path, runs))
    assert index.fit("y ~ C(opt) + lr").model.df_resid == 5  # the grid itself fits
    for formula, pattern in [
        ("y ~ C(opt) + width", "width has a single value"),
        ("y ~ C(opt) + C(width)", "width has a single value"),
        ("y ~ C(opt) + lr + warmup", "warmup is determined by Intercept, C\\(opt\\)\\[T.b\\], lr"),
        ("y ~ C(opt) * C(lr) * C(seed)", "8 replicates for 8 coefficients leave no residual degrees of freedom"),
    ]:
        with pytest.raises(ValueError, match=pattern) as info:
            index.fit(formula)
        assert "\n" not in str(info.value)


def test_the_correction_family_said_is_the_rows_tested(tmp_path, exman_cmd):
    """A pair below two replicates a side has no p and is not adjusted: the label counts the
    p-values statsmodels' multipletests adjusted together, not the rows of the table."""
    import numpy as np
    from analysis_runs import make_values

    from exman import Index
    from exman.analysis.report import render

    runs = [({"opt": "a", "seed": s}, v) for s, v in enumerate((0.1, 0.3, 0.2))]
    runs += [({"opt": "b", "seed": s}, v) for s, v in enumerate((0.5, 0.4, 0.9))]
    runs += [({"opt": "c", "seed": 0}, 0.7)]  # one seed: no test against a or b
    root = make_values(tmp_path, runs)
    table = Index(root).compare("y", "opt")
    tested = table.p.notna().to_numpy()
    assert list(tested) == [True, False, False]
    assert list(table.p_adj[tested]) == pytest.approx(list(multipletests(list(table.p[tested]), method="holm")[1]))
    assert np.isnan(table.p_adj[~tested]).all()
    page = render(Index(root).info(), interest=["y"])
    assert "Holm over the 1 row with a p-value of this table" in page
    out = exman_cmd("--root", root, "compare", "y", "-b", "opt").stdout
    assert "p_adj: holm over the 1 row with a p-value" in out.splitlines()[0]
    out = exman_cmd("--root", root, "compare", "y", "-b", "opt", "--correction", "none").stdout
    assert "p_adj: p, not adjusted" in out.splitlines()[0]
