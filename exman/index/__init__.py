"""``exman.Index``: every run of a root as one typed pandas DataFrame.

This module is the public face: ``Index`` and its methods, the errors and
warnings it raises, ``varying``, and the names other modules import from
here. ``Index._info`` is the read path, one step after the other, and issues
the warnings; the work lives below it, each module calling only those after
it: ``exman.index.memo`` the last answer in memory and in its frame file, and
patching it; ``exman.index.scan`` walking runs and the cache check;
``exman.index.read`` reading one run; ``exman.index.cache`` the cache files;
``exman.index.frame`` typing and merging columns. ``frame`` imports pandas,
so it is imported inside the functions that build a DataFrame, never by
``import exman``.
"""

from __future__ import annotations

import gc
import os
import warnings
from pathlib import Path

from exman import layout
from exman.analysis.columns import meta_column, varying  # noqa: F401 (public here)
from exman.errors import IndexWarning, NotARootError  # noqa: F401 (public here too)
from exman.index import cache as index_cache
from exman.index import read as R
from exman.index import scan as S
from exman.index.memo import Answers
from exman.runinfo import STALE_AFTER  # noqa: F401 (public here too)

__all__ = ["Index", "NotARootError", "IndexWarning", "varying", "meta_column", "STALE_AFTER"]


class Index(layout.RootFolders):
    """The runs recorded under ``root``.

    ``Index(root).info()`` is the table of runs; ``info("some/mark")`` the runs
    marked under ``marked/some/mark/`` at any depth. ``cache=False`` (or
    ``EXMAN_INDEX_CACHE=0``) skips the on-disk cache; ``plugins`` and
    ``disable_plugins`` work as in ``ExParser``.
    """

    def __init__(self, root, *, plugins=(), disable_plugins=(), cache: bool | None = None):
        path = Path(os.fspath(root)).expanduser()
        if not layout.is_root(path):
            raise NotARootError(layout.not_a_root(path))
        self.root = path.resolve()
        self._plugins = list(plugins)
        self._disable = list(disable_plugins)
        self._pm = None
        if cache is None:
            cache = os.environ.get("EXMAN_INDEX_CACHE", "1").strip().lower() not in ("0", "no", "false", "off")
        self.cache = bool(cache)
        # The last full answer per (include_failed, include_tmp), in memory and on disk.
        self._answers = Answers(self.root)

    def __repr__(self) -> str:
        return f"<exman.Index {self.root}>"

    @property
    def pm(self):
        if self._pm is None:
            from exman.plugins import get_plugin_manager

            self._pm = get_plugin_manager(disable=self._disable, plugins=self._plugins)
        return self._pm

    # -- public API ---------------------------------------------------------
    def info(self, source=None, *, njobs=1, include_failed: bool = False, include_tmp: bool = False):
        """One row per run, sorted by id.

        ``source``: None for every indexed run, or a mark key (``"a/b"``,
        ``"arg1/"``) for the runs under ``marked/<key>`` at any depth; an
        unknown mark raises ``KeyError``. ``include_failed`` adds the runs in
        ``fails/``, ``include_tmp`` the debug runs in ``tmp/`` (``exman ls
        --tmp``). ``njobs`` is accepted for compatibility with 0.1.9 and
        ignored: the cache makes reading in parallel moot.
        """
        # Reading 100,000 runs makes millions of tuples and dicts, none in a cycle: the cyclic
        # garbage collector's passes over them cost a fifth of a cold call, for nothing.
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._info(source, include_failed, include_tmp)
        finally:
            if paused:
                gc.enable()

    def _info(self, source, include_failed: bool, include_tmp: bool):
        """The read path: the last answer if nothing changed, else patched, else the long way."""
        from exman.index import frame as index_frame

        folders = S.folders(include_failed, include_tmp)
        known = head = None
        if source is None and self.cache:  # marks are not kept in memory
            head = index_cache.header(S.indexing_plugins(self.pm))
            found = self._answers.recall(folders, head, self.pm)
            df, known = found.df, found.known
            if df is None and found.base is not None:
                df = self._answers.patch(folders, found.base, known, self.pm)
            if df is not None:
                for message in found.messages:
                    warnings.warn(message, IndexWarning, stacklevel=3)  # the caller of info()
                return df
        ctx = self._walk(source, folders, known, head, stacklevel=4)
        rels, entries, statuses = ctx.result()
        df = index_frame.build(self.root, rels, entries, statuses)
        df.attrs["root"] = self.root
        if head is None:  # a mark, or no cache
            return df
        return self._answers.keep(folders, head, ctx, df, rels, entries, statuses)

    def varying(self, df=None) -> list:
        """Param columns of ``df`` (default: ``info()``) whose values differ, in declaration order."""
        return varying(self.info() if df is None else df)

    def metrics(self, source=None, *, include_failed: bool = False):
        """Every logged row as a long DataFrame: ``id, step, time, metric, value``.

        ``source`` is None, a mark key (as in ``info``) or a DataFrame from
        ``info()`` (its ``root`` and ``id`` columns pick the runs). Sorted by
        id, then step, then the order the run logged them.
        """
        from exman.index import frame as index_frame

        if source is not None and not isinstance(source, str):
            targets = list(zip(source["id"].tolist(), (os.fspath(p) for p in source["root"])))
        else:
            rels, entries, _ = self._walk(source, S.folders(include_failed, False)).result()
            root = os.fspath(self.root)
            targets = [(e[R.ID], os.path.join(root, rel)) for rel, e in zip(rels, entries)]
        return index_frame.metrics(targets)

    # -- analysis: thin wrappers over exman.analysis / exman.analysis.plotting --------
    def summary(
        self,
        interest,
        by=None,
        over="seed",
        agg=("mean", "std", "count"),
        include=("completed",),
        ci=0.95,
        *,
        source=None,
        df=None,
    ):
        """One row per group of runs: aggregates and t-based CI of ``interest`` over replicates.

        ``df`` defaults to ``info(source, include_failed=True)``, so failed runs
        are counted as ``excluded``. See ``exman.analysis.summaries`` and docs/analysis.md.
        """
        from exman.analysis.summaries import summary

        df = self.info(source, include_failed=True) if df is None else df
        return summary(df, interest, by=by, over=over, agg=agg, include=include, ci=ci, stacklevel=3)

    def plot(
        self,
        y,
        x,
        hue=None,
        col=None,
        over="seed",
        include=("completed",),
        ci=0.95,
        logx=None,
        *,
        source=None,
        df=None,
        **kwargs,
    ):
        """Figure: mean of ``y`` against ``x`` with CI error bars, lines by ``hue``, panels by ``col``.

        Needs matplotlib (``pip install 'exman[plot]'``). See ``exman.analysis.plotting.plot``.
        """
        from exman.analysis.plotting import plot

        df = self.info(source, include_failed=True) if df is None else df
        return plot(df, y, x, hue=hue, col=col, over=over, include=include, ci=ci, logx=logx, stacklevel=3, **kwargs)

    def plot_metric(
        self, metric, by=None, over="seed", include=("completed",), ci=0.95, *, source=None, df=None, **kwargs
    ):
        """Figure: learning curves of ``metric``, mean ± CI band over replicates per step, one line per group.

        Needs matplotlib (``pip install 'exman[plot]'``). See ``exman.analysis.plotting.plot_metric``.
        """
        from exman.analysis.plotting import plot_metric

        df = self.info(source, include_failed=True) if df is None else df
        return plot_metric(
            df, self.metrics(df), metric, by=by, over=over, include=include, ci=ci, stacklevel=3, **kwargs
        )

    def compare(
        self,
        interest,
        between,
        *,
        within=None,
        over="seed",
        include=("completed",),
        level=0.95,
        correction="holm",
        test="t",
        source=None,
        df=None,
    ):
        """One row per pair of ``between`` values: difference, its CI, test, p, adjusted p, Hedges' g.

        Needs scipy and statsmodels (``pip install "exman[stats]"``). See
        ``exman.analysis.inference.compare`` and docs/analysis.md.
        """
        from exman.analysis.inference import compare

        df = self.info(source, include_failed=True) if df is None else df
        return compare(
            df,
            interest,
            between,
            within=within,
            over=over,
            include=include,
            level=level,
            correction=correction,
            test=test,
            stacklevel=3,
        )

    def fit(self, formula, *, include=("completed",), over="seed", source=None, df=None):
        """``interest ~ parameters`` as an OLS model over the replicates: ``.model`` and ``.anova`` (type II).

        Needs statsmodels (``pip install "exman[stats]"``). See ``exman.analysis.inference.fit``.
        """
        from exman.analysis.inference import fit

        df = self.info(source, include_failed=True) if df is None else df
        return fit(df, formula, include=include, over=over, stacklevel=3)

    # -- which runs ---------------------------------------------------------
    def _walk(self, source, folders: tuple, known: dict | None = None, head: dict | None = None, stacklevel: int = 3):
        """Check or read every covered run; the returned context holds the answer.

        ``folders``: which of ``fails``/``tmp`` to walk beside the index;
        ``known``: stat keys already taken by ``Answers.recall``; ``head``:
        the cache header, when the caller has it.
        """
        if head is None:
            head = index_cache.header(S.indexing_plugins(self.pm))
        state = index_cache.load(self.root, head) if self.cache else {}
        try:
            return self._walk_from(state, head, source, folders, known, stacklevel + 1)
        except Exception:
            if not state:
                raise
            # A cache with a valid header and a damaged body: read the runs again.
            return self._walk_from({}, head, source, folders, known, stacklevel + 1)

    def _walk_from(self, state: dict, head: dict, source, folders: tuple, known, stacklevel: int):
        pm = self.pm
        plugins = bool(head["plugins"])
        entries = state.get("entries", {})
        links = state.get("links", {})
        before = len(entries), len(links)
        ctx = S.Context(os.fspath(self.root), pm, entries, links, plugins)
        ctx.known = known or {}

        if source is None:
            ctx.scan_index()
            for name in folders:
                ctx.scan_folder(name)
            # Forget runs that left the index; cached runs of a folder this call did not walk stay.
            unscanned = tuple(f + "/" for f in S.EXTRA_FOLDERS if f not in folders)
            for rel in [r for r in entries if r not in ctx.seen and not r.startswith(unscanned)]:
                del entries[rel]
                ctx.changed = True
            for key in [k for k in links if k.startswith(S.INDEX_KEY) and k not in ctx.seen_links]:
                del links[key]
                ctx.changed = True
        else:
            prefix = ctx.scan_mark(str(source))
            for key in [k for k in links if k.startswith(prefix) and k not in ctx.seen_links]:
                del links[key]
                ctx.changed = True
            # fails/ and tmp/ add nothing here: their runs have no marks.

        for message in ctx.messages:
            warnings.warn(message, IndexWarning, stacklevel=stacklevel)
        if self.cache and (ctx.changed or (len(entries), len(links)) != before):
            index_cache.save(self.root, head, {"entries": entries, "links": links})
        return ctx
