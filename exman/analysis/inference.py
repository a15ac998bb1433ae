"""Testing hypotheses about ``interest ~ parameters``: ``compare`` and ``fit``.

Owns the unit of analysis (one replicate per cell, as ``exman.analysis``
defines it), the pairwise tests with effect sizes and multiple-comparison
correction, and the formula models with their type-II ANOVA. The numerics are
the field's libraries: scipy.stats for tests and t quantiles, statsmodels for
models and corrections, both the optional extra ``exman[stats]`` and imported
only inside the functions that need them.
"""

from __future__ import annotations

import ast
import itertools
import math
import warnings
from collections.abc import Sequence

from exman.analysis.summaries import (
    DEFAULT_INCLUDE,
    STATS_EXTRA,
    _check_interest,
    _numeric,
    cell_keys,
    collapse,
    excluded_counts,
    hashable,
    names,
    replicate_ids,
    replicate_keys,
    scipy_stats,
    status_mask,
    warn_copies,
    warn_excluded,
)

CORRECTIONS = ("holm", "fdr_bh", None)
TESTS = ("t", "wilcoxon")


def statsmodels(models: bool = True):
    """(statsmodels.formula.api, anova_lm, multipletests), or one clear ImportError naming the extra.

    ``models=False`` skips the formula machinery (a second of imports) and returns None for it.
    """
    try:
        from statsmodels.stats.multitest import multipletests

        if not models:
            return None, None, multipletests
        import statsmodels.formula.api as smf
        from statsmodels.stats.anova import anova_lm
    except ImportError:
        raise ImportError(
            f"models and corrections need statsmodels, the optional extra exman[stats]: {STATS_EXTRA}"
        ) from None
    return smf, anova_lm, multipletests


def _units(df, interest: Sequence[str], keys: Sequence[str], over, include, formula_names=()):
    """The included runs as replicates: one row per cell and replicate key, values averaged.

    Returns (rows, cell, over_keys, excluded, copies).
    """

    over_keys = replicate_keys(df, over)
    cell = cell_keys(df, over, interest, keys)
    mask = status_mask(df, include)
    values = _numeric(df.loc[mask.to_numpy()], interest)
    used = list(dict.fromkeys([*cell, *over_keys]))
    data = df.loc[mask.to_numpy(), [c for c in dict.fromkeys([*used, *formula_names]) if c not in interest]].copy()
    data.attrs = {}  # pandas deep-copies attrs on every step; nothing below reads them
    for c in used:
        data[c] = hashable(data[c])
    for c in interest:
        data[c] = values[c]
    ids, copies = replicate_ids(data, cell, over_keys)
    rows = collapse(data, ids, list(interest))
    return rows.rename(columns={"__runs": "runs"}), cell, over_keys, excluded_counts(df, mask), copies


def _one(keys: list):
    """A lone key as itself: pandas versions disagree on what a one-item list yields when iterated."""
    return keys[0] if len(keys) == 1 else keys


def _label(value):
    return value[0] if isinstance(value, tuple) and len(value) == 1 else value


def compare(
    df,
    interest: str,
    between,
    *,
    within=None,
    over="seed",
    include=DEFAULT_INCLUDE,
    level: float = 0.95,
    correction: str | None = "holm",
    test: str = "t",
    warn: bool = True,
    stacklevel: int = 2,
):
    """Is the difference real, and how large? One row per pair of ``between`` values.

    ``df`` is an ``Index.info()`` table; the unit is a replicate (runs sharing
    a cell and ``over`` values are one, their mean). Pairs are formed per
    combination of the ``within`` keys; varying params that are neither
    ``between``, ``within`` nor replicate keys are pooled, and the ``pooled``
    column says so. A pair is paired when both sides hold exactly the same
    replicates (same pooled params and ``over`` values): paired t-test, or
    Wilcoxon signed-rank with ``test="wilcoxon"``; otherwise Welch's t-test
    (Mann-Whitney U with ``test="wilcoxon"``). ``diff``, its CI and
    ``hedges_g`` always come from the means. ``correction`` ("holm",
    "fdr_bh" or None) adjusts the p-values of all rows together.
    """
    import numpy as np
    import pandas as pd

    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of holm, fdr_bh or None, got {correction!r}")
    if test not in TESTS:
        raise ValueError(f"test must be 't' or 'wilcoxon', got {test!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    _check_interest(df, [interest])
    between_keys, within_keys = names(between), names(within)
    if not between_keys:
        raise ValueError("compare() needs a column to compare between, e.g. between='optimizer'")
    missing = [k for k in [*between_keys, *within_keys] if k not in df.columns]
    if missing:
        raise KeyError(f"no column(s) {', '.join(missing)}; params are: {', '.join(df.attrs.get('params', []))}")

    rows, cell, over_keys, excluded, copies = _units(df, [interest], [*within_keys, *between_keys], over, include)
    pooled = [c for c in cell if c not in within_keys and c not in between_keys]
    pair_keys = [*pooled, *[k for k in over_keys if k not in cell]]
    if warn:
        warn_excluded(excluded, stacklevel=stacklevel)
        warn_copies(copies, [*cell, *over_keys], stacklevel=stacklevel)

    rows = rows[rows[interest].notna()].copy()
    rows["__pair"] = _codes(rows, pair_keys)
    out = []
    blocks = rows.groupby(_one(within_keys), dropna=False, sort=True, observed=True) if within_keys else [((), rows)]
    for wkey, block in blocks:
        wkey = wkey if isinstance(wkey, tuple) else (wkey,)
        sides = {}
        for bkey, side in block.groupby(_one(between_keys), dropna=False, sort=True, observed=True):
            bkey = bkey if isinstance(bkey, tuple) else (bkey,)
            sides[bkey] = (side["__pair"].to_numpy(), side[interest].to_numpy(dtype=float))
        for a, b in itertools.combinations(sides, 2):
            row = dict(zip(within_keys, wkey))
            row.update(a=_label(a), b=_label(b))
            row.update(_pair(sides[a], sides[b], bool(pair_keys)))
            out.append(row)
    _tests(out, level, test)

    columns = [
        *within_keys,
        "a",
        "b",
        "n_a",
        "n_b",
        "mean_a",
        "mean_b",
        "paired",
        "diff",
        "ci_low",
        "ci_high",
        "test",
        "statistic",
        "p",
        "p_adj",
        "hedges_g",
    ]
    table = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in out], columns=columns)
    table["paired"] = table["paired"].astype(bool)
    for c in ("n_a", "n_b"):
        table[c] = table[c].astype(np.int64)
    table["test"] = table["test"].astype(object)
    p = table["p"].to_numpy(dtype=float)
    adjusted = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if correction is None:
        adjusted = p.copy()
    elif ok.any():
        adjusted[ok] = _corrected(p[ok], correction)
    table["p_adj"] = adjusted
    if pooled:
        table["pooled"] = ", ".join(pooled)
    table.attrs = {
        "interest": interest,
        "between": between_keys,
        "within": within_keys,
        "over": over_keys,
        "pooled": pooled,
        "level": level,
        "correction": correction,
        "include": include,
        "excluded": excluded,
        "copies": copies,
    }
    return table


def _corrected(p, method: str):
    """statsmodels' adjusted p-values (remembered in an active statcache), without the cost
    of its full garbage collection.

    Its Holm branch calls ``gc.collect()``, which walks every object of the
    process: a tenth of a second or more beside a large runs table. Frozen
    objects are skipped by that walk; freezing changes nothing else.
    """
    from exman.analysis import statcache

    def adjust(p):
        import gc

        _, _, multipletests = statsmodels(models=False)
        gc.freeze()
        try:
            return multipletests(p, method=method)[1]
        finally:
            gc.unfreeze()

    return statcache.whole(f"statsmodels.stats.multitest.multipletests(method={method})", adjust, p)


def _codes(frame, keys: list):
    """One integer per row naming its replicate by the values of ``keys`` (NaN equal to NaN)."""
    import numpy as np
    import pandas as pd

    if not keys:
        return np.arange(len(frame))
    # factorize gives every missing value the code -1, so two NaN keys match, as they should here;
    # folding one column in at a time keeps the combined code small.
    combined = np.zeros(len(frame), dtype=np.int64)
    for k in keys:
        codes = pd.factorize(frame[k])[0].astype(np.int64) + 1
        combined = pd.factorize(combined * (int(codes.max(initial=0)) + 1) + codes)[0].astype(np.int64)
    return combined


def _pair(side_a, side_b, pairable: bool) -> dict:
    """Sizes, means and variances of one pair; paired sides are put in the same replicate order."""
    import numpy as np

    keys_a, a = side_a
    keys_b, b = side_b
    na, nb = len(a), len(b)
    paired = (
        pairable
        and na >= 2
        and na == nb
        and len(np.unique(keys_a)) == na
        and np.array_equal(np.sort(keys_a), np.sort(keys_b))
    )
    if paired:
        order = np.argsort(keys_b)
        b = b[order[np.searchsorted(keys_b[order], keys_a)]]
    ma, mb = (float(a.mean()) if na else math.nan), (float(b.mean()) if nb else math.nan)
    return {"n_a": na, "n_b": nb, "mean_a": ma, "mean_b": mb, "paired": paired, "diff": ma - mb, "_a": a, "_b": b}


def _tests(rows: list, level: float, test: str) -> None:
    """Fill in each row's CI, test, statistic, p and Hedges' g, every number from the libraries.

    One call a pair for the test and its interval (``_t_test``) and one for the effect sizes of
    all rows. Those calls are remembered in an active statcache; scipy and statsmodels are
    imported for what it does not know, and not at all when no pair has 2 replicates a side.
    """
    import numpy as np

    from exman.analysis import statcache

    for row in rows:
        row.update(
            ci_low=math.nan,
            ci_high=math.nan,
            test="none: fewer than 2 replicates a side",
            statistic=math.nan,
            p=math.nan,
            hedges_g=math.nan,
        )
    rows = [r for r in rows if r["n_a"] >= 2 and r["n_b"] >= 2]
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # zero variance: NaN or infinite statistics, as scipy says
        for paired in (True, False):
            part = [r for r in rows if r["paired"] == paired]
            if not part:
                continue
            na = np.array([r["n_a"] for r in part], dtype=float)
            nb = np.array([r["n_b"] for r in part], dtype=float)
            va = np.array([r["_a"].var(ddof=1) for r in part])
            vb = np.array([r["_b"].var(ddof=1) for r in part])
            diff = np.array([r["diff"] for r in part])
            g = statcache.elementwise(
                "statsmodels.stats.meta_analysis.effectsize_smd",
                _hedges_g,
                np.array([r["mean_a"] for r in part]),
                np.sqrt(va),
                na,
                np.array([r["mean_b"] for r in part]),
                np.sqrt(vb),
                nb,
            )[0]
            g = np.where((va > 0) | (vb > 0), g, np.nan)  # no spread on either side: no scale to standardise by
            # R's t.test rule for "essentially constant" data reads the standard error of the difference
            if paired:
                se = np.array([(r["_a"] - r["_b"]).std(ddof=1) for r in part]) / np.sqrt(na)
                constant = _constant(se, diff)
            else:
                se = np.sqrt(va / na + vb / nb)
                constant = _constant(se, np.array([max(abs(r["mean_a"]), abs(r["mean_b"])) for r in part]))
            for i, r in enumerate(part):
                r.update(hedges_g=float(g[i]))
                if not constant[i]:
                    t, p, low, high = _t_test(r["_a"], r["_b"], paired, level)
                    r.update(ci_low=low, ci_high=high, test="paired t" if paired else "welch t", statistic=t, p=p)
                else:
                    r.update(test=f"none: no spread ({'the differences are' if paired else 'both sides are'} constant)")
                if test == "wilcoxon":  # rank tests: one call a pair, on request only
                    stats = scipy_stats()
                    if paired:
                        result = _signed_rank(stats, r["_a"], r["_b"])
                    else:
                        result = _try(stats.mannwhitneyu, r["_a"], r["_b"], alternative="two-sided")
                    r.update(
                        test="wilcoxon signed-rank" if paired else "mann-whitney u",
                        statistic=float(result[0]),
                        p=float(result[1]),
                    )


def _t_test(a, b, paired: bool, level: float) -> list:
    """(t, two-sided p, CI low, CI high) of mean(a) - mean(b), remembered in an active statcache.

    Paired: scipy.stats.ttest_rel and its confidence_interval (the t interval of the mean
    difference, n - 1 df). Unpaired: statsmodels' CompareMeans with usevar="unequal" (Welch's
    t-test and interval, Welch-Satterthwaite df), which gives the interval on every scipy we
    support (scipy's ttest_ind has one from 1.11 on). The memo's key is what the answer is a
    function of: size, mean and SD of the differences, or of each side.
    """
    import numpy as np

    from exman.analysis import statcache

    def compute(_):
        if paired:
            result = scipy_stats().ttest_rel(a, b)
            ci = result.confidence_interval(level)
            return [result.statistic, result.pvalue, ci.low, ci.high]
        try:
            from statsmodels.stats.weightstats import CompareMeans, DescrStatsW
        except ImportError:
            statsmodels(models=False)  # the one clear error naming the extra
            raise
        means = CompareMeans(DescrStatsW(a), DescrStatsW(b))
        t, p, _ = means.ttest_ind(usevar="unequal")
        low, high = means.tconfint_diff(alpha=1.0 - level, usevar="unequal")
        return [t, p, low, high]

    if paired:
        d = a - b
        name, key = "scipy.stats.ttest_rel", [level, len(d), d.mean(), d.std(ddof=1)]
    else:
        name = "statsmodels.stats.weightstats.CompareMeans(usevar=unequal)"
        key = [level, len(a), a.mean(), a.std(ddof=1), len(b), b.mean(), b.std(ddof=1)]
    return [float(v) for v in statcache.whole(name, compute, np.array(key, dtype=float), outputs=4)]


def _hedges_g(*stats):
    """statsmodels' bias-corrected standardised mean difference (Hedges' g: the difference over
    the pooled SD, times 1 - 3 / (4 (n_a + n_b) - 9)) from means, SDs and sizes."""
    try:
        from statsmodels.stats.meta_analysis import effectsize_smd
    except ImportError:
        statsmodels(models=False)  # the one clear error naming the extra
        raise
    return effectsize_smd(*stats)[0]


def _constant(se, scale):
    """Where a t-test has no spread to measure: R's t.test rule ("data are essentially constant"),
    a standard error below 10 machine epsilons of the mean (of the differences, when paired; of the
    larger side's, else), or zero. Its t would be infinite, or rounding noise (1e16)."""
    import numpy as np

    return np.isfinite(scale) & (se <= 10.0 * np.finfo(float).eps * np.abs(scale))


def _signed_rank(stats, a, b):
    """scipy's Wilcoxon signed-rank test of ``a - b`` by R's wilcox.test rule, so that every scipy
    we support gives the same p: exact below 50 pairs without ties or zero differences, else the
    normal approximation with continuity correction. Left to choose, scipy 1.10 took that
    approximation without the correction, newer releases a permutation test: 0.008 against 0.004."""
    import numpy as np

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    nonzero = np.abs(d[d != 0])
    if not len(nonzero):  # nothing to rank: scipy 1.10 raises, later ones say p = 1
        return (math.nan, math.nan)
    if len(nonzero) == len(d) and len(np.unique(nonzero)) == len(d) and len(d) < 50:
        return _try(stats.wilcoxon, a, b, method="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sample size too small for normal approximation"
        return _try(stats.wilcoxon, a, b, method="approx", correction=True)


def _try(func, *args, **kwargs):
    """A rank test that cannot rank (every difference zero) is NaN, not an error."""
    try:
        return func(*args, **kwargs)
    except ValueError:
        return (math.nan, math.nan)


# ---------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------


def _ols(smf, formula, data):
    """OLS through statsmodels' formula API; ``np`` in the formula is numpy.

    statsmodels evaluates the formula in its caller's frame: this one, where
    ``np`` and ``numpy`` are numpy, whoever called ``fit``.
    """
    import numpy as np

    numpy = np  # noqa: F841 (read by the formula)
    return smf.ols(formula, data=data).fit()


def _check_design(model, formula: str) -> None:
    """One clear error where the ANOVA's numbers would mean nothing.

    Aliased coefficients (parameters that vary together, so the data cannot tell their effects
    apart: R's lm gives them NA and car::Anova refuses), and no residual degrees of freedom (one
    replicate per coefficient: F cannot be formed)."""
    import numpy as np

    exog, names = model.model.exog, list(model.model.exog_names)
    if model.model.rank < exog.shape[1]:
        for i in range(1, exog.shape[1]):
            if np.linalg.matrix_rank(exog[:, : i + 1]) <= np.linalg.matrix_rank(exog[:, :i]):
                break
        raise ValueError(
            f"cannot fit {formula!r}: {names[i]} is determined by {', '.join(names[:i])} in these replicates "
            "(parameters that vary together cannot be told apart): drop or combine terms"
        )
    if model.df_resid < 1:
        raise ValueError(
            f"cannot fit {formula!r}: {int(model.nobs)} replicates for {exog.shape[1]} coefficients leave "
            "no residual degrees of freedom to test the terms; record more seeds, or drop terms (an interaction)"
        )


class Fit:
    """A fitted ``interest ~ parameters`` model.

    ``model`` is the statsmodels OLS results; ``anova`` the type-II ANOVA table
    (one row per term and ``Residual``: ``sum_sq``, ``df``, ``F``, ``PR(>F)``,
    ``partial_eta_sq``); ``data`` the replicates it was fitted on.
    """

    def __init__(self, formula: str, model, anova, data):
        self.formula = formula
        self.model = model
        self.anova = anova
        self.data = data

    def __repr__(self) -> str:
        return f"<exman.Fit {self.formula!r}: {int(self.model.nobs)} replicates, R² {self.model.rsquared:.3f}>\n{self.anova}"

    def _repr_html_(self) -> str:
        head = (
            f"<p><code>{self.formula}</code>: {int(self.model.nobs)} replicates, "
            f"R² {self.model.rsquared:.3f}, type-II ANOVA:</p>"
        )
        return head + self.anova._repr_html_()


def formula_names(formula: str) -> tuple[list[str], list[str]]:
    """(names on the left, names on the right) of a patsy formula: the columns it reads."""
    if formula.count("~") != 1:
        raise ValueError(
            f"a formula is 'interest ~ parameters', e.g. 'acc ~ C(optimizer) * np.log10(lr)'; got {formula!r}"
        )
    left, right = formula.split("~")

    def columns(text):
        # patsy's operators (+ * : - / **) are Python operators too, so Python can parse the side.
        try:
            tree = ast.parse(text.strip() or "0", mode="eval")
        except SyntaxError:
            raise ValueError(f"cannot read the formula {formula!r}") from None
        called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        roots = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        found = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called and id(n) not in roots]
        quoted = [
            n.args[0].value
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id == "Q"
            and n.args
            and isinstance(n.args[0], ast.Constant)
        ]
        return list(dict.fromkeys(found + quoted))

    return columns(left), columns(right)


def fit(df, formula: str, *, include=DEFAULT_INCLUDE, over="seed", warn: bool = True, stacklevel: int = 2) -> Fit:
    """Fit ``formula`` (statsmodels/patsy syntax) by OLS over the replicates; type-II ANOVA.

    ``df`` is an ``Index.info()`` table. Only runs whose status is in
    ``include`` count, and runs sharing a cell and ``over`` values are one
    replicate (their mean), as in ``summary``. ``C(x)`` treats ``x`` as
    categories, ``np.log10(x)`` transforms, ``a * b`` adds the interaction.
    """
    import numpy as np
    import pandas as pd

    smf, anova_lm, _ = statsmodels()
    left, right = formula_names(formula)
    known = {"np", "numpy", "C", "I", "Q", "True", "False", "None"}
    missing = [n for n in [*left, *right] if n not in df.columns and n not in known]
    if missing:
        raise KeyError(
            f"formula {formula!r} names no column {', '.join(map(repr, missing))}; "
            f"params are: {', '.join(df.attrs.get('params', []))}; "
            f"metrics are: {', '.join(df.attrs.get('metrics', [])) or '(none logged)'}"
        )
    interest = [n for n in left if n in df.columns]
    if not interest:
        raise ValueError(f"formula {formula!r} has no interest column on the left of '~'")
    rows, _, _, excluded, copies = _units(
        df, interest, [], over, include, formula_names=[n for n in right if n in df.columns]
    )
    if warn:
        warn_excluded(excluded, stacklevel=stacklevel)
        warn_copies(copies, [c for c in rows.columns if c not in interest and c != "runs"], stacklevel=stacklevel)
    data = rows.copy()
    for c in data.columns:
        col = data[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            data[c] = col.cat.remove_unused_categories()  # an empty level would make the design singular
        elif pd.api.types.is_string_dtype(col.dtype) and col.dtype != object:
            data[c] = col.astype(object)  # pandas 3's str dtype: patsy reads plain objects the same everywhere
        elif pd.api.types.is_bool_dtype(col.dtype):
            data[c] = col.astype(object)
    if len(data) < 2:
        raise ValueError(f"fit() needs at least two replicates with status in {include!r}; got {len(data)}")
    single = [n for n in right if n in data.columns and data[n].nunique(dropna=False) < 2]
    if single:
        # R's lm refuses a one-level factor; a one-valued number would be fitted as the intercept
        # again, and the ANOVA would credit it with the mean.
        raise ValueError(
            f"cannot fit {formula!r}: {', '.join(single)} has a single value among the replicates: "
            "it explains nothing; drop it from the formula"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a rank-deficient design: said below, in one line
            model = _ols(smf, formula, data)
    except Exception as exc:  # patsy and statsmodels raise many kinds for a formula they cannot use
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot fit {formula!r}: {message}") from None
    _check_design(model, formula)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        anova = anova_lm(model, typ=2)
    resid = float(anova.loc["Residual", "sum_sq"])
    eta = anova["sum_sq"] / (anova["sum_sq"] + resid)
    anova["partial_eta_sq"] = eta.where(anova.index != "Residual", np.nan)
    anova.attrs = {"formula": formula, "excluded": excluded, "copies": copies}
    return Fit(formula, model, anova, data)


__all__ = ["compare", "fit", "Fit", "formula_names", "statsmodels", "CORRECTIONS"]
