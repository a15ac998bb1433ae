"""``exman plan``: how many replicates a cell needs to detect a difference, from the recorded runs' spread."""

from __future__ import annotations

import click

from exman import hookimpl
from exman.cli import filter_runs, mark_option, over_option, runs_info, where_option


@hookimpl
def register_commands(cli):
    @cli.command("plan")
    @click.argument("interest")
    @click.option(
        "--diff",
        type=click.FloatRange(0, min_open=True),
        required=True,
        metavar="D",
        help="the smallest difference of INTEREST between two cells worth detecting",
    )
    @click.option(
        "--std",
        type=click.FloatRange(0, min_open=True),
        metavar="S",
        help="the seed-to-seed spread of INTEREST (default: pooled over the recorded cells)",
    )
    @click.option(
        "--power",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        default=0.8,
        show_default=True,
        help="chance of detecting a real difference of D",
    )
    @click.option(
        "--alpha",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        default=0.05,
        show_default=True,
        help="false-positive rate of the test",
    )
    @over_option()
    @mark_option()
    @where_option()
    @click.pass_obj
    def plan_command(state, interest, diff, std, power, alpha, over, mark, where):
        """How many replicates (seeds) each cell needs to detect a difference of D in INTEREST.

        Two-sided two-sample t-test power (statsmodels' TTestIndPower). The
        spread is --std, or the pooled within-cell std of the completed runs
        (cells: the varying parameters but the replicate keys). Needs the
        extra exman[stats].

        \b
        Example:
          exman plan acc --diff 0.01
          exman plan acc --diff 0.01 --std 0.02 --power 0.9
          exman plan loss --diff 0.05 --where "optimizer == 'adam'"
        """
        import warnings

        from exman.sweeps.adaptive import pooled_std, replicates_for

        source = f"--std {std:g}" if std is not None else ""
        try:
            if std is None:
                from exman.analysis.summaries import summary
                from exman.index import Index

                info = runs_info(Index(state.root), mark or None, include_failed=True)
                if where:
                    info = filter_runs(info, where).copy()  # ls's checks: no calls, hints for common mistakes
                if info.empty:
                    raise click.ClickException("no runs to estimate the spread from; give --std")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    table = summary(info, interest, over=list(over), ci=None)
                std, cells, reps = pooled_std(table, interest)
                source = f"pooled std {std:.4g} over {cells} cell(s), {reps} replicates"
            n = replicates_for(diff, std, power=power, alpha=alpha)
        except (KeyError, ValueError, TypeError, ImportError) as exc:
            raise click.ClickException(str(exc.args[0]) if exc.args else str(exc)) from None
        click.echo(
            f"{interest}: {source}; to detect a difference of {diff:g} (effect size {diff / std:.3g}) "
            f"with power {power:g} at alpha {alpha:g} (two-sided t-test), each cell needs "
            f"{n} replicates: --repeat {n}"
        )
