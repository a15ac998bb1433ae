"""``exman ls``: the runs of a root as a table, through the same ``exman.Index`` a notebook uses.

The default columns are the ones worth a glance: id, name (when some run has
one), status, start, duration, the params that vary between the runs of the
folder (``Index.varying``; see ``shown_params``) and the last value of each
metric, fitted to the terminal's width. pandas is imported when the command runs,
not when the CLI starts.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from exman import hookimpl
from exman.analysis.columns import meta_column
from exman.cli import (
    filter_runs,
    fit_table,
    format_duration,
    format_option,
    format_value,
    json_value,
    mark_option,
    runs_info,
    table,
    terminal_width,
    where_names,
    where_option,
)
from exman.layout import FAILS, RUNS, TMP
from exman.runinfo import given_name

BASE = ["id", "name", "status", "start", "duration"]


def load(index, mark: str | None, folder: str):
    """The Index frame for ``runs`` (optionally one mark), ``tmp`` or ``fails``."""
    options = {FAILS: {"include_failed": True}, TMP: {"include_tmp": True}}.get(folder, {})
    df = runs_info(index, mark, **options)
    if folder != RUNS:
        # Those calls add the folder's runs to the indexed ones; keep only the folder's.
        keep = [Path(p).parent.name == folder for p in df["root"]]
        attrs = dict(df.attrs)
        df = df[keep]
        df.attrs.update(attrs)
    return df


def shown_params(listed, every, index, mentioned=()) -> list[str]:
    """The params ``ls`` shows, one rule for the table and ``--format json|csv``: those
    that vary among ``every`` run of the folder (a filter does not change them, so
    ``--mark best`` still shows the ``lr`` that made those runs best) plus any the
    ``--where``/``--sort`` expression names. With at most one run, every param.
    """
    params = [c for c in listed.attrs.get("params", []) if c in listed.columns]
    if len(every) <= 1:
        return params
    chosen = set(index.varying(every)) | set(mentioned)
    return [c for c in params if c in chosen]


def given_names(df) -> list:
    """Each run's ``--name``, None without one (see ``exman.runinfo.given_name``)."""
    column = meta_column(df, "name")
    return [given_name(v) for v in df[column].tolist()] if column in df.columns else [None] * len(df)


def select(df, every, index, *, columns: str | None = None, mentioned=()):
    """The frame ``ls`` prints: ``--columns`` as given, else id, name, status, start,
    duration, the shown params and every metric. ``name`` is the run's ``--name``.
    """
    if columns:
        cols = [c.strip() for c in columns.split(",") if c.strip()]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise click.ClickException(
                f"unknown column(s) {', '.join(missing)}; columns: {', '.join(map(str, df.columns))}"
            )
        return df[cols]
    params = shown_params(df, every, index, mentioned)
    metrics = [m for m in df.attrs.get("metrics", []) if m in df.columns and m not in params]
    base = [meta_column(df, key) for key in BASE if key != "name"]
    start, time = meta_column(df, "start"), meta_column(df, "time")
    if start in df.columns and len(df) and df[start].isna().all() and time in df.columns:
        base[base.index(start)] = time  # exman 0.1.9 runs: no run.json, only params.yaml's time
    frame = df[[c for c in base if c in df.columns] + params + metrics].copy()
    frame.insert(1, "name", given_names(df))
    return frame


@hookimpl
def register_commands(cli):
    @cli.command("ls")
    @mark_option("only runs marked KEY (a/b/c allowed)")
    @where_option("pandas query, e.g. \"lr > 0.01 and status == 'completed'\"")
    @click.option("-s", "--sort", "sort", metavar="COL", help="sort by this column (default: id)")
    @click.option("-r", "--reverse", is_flag=True, help="reverse the order")
    @click.option("-c", "--columns", metavar="A,B,C", help="show exactly these columns")
    @click.option(
        "-n",
        "--last",
        type=click.IntRange(min=1),
        metavar="N",
        help="only the last N runs in sort order (with --sort: the N highest)",
    )
    @click.option("-W", "--wide", is_flag=True, help="every column in full, even wider than the terminal")
    @click.option("--tmp", "folder", flag_value=TMP, help=f"list debug runs in {TMP}/ instead")
    @click.option("--fails", "folder", flag_value=FAILS, help=f"list failed runs in {FAILS}/ instead")
    @format_option("table", "csv", "json")
    @click.pass_obj
    def ls(state, mark, where, sort, reverse, columns, last, wide, folder, fmt):
        """List runs with their status, params and last metrics.

        The params shown are those that differ between the runs of the folder
        (whatever the filter) and those --where or --sort name; json and csv
        get the same columns. On a terminal the table fits its width: long text
        is shortened, then columns are left out (named on stderr); --wide
        shows everything.

        \b
        Example:
          exman ls --where "lr > 0.01 and status == 'completed'" --sort acc -r -n 5
          exman ls --mark best --columns id,lr,acc --format csv
        """
        root = state.root
        folder = folder or RUNS
        if mark is not None and folder != RUNS:
            raise click.UsageError("--mark lists runs/ only; it cannot be combined with --tmp or --fails")
        from exman import Index

        index = Index(root)
        df = load(index, mark, folder)
        # The rule for which params to show looks at every run that could be listed here.
        every = df
        if mark or folder != RUNS:
            every = runs_info(index, None, include_failed=folder == FAILS, include_tmp=folder == TMP)
        total = len(df)
        if where:
            df = filter_runs(df, where)
        if sort:
            if sort not in df.columns:
                raise click.ClickException(f"no column {sort!r} to sort by; columns: {', '.join(map(str, df.columns))}")
            df = df.sort_values(sort, kind="stable", na_position="first")
        if last:
            df = df.iloc[-last:]
        if reverse:
            df = df.iloc[::-1]
        view = select(df, every, index, columns=columns, mentioned=[*where_names(where), *([sort] if sort else [])])
        cols = [str(c) for c in view.columns]
        if fmt == "json":
            records = [{c: json_value(v) for c, v in zip(cols, row)} for row in view.itertuples(index=False, name=None)]
            click.echo(json.dumps(records, indent=1, ensure_ascii=False))
            return
        if fmt == "csv":
            click.echo(view.to_csv(index=False), nl=False)
            return
        if view.empty:
            click.echo(no_match(where, total, f"{folder}/" + (f" marked {mark}" if mark else "")), err=True)
            return
        if not columns and view["name"].isna().all():
            view = view.drop(columns="name")  # nobody named a run: no empty column
            cols.remove("name")
        right = {i for i, c in enumerate(cols) if c in ("id", "duration") or _numeric(view[c])}
        duration, start = meta_column(df, "duration"), {meta_column(df, "start"), meta_column(df, "time")}
        limit = None if wide else terminal_width()
        rows = []
        for row in view.itertuples(index=False, name=None):
            # Fitting a terminal: times to the minute, without the year.
            rows.append(
                [
                    format_duration(v)
                    if c == duration
                    else format_value(v, short_time=limit is not None and c in start)
                    for c, v in zip(cols, row)
                ]
            )
        if limit is not None:
            cols, rows, right, left_out = fit_table(
                cols, rows, limit, right=right, drop_order=leave_out_first(cols, df)
            )
            if left_out:
                click.echo(
                    f"exman: left out to fit {limit} columns: {', '.join(left_out)} "
                    "(--wide shows all, --columns picks)",
                    err=True,
                )
        table(cols, rows, right=right)


def leave_out_first(cols: list[str], df) -> list[int]:
    """Which columns give way when the table is too wide: times first, then params
    and metrics from the right, then the name; id and status stay.
    """
    meta = [meta_column(df, key) for key in ("duration", "start", "time")]
    params = set(df.attrs.get("params", []))
    order = [c for c in meta if c in cols]
    order += [c for c in reversed(cols) if c in params]
    order += [
        c
        for c in reversed(cols)
        if c not in order and c not in (meta_column(df, "id"), meta_column(df, "status"), "name")
    ]
    order += ["name"] if "name" in cols else []
    return [cols.index(c) for c in order]


def _numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def no_match(where: str | None, total: int, where_from: str) -> str:
    """The stderr line when a filter left nothing to show."""
    if where:
        return f"no run matches --where {where!r} ({total} run{'s' if total != 1 else ''} in {where_from})"
    return f"no runs in {where_from}"
