"""``exman compare``: is a difference real, and how large? ``Index.compare`` on the command line."""

from __future__ import annotations

import json

import click

from exman import hookimpl
from exman.cli import (
    filter_runs,
    format_option,
    format_value,
    json_value,
    mark_option,
    over_option,
    runs_info,
    where_option,
)
from exman.cli import table as print_table

# What the table shows, in order; csv and json carry every column.
SHOWN = ("a", "b", "n_a", "n_b", "paired", "diff", "ci_low", "ci_high", "test", "p", "p_adj", "hedges_g")


@hookimpl
def register_commands(cli):
    @cli.command("compare")
    @click.argument("interest")
    @click.option(
        "-b",
        "--between",
        "between",
        multiple=True,
        required=True,
        metavar="COL",
        help="parameter whose values are compared pairwise (repeatable: their combinations)",
    )
    @click.option("--within", multiple=True, metavar="COL", help="compare separately per value of COL (repeatable)")
    @over_option()
    @click.option(
        "--include",
        multiple=True,
        default=["completed"],
        show_default=True,
        metavar="STATUS",
        help="statuses analysed (repeatable; 'all' for every run)",
    )
    @click.option(
        "--level",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        default=0.95,
        show_default=True,
        help="confidence level of the difference's interval",
    )
    @click.option(
        "--correction",
        type=click.Choice(["holm", "fdr_bh", "none"]),
        default="holm",
        show_default=True,
        help="multiple-comparison correction across all rows",
    )
    @click.option(
        "--test",
        "test",
        type=click.Choice(["t", "wilcoxon"]),
        default="t",
        show_default=True,
        help="t-tests, or rank tests (Wilcoxon signed-rank when paired, Mann-Whitney U otherwise)",
    )
    @mark_option()
    @where_option()
    @format_option("table", "csv", "json")
    @click.pass_obj
    def compare_command(state, interest, between, within, over, include, level, correction, test, mark, where, fmt):
        """Compare INTEREST between the values of a parameter: difference, CI, test, p, Hedges' g.

        Runs that share a cell and replicate key count once; pairs are paired
        when both sides have the same replicates. Needs the extra exman[stats].

        \b
        Example:
          exman compare acc --between optimizer --within lr
          exman compare loss -b optimizer --correction fdr_bh --format csv
        """
        import warnings

        from exman.index import Index

        info = runs_info(Index(state.root), mark or None, include_failed=True)
        if where:
            info = filter_runs(info, where).copy()  # ls's checks: no calls, hints for common mistakes
        if info.empty:
            raise click.ClickException("no runs to compare")
        from exman.analysis.inference import compare

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                table = compare(
                    info,
                    interest,
                    list(between),
                    within=list(within) or None,
                    over=list(over),
                    include="all" if "all" in include else list(include),
                    level=level,
                    correction=None if correction == "none" else correction,
                    test=test,
                )
            except (KeyError, ValueError, TypeError, ImportError) as exc:
                raise click.ClickException(str(exc.args[0]) if exc.args else str(exc)) from None
        from exman.analysis.summaries import excluded_message

        python_hint = excluded_message(table.attrs["excluded"])
        for w in caught:
            if issubclass(w.category, UserWarning):
                message = str(w.message)
                if message == python_hint:  # the keyword's hint, said the way this command spells it
                    message = excluded_message(table.attrs["excluded"], keep="--include STATUS or --include all")
                click.echo(f"exman: warning: {message}", err=True)
        if fmt == "json":
            records = [
                {str(c): json_value(v) for c, v in zip(table.columns, row)}
                for row in table.itertuples(index=False, name=None)
            ]
            click.echo(json.dumps(records, indent=1, ensure_ascii=False))
            return
        if fmt == "csv":
            click.echo(table.to_csv(index=False), nl=False)
            return
        if table.empty:
            click.echo("nothing to compare: fewer than two values of " + ", ".join(between) + " in any group", err=True)
            return
        cols = [*table.attrs["within"], *SHOWN]
        right = {i for i, c in enumerate(cols) if c not in ("a", "b", "test", "paired")}
        rows = [[_cell(c, v) for c, v in zip(cols, row)] for row in table[cols].itertuples(index=False, name=None)]
        level_note = f"{level:.0%} CI of mean(a) - mean(b) over {', '.join(table.attrs['over']) or 'runs'}"
        tested = int(table["p"].notna().sum())  # the family corrected: rows without a test have no p
        rows_ = f"the {tested} {'row' if tested == 1 else 'rows'} with a p-value"
        corr = f"p_adj: {correction} over {rows_}" if correction != "none" else "p_adj: p, not adjusted"
        pooled = f"; pooled over {', '.join(table.attrs['pooled'])}" if table.attrs["pooled"] else ""
        print_table(cols, rows, right=right, title=f"{interest}: {level_note}; {corr}{pooled}")


def _cell(column: str, value) -> str:
    if column in ("p", "p_adj") and isinstance(value, float) and value == value:
        return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"
    if column == "paired":
        return "yes" if value else "no"
    return format_value(value)
