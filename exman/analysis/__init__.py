"""Analysis of an ``Index.info()`` frame: summaries, inference, plots, the report.

Everything here takes a DataFrame and never reads a root: ``columns`` holds the
frame's column rules, ``summaries`` grouping and ``summary()``, ``inference``
``compare()``/``fit()``, ``plotting`` the matplotlib plots, ``report`` (with
``significance`` and ``svgplot``) the HTML page, ``statcache`` the remembered answers
of scipy and statsmodels (in a file its caller names). pandas, scipy, statsmodels and
matplotlib load inside the functions that need them.
"""

from __future__ import annotations

from exman.analysis.columns import meta_column, varying
from exman.analysis.summaries import (
    DEFAULT_AGG,
    DEFAULT_INCLUDE,
    STATS_EXTRA,
    group_keys,
    half_width,
    hashable,
    names,
    replicate_keys,
    scipy_stats,
    summary,
)

__all__ = [
    "summary",
    "varying",
    "meta_column",
    "group_keys",
    "replicate_keys",
    "half_width",
    "hashable",
    "names",
    "scipy_stats",
    "DEFAULT_AGG",
    "DEFAULT_INCLUDE",
    "STATS_EXTRA",
]
