"""``exman ls``: the runs of a root as a table, through the same ``exman.Index`` a notebook uses.

The default columns are the ones worth a glance: id, name, status, start,
duration, the params that vary between the listed runs (``Index.varying``)
and the last value of each metric. pandas is imported when the command runs,
not when the CLI starts.
"""
from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

import click

from exman import hookimpl
from exman_plugins.commands import _output as out
from exman_plugins.commands._runs import complete_marks
from exman_plugins.commands.mark import mark_folder

BASE = ["id", "name", "status", "start", "duration"]


def index_info(index, mark: str | None = None, **options):
    """``index.info(mark, **options)`` for a command: a bad or unknown mark, or an
    unreadable root, is one clean error; the Index's warnings about unreadable
    runs become one stderr line each. ``exman report`` reads its runs here too.
    """
    import warnings

    if mark is not None:
        mark_folder(index.root, mark, create=False)  # a clean error for an unknown or unsafe key
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            df = index.info(mark, **options)
        except (ValueError, KeyError, OSError) as exc:
            raise click.ClickException(str(exc).strip("'\"")) from None
    for w in caught:
        click.echo(f"exman: warning: {str(w.message).removeprefix('exman: ')}", err=True)
    return df


def load(index, mark: str | None, folder: str):
    """The Index frame for ``runs`` (optionally one mark), ``tmp`` or ``fails``."""
    options = {"fails": {"include_failed": True}, "tmp": {"include_tmp": True}}.get(folder, {})
    df = index_info(index, mark, **options)
    if folder != "runs":
        # Those calls add the folder's runs to the indexed ones; keep only the folder's.
        keep = [Path(p).parent.name == folder for p in df["root"]]
        attrs = dict(df.attrs)
        df = df[keep]
        df.attrs.update(attrs)
    return df


def default_columns(df, index) -> list[str]:
    params = list(df.attrs.get("params", []))
    if len(df) > 1:
        params = [c for c in index.varying(df) if c in df.columns]
    metrics = list(df.attrs.get("metrics", []))
    base = [c for c in BASE if c in df.columns]
    if "start" in base and "time" in df.columns and len(df) and df["start"].isna().all():
        base[base.index("start")] = "time"  # exman 0.1.9 runs: no run.json, only params.yaml's time
    return base + params + [m for m in metrics if m not in params]


def plain(v):
    """A JSON-ready Python value: numpy scalars unwrapped, NaN/NaT as null, times in ISO 8601."""
    if v is None:
        return None
    if hasattr(v, "item") and getattr(v, "ndim", None) == 0 and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (datetime.datetime, datetime.date)):
        text = str(v)
        return None if text == "NaT" else v.isoformat()
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if v.__class__.__name__ in ("NaTType", "NAType"):
        return None
    if isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


@hookimpl
def register_commands(cli):
    @cli.command("ls")
    @click.option("-m", "--mark", "mark", metavar="KEY", shell_complete=complete_marks, help="only runs marked KEY (a/b/c allowed)")
    @click.option("-w", "--where", metavar="EXPR", help="pandas query, e.g. \"lr > 0.01 and status == 'completed'\"")
    @click.option("-s", "--sort", "sort", metavar="COL", help="sort by this column (default: id)")
    @click.option("-r", "--reverse", is_flag=True, help="reverse the order")
    @click.option("-c", "--columns", metavar="A,B,C", help="show exactly these columns")
    @click.option("-n", "--last", type=click.IntRange(min=1), metavar="N", help="only the last N runs in sort order (with --sort: the N highest)")
    @click.option("--tmp", "folder", flag_value="tmp", help="list debug runs in tmp/ instead")
    @click.option("--fails", "folder", flag_value="fails", help="list failed runs in fails/ instead")
    @click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
    @click.pass_obj
    def ls(state, mark, where, sort, reverse, columns, last, folder, fmt):
        """List runs with their status, varying params and last metrics.

        \b
        Example:
          exman ls --where "lr > 0.01 and status == 'completed'" --sort acc -r -n 5
          exman ls --mark best --columns id,lr,acc --format csv
        """
        root = state.root
        folder = folder or "runs"
        if mark is not None and folder != "runs":
            raise click.UsageError("--mark lists runs/ only; it cannot be combined with --tmp or --fails")
        from exman import Index

        index = Index(root)
        df = load(index, mark, folder)
        if where:
            try:
                df = df.query(where)
            except Exception as exc:  # pandas raises many types for a bad expression
                raise click.ClickException(f"bad --where expression {where!r}: {type(exc).__name__}: {exc}") from None
        if sort:
            if sort not in df.columns:
                raise click.ClickException(f"no column {sort!r} to sort by; columns: {', '.join(map(str, df.columns))}")
            df = df.sort_values(sort, kind="stable", na_position="first")
        if last:
            df = df.iloc[-last:]
        if reverse:
            df = df.iloc[::-1]
        if columns:
            cols = [c.strip() for c in columns.split(",") if c.strip()]
            missing = [c for c in cols if c not in df.columns]
            if missing:
                raise click.ClickException(f"unknown column(s) {', '.join(missing)}; columns: {', '.join(map(str, df.columns))}")
        else:
            cols = default_columns(df, index)
        view = df[cols]
        if fmt == "json":
            records = [{c: plain(v) for c, v in zip(cols, row)} for row in view.itertuples(index=False, name=None)]
            click.echo(json.dumps(records, indent=1, ensure_ascii=False))
            return
        if fmt == "csv":
            click.echo(view.to_csv(index=False), nl=False)
            return
        if view.empty:
            click.echo(f"no runs in {folder}/{' marked ' + mark if mark else ''}", err=True)
            return
        right = {i for i, c in enumerate(cols) if c in ("id", "duration") or _numeric(view[c])}
        rows = []
        for row in view.itertuples(index=False, name=None):
            rows.append([out.duration(v) if c == "duration" else out.value(plain_time(v)) for c, v in zip(cols, row)])
        out.table(cols, rows, right=right)


def _numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def plain_time(v):
    if hasattr(v, "to_pydatetime"):
        return v.to_pydatetime() if str(v) != "NaT" else None
    return v
