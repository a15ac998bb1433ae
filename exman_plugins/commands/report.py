"""``exman report``: one self-contained HTML page about the runs (tables and plots)."""

from __future__ import annotations

from pathlib import Path

import click

from exman import hookimpl
from exman.cli import filter_runs, inside, mark_option, over_option, runs_info, where_option


@hookimpl
def register_commands(cli):
    @cli.command("report")
    @mark_option()
    @where_option()
    @click.option(
        "--interest",
        "interest",
        multiple=True,
        metavar="COLUMN",
        help="column to summarise and plot (repeatable; default: every numeric metric)",
    )
    @over_option("replicate parameter averaged over (repeatable)")
    @click.option(
        "--out",
        "out",
        type=click.Path(dir_okay=False, path_type=Path),
        default="report.html",
        show_default=True,
        help="HTML file to write",
    )
    @click.option("--title", default=None, help="page title (default: the root's folder name)")
    @click.pass_obj
    def report_command(state, mark, where, interest, over, out, title):
        """Write one static HTML page: summaries and plots per metric, and the runs table.

        \b
        Example:
          exman report --mark best --where "epochs >= 10" --out report.html
        """
        from exman.analysis import statcache
        from exman.analysis.report import render
        from exman.fs import atomic_write

        out = out.resolve()
        if not out.parent.is_dir():
            raise click.ClickException(f"--out {out}: folder {out.parent} does not exist")
        root = state.root
        refuse_run_data(root, out)
        info, index = load(root, mark)
        if where:
            info = filter_runs(info, where).copy()
        if info.empty:
            raise click.ClickException(
                "no runs to report"
                + (f" (after --mark {mark})" if mark else "")
                + (f" (after --where {where!r})" if where else "")
            )
        if interest:  # a text column cannot be averaged: one line, before any work
            from exman.analysis.summaries import _numeric

            try:
                _numeric(info, [c for c in interest if c in info.columns])
            except TypeError as exc:
                raise click.ClickException(str(exc)) from None
        metrics = index.metrics(info)
        filters = " · ".join(f for f in (f"mark {mark}" if mark else "", f"where {where}" if where else "") if f)
        # Statistics of unchanged samples are answered from the root's cache: no scipy import.
        memo = statcache.load(stats_cache(root))
        try:
            with statcache.using(memo):
                page = render(
                    info,
                    metrics,
                    interest=list(interest) or None,
                    over=list(over),
                    volatile=volatile(info),
                    title=title or f"exman report: {root.parent.name}/{root.name}",
                    subtitle=" · ".join(p for p in (str(root), filters) if p),
                )
        except KeyError as exc:
            raise click.ClickException(str(exc.args[0]) if exc.args else str(exc)) from None
        except ImportError as exc:  # confidence intervals need scipy: the extra's install line
            raise click.ClickException(str(exc)) from None
        try:
            atomic_write(out, page)
        except OSError as exc:
            raise click.ClickException(f"--out {out}: {exc.strerror or exc}") from None
        statcache.save(stats_cache(root), memo)
        click.echo(f"wrote {out} ({len(info)} runs, {len(page) // 1024} KiB)")


def refuse_run_data(root: Path, out: Path) -> None:
    """A page written over a run's file or into exman's folders would corrupt a run: refuse it."""
    from exman.layout import FOLDERS, STATE, SWEEPS

    for name in (*FOLDERS, STATE, SWEEPS):
        if inside(root / name, out):
            raise click.ClickException(
                f"--out {out}: inside the root's {name}/, where the runs live; write it elsewhere"
            )


def stats_cache(root: Path) -> Path:
    """The file of remembered scipy/statsmodels answers (``exman.analysis.statcache``), beside the Index's cache."""
    from exman.layout import STATE

    return root / STATE / "stats-cache.json"


def volatile(info) -> list[str]:
    """The arguments the newest run's script declared ``volatile=True`` (its run.json schema)."""
    from exman.analysis.columns import meta_column
    from exman.layout import read_run_json

    root, id_ = meta_column(info, "root"), meta_column(info, "id")
    if root not in info.columns or not len(info):
        return []
    try:
        newest = info.loc[info[id_].idxmax(), root]
        schema = read_run_json(newest).get("schema") or {}
    except (ValueError, AttributeError):
        return []  # a 0.1.9 run or an unreadable file: nothing is known to be volatile
    return [k for k, v in schema.items() if isinstance(v, dict) and v.get("volatile")]


def load(root: Path, mark: str | None):
    """The runs table (failed runs too, marked ones with ``mark``) and its Index.

    Errors and the Index's warnings read as ``exman ls`` shows them (``exman.cli.runs_info``).
    """
    from exman.index import Index

    index = Index(root)
    return runs_info(index, mark or None, include_failed=True), index
