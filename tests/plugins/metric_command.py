"""Example command plugin (shown in docs/plugins.md): ``exman metric NAME ID...``.

It uses only ``exman.cli``'s toolkit: ids to runs, one run's data, a table that
fits the terminal, values written the way every other command writes them.
"""

import click

from exman import hookimpl
from exman.cli import complete_ids, format_value, read_run, resolve_runs, table, warn_unknown


@hookimpl
def register_commands(cli):
    @cli.command("metric")
    @click.argument("name")
    @click.argument("ids", nargs=-1, required=True, shell_complete=complete_ids)
    @click.pass_obj
    def metric(state, name, ids):
        """The last value of metric NAME for the runs IDS (numbers, ranges 3-7, names)."""
        runs, unknown = resolve_runs(state.root, ids)  # state.root: --root, $EXMAN_ROOT or found
        warn_unknown(unknown)
        if not runs:
            raise click.ClickException("no such runs")
        rows = []
        for run in runs:
            info = read_run(run)
            rows.append([str(run.id), info["status"] or "", format_value(info["metrics"].get(name))])
        table(["id", "status", name], rows, right={0, 2})
