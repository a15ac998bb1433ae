"""exman's statistics against published worked examples, through the Index on real runs.

Every expected number here was printed by someone else: R's documented examples
(``example(t.test)``, ``example(wilcox.test)`` on the ``sleep`` data) and NIST's
Statistical Reference Datasets. The runs are recorded by ExParser in a subprocess.
"""

from __future__ import annotations

import math

import pytest
from analysis_runs import make_values

pytest.importorskip("scipy.stats")
pytest.importorskip("statsmodels")

# R's datasets::sleep (Cushny and Peebles 1905, as in Student 1908): extra hours of sleep of
# the same ten patients (ID 1-10) under two drugs.
SLEEP_1 = (0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0)
SLEEP_2 = (1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4)

DEPRESSION_X = (1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30)
DEPRESSION_Y = (0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29)


@pytest.fixture(scope="module")
def sleep(tmp_path_factory):
    """The sleep data twice: ``design=paired`` with the patient as the seed (the same ten
    seeds on both sides), ``design=welch`` with seeds 10-19 for drug 2 (nothing to pair)."""
    import exman

    runs = []
    for design, shift in (("paired", 0), ("welch", 10)):
        runs += [({"design": design, "drug": 1, "seed": i}, v) for i, v in enumerate(SLEEP_1)]
        runs += [({"design": design, "drug": 2, "seed": i + shift}, v) for i, v in enumerate(SLEEP_2)]
    # example(wilcox.test): Hollander & Wolfe (1973), 29f., Hamilton depression scale of nine
    # patients at the first (x) and second (y) visit after initiation of a therapy
    runs += [({"design": "depression", "drug": 1, "seed": i}, v) for i, v in enumerate(DEPRESSION_X)]
    runs += [({"design": "depression", "drug": 2, "seed": i}, v) for i, v in enumerate(DEPRESSION_Y)]
    return exman.Index(make_values(tmp_path_factory.mktemp("sleep"), runs))


def test_compare_reproduces_r_t_test_on_the_sleep_data(sleep):
    table = sleep.compare("y", "drug", within="design").set_index("design")
    # t.test(extra ~ group, data = sleep): Welch, t = -1.8608, df = 17.776, p-value = 0.07939,
    # 95 percent confidence interval -3.3654832 0.2054832
    welch = table.loc["welch"]
    assert welch["test"] == "welch t" and not welch["paired"]
    assert welch["statistic"] == pytest.approx(-1.8608, abs=5e-5)
    assert welch["p"] == pytest.approx(0.07939, abs=5e-6)
    assert (welch["ci_low"], welch["ci_high"]) == (
        pytest.approx(-3.3654832, abs=5e-8),
        pytest.approx(0.2054832, abs=5e-8),
    )
    # t.test(extra ~ group, data = sleep, paired = TRUE) (R < 4.4; 4.4 takes Pair(extra.1, extra.2) ~ 1):
    # t = -4.0621, df = 9, p-value = 0.002833, 95 percent confidence interval -2.4598858 -0.7001142
    paired = table.loc["paired"]
    assert paired["test"] == "paired t" and paired["paired"]
    assert paired["statistic"] == pytest.approx(-4.0621, abs=5e-5)
    assert paired["p"] == pytest.approx(0.002833, abs=5e-7)
    assert (paired["ci_low"], paired["ci_high"]) == (
        pytest.approx(-2.4598858, abs=5e-8),
        pytest.approx(-0.7001142, abs=5e-8),
    )
    for row in (welch, paired):
        assert (row["mean_a"], row["mean_b"], row["diff"]) == pytest.approx((0.75, 2.33, -1.58), abs=1e-12)


def test_compare_reproduces_r_wilcox_test_on_the_sleep_data(sleep):
    # wilcox.test(extra ~ group, data = sleep): W = 25.5, p-value = 0.06933 (ties: normal
    # approximation with continuity correction)
    table = sleep.compare("y", "drug", within="design", test="wilcoxon").set_index("design")
    welch = table.loc["welch"]
    assert welch["test"] == "mann-whitney u"
    assert welch["statistic"] == 25.5 and welch["p"] == pytest.approx(0.06933, abs=5e-6)


def test_summary_reproduces_r_one_sample_t_intervals(sleep):
    # t.test(extra[group == 1]): mean 0.75, 95 percent CI -0.5297804 2.0297804;
    # t.test(extra[group == 2]): mean 2.33, 95 percent CI 0.8976775 3.7623225
    table = sleep.summary("y", by=["design", "drug"]).set_index(["design", "drug"])
    for design in ("paired", "welch"):
        one, two = table.loc[(design, 1)], table.loc[(design, 2)]
        assert (one.y_mean, one.y_count, two.y_mean, two.y_count) == pytest.approx((0.75, 10, 2.33, 10), abs=1e-12)
        assert (one.y_ci_low, one.y_ci_high) == (
            pytest.approx(-0.5297804, abs=5e-8),
            pytest.approx(2.0297804, abs=5e-8),
        )
        assert (two.y_ci_low, two.y_ci_high) == (pytest.approx(0.8976775, abs=5e-8), pytest.approx(3.7623225, abs=5e-8))


def test_summary_reproduces_nist_strd_numacc1(tmp_path):
    # NIST StRD, univariate summary statistics, NumAcc1: certified mean 10000002, sd 1
    import exman

    root = make_values(tmp_path, [({"seed": i}, v) for i, v in enumerate((10000001.0, 10000003.0, 10000002.0))])
    row = exman.Index(root).summary("y").iloc[0]
    assert row.y_mean == 10000002.0 and row.y_std == pytest.approx(1.0, abs=1e-9)


def test_t_tests_refuse_essentially_constant_data(tmp_path):
    """R's t.test stops with "data are essentially constant" when the standard error is below
    10 machine epsilons of the means; a p of 0 (or 1e-33 from rounding noise) would be a
    claim the data cannot make. exman reports no test there, as below two replicates."""
    import exman

    runs = []
    for seed in range(3):
        runs += [({"case": "constant", "arm": "a", "seed": seed}, 1.0)]
        runs += [({"case": "constant", "arm": "b", "seed": seed + 10}, 0.9)]  # unpaired: Welch
        # the same shift on every seed, which rounding makes 0.5 +- 1e-16: paired differences "vary"
        runs += [({"case": "shifted", "arm": "a", "seed": seed}, seed / 10)]
        runs += [({"case": "shifted", "arm": "b", "seed": seed}, seed / 10 + 0.5)]
        runs += [({"case": "spread", "arm": "a", "seed": seed}, [0.1, 0.3, 0.2][seed])]
        runs += [({"case": "spread", "arm": "b", "seed": seed}, [0.5, 0.4, 0.9][seed])]
        runs += [({"case": "same", "arm": arm, "seed": seed}, [0.1, 0.3, 0.2][seed]) for arm in "ab"]
    index = exman.Index(make_values(tmp_path, runs))
    table = index.compare("y", "arm", within="case").set_index("case")
    for case in ("constant", "shifted", "same"):
        row = table.loc[case]
        assert row["test"].startswith("none") and math.isnan(row["p"]) and math.isnan(row["p_adj"]), row
        assert math.isnan(row["statistic"]) and math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])
        assert row["diff"] == pytest.approx({"constant": 0.1, "shifted": -0.5, "same": 0.0}[case])
    assert table.loc["spread", "test"] == "paired t" and table.loc["spread", "p"] > 0
    # the family corrected is the rows with a test: one here
    assert table.loc["spread", "p_adj"] == table.loc["spread", "p"]
    # rank tests need no spread, only differences to rank: none when every one is zero (scipy 1.10
    # raised there, later releases say p = 1)
    ranks = index.compare("y", "arm", within="case", test="wilcoxon").set_index("case")
    assert math.isnan(ranks.loc["same", "p"]) and ranks.loc["shifted", "p"] > 0


def test_signed_rank_reproduces_r_wilcox_test_in_every_scipy(sleep):
    """R's rule (exact below 50 pairs without ties or zeros, else the normal approximation with
    continuity correction), which scipy 1.10 and later releases each left in another way."""
    table = sleep.compare("y", "drug", within="design", test="wilcoxon").set_index("design")
    # wilcox.test(x, y, paired = TRUE, alternative = "greater"): V = 40, p-value = 0.01953 (exact);
    # the two-sided p is twice that
    depression = table.loc["depression"]
    assert depression["test"] == "wilcoxon signed-rank" and depression["p"] == pytest.approx(2 * 0.01953, abs=1e-5)
    # wilcox.test(extra ~ group, data = sleep, paired = TRUE): V = 0, p-value = 0.009091
    # ("cannot compute exact p-value with ties", "... with zeroes")
    paired = table.loc["paired"]
    assert paired["test"] == "wilcoxon signed-rank" and paired["p"] == pytest.approx(0.009091, abs=5e-7)


def test_hedges_g_reproduces_borenstein_worked_example(tmp_path):
    # Borenstein, Hedges, Higgins and Rothstein (2009), Introduction to Meta-Analysis, section 4.2:
    # means 103 and 100, SDs 5.5 and 4.5, 50 a group: S_within 5.0249, d 0.5970, J 0.9923, g 0.5924
    import exman

    z = [(i - 24.5) / math.sqrt(sum((j - 24.5) ** 2 for j in range(50)) / 49) for i in range(50)]
    runs = [({"arm": "treated", "seed": i}, 103 + 5.5 * v) for i, v in enumerate(z)]
    runs += [({"arm": "control", "seed": 50 + i}, 100 + 4.5 * v) for i, v in enumerate(z)]
    row = exman.Index(make_values(tmp_path, runs)).compare("y", "arm").iloc[0]
    assert (row["a"], row["b"], row["diff"]) == ("control", "treated", pytest.approx(-3.0, abs=1e-12))
    assert row["hedges_g"] == pytest.approx(-0.5924, abs=5e-5)
