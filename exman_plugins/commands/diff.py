"""``exman diff ID ID``: what differs between two runs, side by side, and nothing else."""

from __future__ import annotations

import json

import click

from exman import hookimpl
from exman.cli import complete_ids, format_option, format_value, read_run, resolve_run, table

MISSING = object()


def differences(a: dict, b: dict) -> list[tuple[str, str, object, object]]:
    """(section, key, value in a, value in b) for every difference; MISSING when absent."""
    rows = []
    for section, key in (("status", "status"), ("git", "commit"), ("git", "dirty")):
        if a[key] != b[key]:
            rows.append((section, key, a[key], b[key]))
    for section in ("params", "metrics"):
        left, right = a[section], b[section]
        for key in list(left) + [k for k in right if k not in left]:
            va, vb = left.get(key, MISSING), right.get(key, MISSING)
            if va != vb and not (_nan(va) and _nan(vb)):
                rows.append((section, key, va, vb))
    return rows


def _nan(v) -> bool:
    return isinstance(v, float) and v != v


def _cell(v) -> str:
    if v is MISSING:
        return "-"
    if isinstance(v, (list, dict)):
        return json.dumps(v, default=str)
    if v is None:
        return "null"
    return format_value(v)


@hookimpl
def register_commands(cli):
    @cli.command("diff")
    @click.argument("first", metavar="ID", shell_complete=complete_ids)
    @click.argument("second", metavar="ID", shell_complete=complete_ids)
    @format_option("table", "json")
    @click.pass_obj
    def diff(state, first, second, fmt):
        """Show only what differs between two runs.

        Compares params, last metric values, status, git commit and dirtiness;
        "-" means the run has no such value.

        \b
        Example:
          exman diff 3 7
        """
        root = state.root
        a, b = read_run(resolve_run(root, first)), read_run(resolve_run(root, second))
        rows = differences(a, b)
        if fmt == "json":
            click.echo(
                json.dumps(
                    [
                        {"section": s, "key": k, "a": None if va is MISSING else va, "b": None if vb is MISSING else vb}
                        for s, k, va, vb in rows
                    ],
                    indent=2,
                    default=str,
                )
            )
            return
        if not rows:
            click.echo(f"runs {a['id']} and {b['id']} do not differ in params, metrics, status or git")
            return
        table(["", "", f"run {a['id']}", f"run {b['id']}"], [[s, k, _cell(va), _cell(vb)] for s, k, va, vb in rows])
