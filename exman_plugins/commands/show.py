"""``exman show ID``: everything about one run on one screen.

Reads the run folder directly (its params file through the ``load_params`` hook, run.json, metrics.jsonl, log.txt,
traceback.txt) rather than through the Index, so it starts without pandas and
works on a run that is still running or was set aside in fails/.
"""

from __future__ import annotations

import json
import shlex

import click

from exman import hookimpl
from exman.cli import (
    complete_ids,
    format_duration,
    format_option,
    format_value,
    heading,
    pairs,
    read_run,
    resolve_run,
    tail,
)
from exman.layout import LOG_FILE, TRACEBACK_FILE


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@hookimpl
def register_commands(cli):
    @cli.command("show")
    @click.argument("run_id", metavar="ID", shell_complete=complete_ids)
    @click.option(
        "-n", "--lines", type=click.IntRange(min=0), default=20, show_default=True, help="lines of log.txt to show"
    )
    @format_option("text", "json")
    @click.pass_obj
    def show(state, run_id, lines, fmt):
        """Show one run: params, metadata, last metrics, files, end of its log.

        ID is a number or a run name; runs in tmp/ and fails/ are found too.

        \b
        Example:
          exman show 12
          exman show 12 --format json | jq .params
        """
        run = resolve_run(state.root, run_id)
        info = read_run(run)
        log = tail(run.path / LOG_FILE, lines)
        traceback = tail(run.path / TRACEBACK_FILE, 200)
        if fmt == "json":
            info["log_tail"] = log
            info["traceback"] = traceback
            click.echo(json.dumps(info, indent=2, default=str))
            return
        _print(info, log, traceback, lines)


def _print(info: dict, log, traceback, lines: int) -> None:
    meta = info["meta"]
    heading(f"run {info['id']}  {info['folder']}/{info['name']}")
    items = []
    if meta:
        status = info["status"]
        if status != meta.get("status"):
            status = f"{status} (recorded: {meta.get('status')})"
        items.append(("status", status))
        items.append(("start", _when(meta.get("start"))))
        if meta.get("end"):
            items.append(("end", _when(meta["end"])))
        items.append(("duration", format_duration(meta.get("duration"))))
        if meta.get("argv"):
            items.append(("command", " ".join(shlex.quote(a) for a in meta["argv"])))
        items.append(("cwd", str(meta.get("cwd") or "")))
        items.append(("host", f"{meta.get('host', '')}  user {meta.get('user', '')}  pid {meta.get('pid', '')}"))
        items.append(("versions", f"python {meta.get('python', '?')}  exman {meta.get('exman', '?')}"))
        if meta.get("sweep"):
            items.append(("sweep", f"{meta['sweep']}  cell {meta.get('sweep_cell')}"))
    else:
        items.append(("status", "unknown (no run.json: recorded by exman 0.1.9?)"))
    if info["commit"]:
        items.append(("git", f"{info['commit']}{'  (dirty)' if info['dirty'] else ''}"))
    pairs(items)

    click.echo()
    heading("params")
    pairs([(k, _plain(v)) for k, v in info["params"].items()], indent="  ")

    if info["metrics"]:
        click.echo()
        rows = info["metric_rows"]
        heading(f"metrics (last values, {rows} row{'' if rows == 1 else 's'} logged)")
        pairs(
            [(k, f"{format_value(v)}  (step {info['metric_steps'][k]})") for k, v in info["metrics"].items()],
            indent="  ",
        )

    click.echo()
    heading("files")
    pairs(
        [(f["name"], _size(f["size"]) if f["size"] >= 0 else f"{-f['size']} files") for f in info["files"]], indent="  "
    )

    if log:
        click.echo()
        heading(f"{LOG_FILE} (last {min(lines, len(log))} lines)")
        for line in log:
            click.echo("  " + line)
    if traceback:
        click.echo()
        heading(TRACEBACK_FILE)
        for line in traceback:
            click.echo("  " + line)


def _when(text) -> str:
    """ISO 8601 from run.json as ``2026-01-02 10:00:00 +0100``."""
    import datetime

    try:
        return datetime.datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S %z").strip()
    except (TypeError, ValueError):
        return str(text or "")


def _plain(v) -> str:
    if isinstance(v, (list, dict)):
        return json.dumps(v, default=str)
    return "null" if v is None else str(v)
