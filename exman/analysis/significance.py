"""The report's significance section: ``compare`` between the values of each varying parameter.

Kept apart from ``exman.analysis.report`` so the page layout and the statistics change
independently. scipy and statsmodels are the optional extra ``exman[stats]``, imported
only when a pair has two replicates a side to test (and its answers are not remembered,
``exman.analysis.statcache``). Without them the section is one note naming the extra, when
nothing else on the page needed them: the summaries' intervals ask first, and the report
then stops with one line naming it.
"""

from __future__ import annotations

import html
import warnings

MAX_LEVELS = 6  # values of a parameter compared pairwise; more makes a table nobody reads
COLUMNS = ("a", "b", "n_a", "n_b", "paired", "diff", "ci_low", "ci_high", "test", "p", "p_adj", "hedges_g")


def section(info, y: str, params: list[str], over) -> list[str]:
    """HTML parts: one table per parameter with 2 to ``MAX_LEVELS`` values, or a note why there is none."""
    from exman.analysis.summaries import hashable
    from exman.analysis.tables import table_html

    candidates = [p for p in params if 2 <= hashable(info[p]).nunique(dropna=False) <= MAX_LEVELS]
    if not candidates:
        return []
    from exman.analysis.inference import compare

    parts: list[str] = []
    for x in candidates:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the header already counts runs by status
            try:
                table = compare(info, y, x, over=over, warn=False)
            except ImportError as exc:  # imported only when a pair can be tested
                return [*parts, f'<p class="note">No significance tests: {html.escape(str(exc))}</p>']
            except (TypeError, ValueError, KeyError) as exc:  # values this parameter cannot be compared on
                message = str(exc.args[0]) if exc.args else type(exc).__name__
                parts.append(
                    f'<p class="note">No significance tests between values of {html.escape(x)}: '
                    f"{html.escape(message)}</p>"
                )
                continue
        if table.empty:
            continue
        pooled = table.attrs["pooled"]
        note = (
            f"Difference of means of {y} (a − b) with its {table.attrs['level']:.0%} CI; "
            f"p_adj: Holm over the {_tested(table)} of this table; Hedges' g standardised by the pooled SD"
            + (f"; pooled over {', '.join(pooled)}" if pooled else "")
            + "."
        )
        parts.append(f"<h3>Significance: {html.escape(y)} between values of {html.escape(x)}</h3>")
        parts.append(f'<p class="note">{html.escape(note)}</p>')
        parts.append(table_html(table, list(COLUMNS)))
    return parts


def _tested(table) -> str:
    """The family the correction adjusted: the rows with a p-value (a pair without a test has none)."""
    tested = int(table["p"].notna().sum())
    return f"{tested} {'row' if tested == 1 else 'rows'} with a p-value"


def copies_note(copies: dict) -> list[str]:
    """A note when runs repeat a replicate: they count once, as their mean."""
    if not copies:
        return []
    runs = sum(size * count for size, count in copies.items())
    return [
        f'<p class="note">{runs} runs repeat a replicate (same parameters and replicate key): '
        f"{sum(copies.values())} replicates, each counted once as the mean of its runs.</p>"
    ]


__all__ = ["section", "copies_note"]
