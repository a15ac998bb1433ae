"""``exman plugins``: what is loaded, where it comes from, which hooks it implements."""
from __future__ import annotations

import json

import click

from exman import hookimpl


@hookimpl
def register_commands(cli):
    @cli.command("plugins")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
    @click.pass_obj
    def plugins_command(state, fmt):
        """List loaded plugins and the hooks each implements.

        \b
        Example:
          exman plugins --format json
        """
        from exman.plugins import describe

        rows = describe(state.pm)
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2))
            return
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            click.echo(f"{r['name']:<{width}}  {r['origin']:<12}  {', '.join(r['hooks'])}")
