"""``exman plugins``: what is loaded, where it comes from, which hooks it implements."""

from __future__ import annotations

import json

import click

from exman import hookimpl
from exman.cli import format_option


@hookimpl
def register_commands(cli):
    @cli.command("plugins")
    @format_option("table", "json")
    @click.pass_obj
    def plugins_command(state, fmt):
        """List loaded plugins, where each comes from and the hooks it implements.

        Origin is "default" for exman's own plugins and "<distribution> <version>"
        for plugins installed through the "exman" entry-point group.

        \b
        Example:
          exman plugins --format json
        """
        from exman.cli import table
        from exman.plugins import describe

        rows = describe(state.pm)
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2))
            return
        table(["name", "origin", "hooks"], [[r["name"], r["origin"], ", ".join(r["hooks"])] for r in rows])
