"""``exman.Index``: every run of a root as one typed pandas DataFrame.

This module owns *which* runs a call covers (the ``index/`` links, a mark's
subtree, ``fails/``), the cache check, the last answer kept in memory per
``Index`` and arguments, patching that answer when few runs changed, and run
statuses as of now. Reading one run lives in ``exman.index_read``, the cache
files in ``exman.index_cache``, typing and merging columns in
``exman.index_frame``. pandas is imported only when a DataFrame is built,
never by ``import exman``.

Cache check per run, in system calls: the params file (through the index
link when ``index/`` changed), ``metrics.jsonl``, plus ``run.json`` while the
run has not reached a final status, plus the run folder when an ``indexing``
plugin is installed. Finished runs are checked too: a metric appended later or
a hand edit of ``params.yaml`` must show on the next call.
"""
from __future__ import annotations

import gc
import os
import time
import warnings
from pathlib import Path

from exman import fs
from exman import index_cache
from exman import index_read as R
from exman.runinfo import STALE_AFTER, live_status  # noqa: F401 (STALE_AFTER: public here too)

# A file modified less than this long ago may change again within the same
# mtime tick (coarse on NFS), unseen by its stat: such entries are re-read next
# call instead of trusted (git's "racy clean" rule).
RACY_SECONDS = 2.0

__all__ = ["Index", "NotARootError", "IndexWarning", "varying", "STALE_AFTER"]


class NotARootError(ValueError):
    """The path given to ``Index`` is not a folder made by exman."""


class IndexWarning(UserWarning):
    """A run (or one of its files) could not be read; the rest of the index is fine."""


class Index(fs.RootFolders):
    """The runs recorded under ``root``.

    ``Index(root).info()`` is the table of runs; ``info("some/mark")`` the runs
    marked under ``marked/some/mark/`` at any depth. ``cache=False`` (or
    ``EXMAN_INDEX_CACHE=0``) skips the on-disk cache; ``plugins`` and
    ``disable_plugins`` work as in ``ExParser``.
    """

    def __init__(self, root, *, plugins=(), disable_plugins=(), cache: bool | None = None):
        path = Path(os.fspath(root)).expanduser()
        if not fs.is_root(path):
            raise NotARootError(fs.not_a_root(path))
        self.root = path.resolve()
        self._plugins = list(plugins)
        self._disable = list(disable_plugins)
        self._pm = None
        if cache is None:
            cache = os.environ.get("EXMAN_INDEX_CACHE", "1").strip().lower() not in ("0", "no", "false", "off")
        self.cache = bool(cache)
        # The last full answer per (include_failed, include_tmp): see _recall.
        self._answers: dict = {}

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
        from exman import index_frame

        folders = _folders(include_failed, include_tmp)
        known = None
        if source is None and self.cache:
            df, known, base = self._recall(folders)
            if df is None and known is None:
                df, known, base = self._fast_info(folders)
            if df is None and base is not None:
                df = self._patch(folders, base, known)
            if df is not None:
                return df
        ctx = self._walk(source, folders, known, stacklevel=4)
        rels, entries, statuses = ctx.result()
        df = index_frame.build(self.root, rels, entries, statuses)
        df.attrs["root"] = self.root
        if source is None and self.cache:
            memo = ctx.memo(folders)
            if memo is not None:
                live = [(i, rels[i], e[R.STATUS], e[R.HOST], e[R.PID])
                        for i, e in enumerate(entries) if e[R.STATUS] not in R.TERMINAL]
                shape = index_frame.shape(entries)
                self._store(folders, ctx.head, memo, df, rels, statuses, live, ctx.messages, shape,
                            index_frame.layout_of(shape))
                return _handout(df)
        return df

    def _store(self, folders, head, memo, df, rels, statuses, live, messages, shape, layout) -> None:
        """Save a full answer in the frame file and in memory."""
        from exman import index_frame

        # The memo first: a call that finds a change stops before unpickling the frame.
        index_cache.save(self.root, head, {"memo": memo}, name=_frame_file(folders), tail={
            "rels": rels, "statuses": statuses, "live": live, "messages": list(messages),
            "frame": index_frame.pack(df), "shape": shape, "layout": layout,
        })
        self._remember(folders, head, memo, df, live, messages, rels, shape, layout)

    def _remember(self, folders: tuple, head: dict, memo: dict, df, live: list, messages: list, rels=None,
                  shape=None, layout=None) -> None:
        """Keep this call's answer in memory: the next call checks the same files, and reads none."""
        index = memo["index"]
        # The paths the check stats, made once per process instead of once per call.
        index = dict(index, ppaths=[r + "/" + p for r, p in zip(index["rels"], index["pnames"])],
                     mpaths=[r + "/" + R.METRICS_FILE for r in index["rels"]])
        self._answers[folders] = {"head": head, "memo": dict(memo, index=index), "df": df, "live": live,
                                  "messages": list(messages), "rels": rels, "shape": shape, "layout": layout}

    def _recall(self, folders: tuple):
        """``(frame, None)`` from memory when not one file it came from changed, else ``(None, known)``.

        The check is the same as ``_fast_info``'s (every run's files are
        stat-ed: a finished run can still get a metric or a hand edit), minus
        reading and unpacking the cache file. ``known`` is None when there is
        nothing in memory.
        """
        saved = self._answers.pop(folders, None)
        if saved is None:
            return None, None, None
        head, memo, df, live_rows, messages = (saved[k] for k in ("head", "memo", "df", "live", "messages"))
        if index_cache.header(_indexing_plugins(self.pm)) != head:
            return None, None, None
        ctx = _Context(os.fspath(self.root), self.pm, {}, {}, bool(head["plugins"]))
        live, known = ctx.fast(memo, folders)
        if live is None:
            return None, known, saved
        self._answers[folders] = saved
        out = _handout(df)
        if live_rows:
            from exman import index_frame

            statuses = df["status"].tolist()
            now = time.time()
            for i, rel, status, host, pid in live_rows:
                beat = live.get(rel)
                statuses[i] = live_status(status, host, pid, beat.st_mtime if beat else None, now, ctx.host)
            out["status"] = index_frame._strings(statuses)
        for message in messages:
            warnings.warn(message, IndexWarning, stacklevel=4)  # the caller of info()
        return out, None, None

    def _fast_info(self, folders: tuple):
        """``(frame, None, None)``: the last full answer again, when not one file it came from changed.

        Otherwise ``(None, {rel: (key, run.json stat)}, base)``: the stats
        already taken, so the long way does not take them twice, and the
        answer on disk (None when unusable) for ``_patch``.
        """
        from exman import index_frame

        head = index_cache.header(_indexing_plugins(self.pm))
        state, read_tail = index_cache.load_split(self.root, head, _frame_file(folders))
        if not state:
            return None, None, None
        ctx = _Context(os.fspath(self.root), self.pm, {}, {}, bool(head["plugins"]))
        try:
            live, known = ctx.fast(state["memo"], folders)
            tail = read_tail()
            statuses = list(tail["statuses"])
            if live is not None:
                now = time.time()
                for i, rel, status, host, pid in tail["live"]:
                    beat = live.get(rel)
                    statuses[i] = live_status(status, host, pid, beat.st_mtime if beat else None, now, ctx.host)
            df = index_frame.unpack(tail["frame"], self.root, tail["rels"], statuses)
        except Exception:  # a memo from another version, a truncated file: take the long way
            return None, None, None
        df.attrs["root"] = self.root
        base = {"head": head, "memo": state["memo"], "df": df, "live": tail["live"], "messages": tail["messages"],
                "rels": tail["rels"], "shape": tail.get("shape"), "layout": tail.get("layout")}
        if live is None:
            return None, known, base
        for message in tail["messages"]:
            warnings.warn(message, IndexWarning, stacklevel=4)  # the caller of info()
        self._remember(folders, head, state["memo"], df, tail["live"], tail["messages"], tail["rels"],
                       tail.get("shape"), tail.get("layout"))
        return _handout(df), None, None

    def _patch(self, folders: tuple, base: dict, known: dict):
        """The last answer with only the changed runs read again: their rows replaced, added or dropped.

        For a few new, changed or removed runs in a large root: no other run
        is read, the frame is not rebuilt, and the per-run cache file is left
        as it was (the long way re-reads what it lacks, by stat). Returns
        None, for the long way, whenever the result could differ from a full
        build: a dangling link, a warning, a file in its racy window, new
        columns or declarations, or a column whose type would change.
        """
        from exman import index_frame

        if base.get("shape") is None or base["messages"] or not known:
            return None
        memo, root = base["memo"], os.fspath(self.root)
        checks = memo["index"]
        ctx = _Context(root, self.pm, {}, {}, bool(base["head"]["plugins"]))
        old_rels = base["rels"]
        changed: list = []  # runs in fails/ or tmp/: (rel, stat path, pname, failed_dir)
        relinked: list = []  # index rows whose files changed: (link, rel), read through the link
        index_st = R.try_stat(root + "/index")
        if memo["listing"] is not None and R.stat_key(index_st) == memo["listing"]:
            added, removed = [], set()
        else:
            with os.scandir(root + "/index") as it:
                now_links = {"index/" + e.name: e for e in it if e.name[0] != "."}
            links = set(checks["links"])
            added = [(key, e) for key, e in now_links.items() if key not in links]
            removed = links - set(now_links)
        dropped: set = set()  # rows whose link or folder is gone
        for link, rel, pname, key in zip(checks["links"], checks["rels"], checks["pnames"], checks["keys"]):
            if removed and link in removed:
                dropped.add(rel)
                continue
            now = known.get(rel)
            if now is None:
                return None
            if now[0] != key:
                relinked.append((link, rel))
        for folder in folders:
            rows = memo["folders"][folder]
            try:
                with os.scandir(root + "/" + folder) as it:
                    present = [folder + "/" + e.name for e in it
                               if e.name[0] != "." and e.is_dir(follow_symlinks=False)]
            except FileNotFoundError:
                present = []
            dropped.update(set(rows) - set(present))
            for rel in present:
                row = rows.get(rel)
                now = known.get(rel)
                if row is None:
                    pname = ctx.params_name(rel)
                    changed.append((rel, root + "/" + rel + "/" + pname, pname, folder == "fails"))
                elif now is None:
                    return None
                elif now[0] != row[1]:
                    changed.append((rel, root + "/" + rel + "/" + row[0], row[0], folder == "fails"))
        if removed and dropped & {r for link, r in zip(checks["links"], checks["rels"]) if link not in removed}:
            return None  # a second link to the same run is still there
        if len(changed) + len(relinked) + len(added) + len(dropped) > max(100, len(old_rels) // 20):
            return None  # many changes: the long way, which also refreshes the per-run cache file
        for key, e in added:
            ctx.index_link(key, e.path, e.is_symlink())
        for link, rel in relinked:
            # Through the link: it may point elsewhere now (ln -sf).
            path = root + "/" + link
            ctx.index_link(link, path, os.path.islink(path))
            if ctx.links.get(link, (None,))[0] != rel:
                return None
            changed.append((rel,))
        for rel, stat_path, pname, failed_dir in (c for c in changed if len(c) == 4):
            ctx.read(rel, stat_path, pname, failed_dir=failed_dir)
        if ctx.messages or any(e is None or e[R.KEY] is None for e in ctx.seen.values()):
            return None
        new_links = [(key, ctx.links.get(key)) for key, _ in added]
        if any(link is None or link[0] in known or link[0] in dropped for _, link in new_links):
            return None  # a second link to a run already shown, or a run moved under a new link
        rels, entries, statuses = ctx.result()
        if len(rels) != len(changed) + len(added):
            return None

        # Columns, their order and declarations must come out as a full build would make them.
        need = dropped.union(rels)
        gone = {i for i, rel in enumerate(old_rels) if rel in need}
        keep = [i for i in range(len(old_rels)) if i not in gone]
        old_shape, new_shape = base["shape"], index_frame.shape(entries)
        shape = {k: [old_shape[k][i] for i in keep] + new_shape[k] for k in old_shape} if gone else \
            {k: old_shape[k] + new_shape[k] for k in old_shape}
        layout = base["layout"]
        if gone or not _same_as_newest(old_shape, new_shape):
            layout = index_frame.layout_of(shape)
            if layout != base["layout"]:
                return None
        try:
            rows = index_frame.build(self.root, rels, entries, statuses, layout=layout)
        except Exception:
            return None
        missing = _missing(base["df"], layout, entries)
        old = base["df"]
        if gone:
            old = old.iloc[keep].reset_index(drop=True)
        df = index_frame.merge(old, rows, missing)
        if df is None:
            return None
        all_rels = [old_rels[i] for i in keep] + rels
        ids = df["id"].to_numpy()
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
            names = df["name"].tolist()
            order = sorted(range(len(ids)), key=lambda i: (ids[i], names[i]))
            df = df.take(order).reset_index(drop=True)
            all_rels = [all_rels[i] for i in order]
        df.attrs["root"] = self.root

        # The live rows' statuses as of now, the memo of the new answer.
        position = {rel: i for i, rel in enumerate(all_rels)}
        fresh = set(rels)
        live_rows = [(position[rel], rel, status, host, pid)
                     for _, rel, status, host, pid in base["live"] if rel not in fresh and rel not in dropped]
        live_rows += [(position[rel], rel, e[R.STATUS], e[R.HOST], e[R.PID])
                      for rel, e in zip(rels, entries) if e[R.STATUS] not in R.TERMINAL]
        live_rows.sort()
        statuses = df["status"].tolist()
        now = time.time()
        for i, rel, status, host, pid in live_rows:
            if rel in fresh:
                continue
            beat = known.get(rel, (None, None))[1]
            statuses[i] = live_status(status, host, pid, beat.st_mtime if beat else None, now, ctx.host)
        df["status"] = index_frame._strings(statuses)

        memo = _patched_memo(memo, ctx, added, removed, dropped, index_st, folders)
        self._store(folders, base["head"], memo, df, all_rels, statuses, live_rows, [], shape, layout)
        return _handout(df)

    def varying(self, df=None) -> list:
        """Param columns of ``df`` (default: ``info()``) whose values differ, in declaration order."""
        return varying(self.info() if df is None else df)

    def metrics(self, source=None, *, include_failed: bool = False):
        """Every logged row as a long DataFrame: ``id, step, time, metric, value``.

        ``source`` is None, a mark key (as in ``info``) or a DataFrame from
        ``info()`` (its ``root`` and ``id`` columns pick the runs). Sorted by
        id, then step, then the order the run logged them.
        """
        if source is not None and not isinstance(source, str):
            targets = list(zip(source["id"].tolist(), (os.fspath(p) for p in source["root"])))
        else:
            rels, entries, _ = self._walk(source, _folders(include_failed, False)).result()
            root = os.fspath(self.root)
            targets = [(e[R.ID], os.path.join(root, rel)) for rel, e in zip(rels, entries)]
        return _metrics_frame(targets)

    # -- analysis: thin wrappers over exman.analysis / exman.plotting --------
    def summary(self, interest, by=None, over="seed", agg=("mean", "std", "count"), include=("completed",),
                ci=0.95, *, source=None, df=None):
        """One row per group of runs: aggregates and t-based CI of ``interest`` over replicates.

        ``df`` defaults to ``info(source, include_failed=True)``, so failed runs
        are counted as ``excluded``. See ``exman.analysis.summary`` and docs/analysis.md.
        """
        from exman.analysis import summary

        df = self.info(source, include_failed=True) if df is None else df
        return summary(df, interest, by=by, over=over, agg=agg, include=include, ci=ci, stacklevel=3)

    def plot(self, y, x, hue=None, col=None, over="seed", include=("completed",), ci=0.95, logx=None, *,
             source=None, df=None, **kwargs):
        """Figure: mean of ``y`` against ``x`` with CI error bars, lines by ``hue``, panels by ``col``.

        Needs matplotlib (``pip install 'exman[plot]'``). See ``exman.plotting.plot``.
        """
        from exman.plotting import plot

        df = self.info(source, include_failed=True) if df is None else df
        return plot(df, y, x, hue=hue, col=col, over=over, include=include, ci=ci, logx=logx, stacklevel=3, **kwargs)

    def plot_metric(self, metric, by=None, over="seed", include=("completed",), ci=0.95, *, source=None, df=None,
                    **kwargs):
        """Figure: learning curves of ``metric``, mean ± CI band over replicates per step, one line per group.

        Needs matplotlib (``pip install 'exman[plot]'``). See ``exman.plotting.plot_metric``.
        """
        from exman.plotting import plot_metric

        df = self.info(source, include_failed=True) if df is None else df
        return plot_metric(df, self.metrics(df), metric, by=by, over=over, include=include, ci=ci, stacklevel=3,
                           **kwargs)

    # -- which runs ---------------------------------------------------------
    def _walk(self, source, folders: tuple, known: dict | None = None, stacklevel: int = 3):
        """Check or read every covered run; the returned context holds the answer.

        ``folders``: which of ``fails``/``tmp`` to walk beside the index;
        ``known``: stat keys already taken by ``_fast_info``.
        """
        pm = self.pm
        head = index_cache.header(_indexing_plugins(pm))
        plugins = bool(head["plugins"])
        state = index_cache.load(self.root, head) if self.cache else {}
        entries = state.get("entries", {})
        links = state.get("links", {})
        before = len(entries), len(links)
        ctx = _Context(os.fspath(self.root), pm, entries, links, plugins)
        ctx.known = known or {}

        if source is None:
            ctx.scan_index()
            for name in folders:
                ctx.scan_folder(name)
            # Forget runs that left the index; cached runs of a folder this call did not walk stay.
            unscanned = tuple(f + "/" for f in _EXTRA_FOLDERS if f not in folders)
            for rel in [r for r in entries if r not in ctx.seen and not r.startswith(unscanned)]:
                del entries[rel]
                ctx.changed = True
            for key in [k for k in links if k.startswith("index/") and k not in ctx.seen_links]:
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
        ctx.head = head
        return ctx


class _Context:
    """One ``info()`` call's walk over run folders, checking each against the cache."""

    def __init__(self, root: str, pm, entries: dict, links: dict, plugins: bool):
        self.root = root
        self.pm = pm
        self.entries = entries
        self.links = links
        self.plugins = plugins
        self.seen: dict = {}  # rel -> entry
        self.run_stats: dict = {}  # rel -> stat of run.json, for runs not finished
        self.seen_links: set = set()
        self.messages: list = []
        self.changed = False
        self.intern = R.Interner()
        self.host = os.uname().nodename
        self.known: dict = {}  # rel -> (key, run.json stat) taken earlier in this call
        self.index_stat = None

    # -- walks --------------------------------------------------------------
    def scan_index(self) -> None:
        folder = os.path.join(self.root, "index")
        # Taken before listing: a link added during the walk changes it after this.
        self.index_stat = R.try_stat(folder)
        links, seen_links = self.links, self.seen_links
        with os.scandir(folder) as it:
            for e in it:
                name = e.name
                if name[0] == ".":
                    continue
                key = "index/" + name
                seen_links.add(key)
                known = links.get(key)
                if known is not None:
                    rel, pname = known
                    if e.is_symlink():
                        if self.check(rel, e.path, pname):
                            continue
                    elif self.check(rel, os.path.join(self.root, rel, pname), pname):
                        continue
                self.index_link(key, e.path, e.is_symlink())

    def index_link(self, key: str, path: str, is_link: bool) -> None:
        """Resolve an ``index/`` entry that is new or changed, then read its run."""
        if is_link:
            try:
                target = os.readlink(path)
            except OSError as exc:
                self.messages.append(f"exman: cannot read index link {path}: {exc.strerror}")
                return
            if target.startswith("../") and "/.." not in target[2:] and "/./" not in target and "//" not in target:
                # exman's own links (../runs/<run>/params.yaml): no normpath needed
                folder, _, pname = (self.root + target[2:]).rpartition("/")
            else:
                folder, pname = os.path.split(os.path.normpath(os.path.join(os.path.dirname(path), target)))
            stat_path = path  # through the link: the stat a warm call compares
        else:  # a copy made without links (cp -L): the run folder has the same name
            stem, ext = os.path.splitext(os.path.basename(path))
            folder, pname = os.path.join(self.root, "runs", stem), "params" + ext
            stat_path = os.path.join(folder, pname)
        pst = R.try_stat(stat_path)
        if pst is None:
            # An absolute link made before the root moved: the run may still be here.
            moved = os.path.join(self.root, "runs", os.path.basename(folder))
            pst = R.try_stat(os.path.join(moved, pname)) if moved != folder else None
            if pst is None:
                self.messages.append(f"exman: index link {path} points to a missing file "
                                     f"({target if is_link else stat_path}); skipped")
                return
            folder, stat_path = moved, os.path.join(moved, pname)
        rel = self.rel(folder)
        self.links[key] = (rel, pname)
        self.changed = True
        self.read(rel, stat_path, pname, pst=pst)

    def scan_mark(self, source: str) -> str:
        """Walk ``marked/<source>``; return the link-key prefix it covers."""
        parts = fs.check_relative_key(source, "mark")
        start = os.path.join(self.root, "marked", *parts)
        prefix = "marked/" + "/".join(parts)
        if os.path.islink(start):
            self.mark_link(prefix, start)
            return prefix
        if not os.path.isdir(start):
            raise KeyError(source)
        stack = [(start, prefix)]
        while stack:
            folder, key = stack.pop()
            try:
                it = os.scandir(folder)
            except OSError as exc:
                self.messages.append(f"exman: cannot list mark folder {folder}: {exc.strerror}")
                continue
            with it:
                for e in it:
                    if e.name[0] == ".":
                        continue
                    child = key + "/" + e.name
                    if e.is_symlink():
                        self.mark_link(child, e.path)
                    elif e.is_dir(follow_symlinks=False):
                        stack.append((e.path, child))
        return prefix + "/"

    def mark_link(self, key: str, path: str) -> None:
        self.seen_links.add(key)
        known = self.links.get(key)
        if known is not None:
            rel, pname = known
            if self.check(rel, os.path.join(path, pname), pname):
                return
        try:
            target = os.readlink(path)
        except OSError as exc:
            self.messages.append(f"exman: cannot read mark link {path}: {exc.strerror}")
            return
        folder = os.path.normpath(os.path.join(os.path.dirname(path), target))
        if not os.path.isdir(folder):
            self.messages.append(f"exman: mark {path} points to a missing run ({target}); skipped")
            return
        rel = self.rel(folder)
        pname = self.params_name(rel)
        self.links[key] = (rel, pname)
        self.changed = True
        self.read(rel, os.path.join(folder, pname), pname)

    def scan_folder(self, name: str) -> None:
        """Read every run folder in ``fails/`` or ``tmp/`` (they have no index links)."""
        folder = os.path.join(self.root, name)
        try:
            it = os.scandir(folder)
        except FileNotFoundError:
            return
        with it:
            for e in it:
                if e.name[0] == "." or not e.is_dir(follow_symlinks=False):
                    continue
                rel = name + "/" + e.name
                pname = self.params_name(rel)
                stat_path = e.path + "/" + pname
                if not self.check(rel, stat_path, pname):
                    self.read(rel, stat_path, pname, failed_dir=name == "fails")

    # -- one run ------------------------------------------------------------
    def check(self, rel: str, stat_path: str, pname: str) -> bool:
        """Use the cached entry of ``rel`` when its files' stats are unchanged."""
        entry = self.entries.get(rel)
        if entry is None or entry[R.PARAMS_NAME] != pname:
            return False
        now = self.known.pop(rel, None) or self.key_now(rel, stat_path, entry[R.STATUS] in R.TERMINAL)
        if now is None or now[0] != entry[R.KEY]:
            return False
        self.use(rel, entry, now[1])
        return True

    def key_now(self, rel: str, stat_path: str, terminal: bool):
        """``(key, run.json stat or None)`` of a run's files as they are now; None when the params file is gone.

        The hot loop of a warm call: two stats for a finished run.
        """
        stat = os.stat
        try:
            pst = stat(stat_path)
        except OSError:
            return None
        folder = self.root + "/" + rel
        try:
            mst = stat(folder + "/metrics.jsonl")
            mkey = (mst.st_ino, mst.st_mtime_ns, mst.st_size)
        except OSError:
            mkey = R.NO_FILE
        jst = None if terminal else R.try_stat(folder + "/run.json")
        dkey = R.stat_key(R.try_stat(folder)) if self.plugins else R.NO_FILE
        return hash(((pst.st_ino, pst.st_mtime_ns, pst.st_size), mkey, R.stat_key(jst), dkey)), jst

    def read(self, rel: str, stat_path: str, pname: str, pst=None, failed_dir: bool = False) -> None:
        folder = self.root + "/" + rel
        if pst is None:
            pst = R.try_stat(stat_path)
        dkey = R.stat_key(R.try_stat(folder)) if self.plugins else R.NO_FILE
        entry, mst, jst = R.read_run(
            folder, os.path.basename(rel), pname, pst, pm=self.pm, intern=self.intern,
            previous=self.entries.get(rel), plugins=self.plugins, failed_dir=failed_dir,
        )
        terminal = entry[R.STATUS] in R.TERMINAL
        entry[R.KEY] = hash((R.stat_key(pst), R.stat_key(mst), R.NO_FILE if terminal else R.stat_key(jst), dkey))
        newest = max([st.st_mtime for st in (pst, mst, jst) if st is not None], default=0.0)
        if time.time() - newest < RACY_SECONDS:
            entry[R.KEY] = None  # never matches: read again next call
        self.entries[rel] = entry
        self.changed = True
        self.use(rel, entry, None if terminal else jst)

    def use(self, rel: str, entry, run_stat) -> None:
        if entry[R.WARNINGS]:
            self.messages.extend(entry[R.WARNINGS])
        if entry[R.OK]:
            self.seen[rel] = entry
            if run_stat is not None:
                self.run_stats[rel] = run_stat
        else:
            self.seen.setdefault(rel, None)  # known but unreadable: keep its cache entry

    def rel(self, folder: str) -> str:
        root = self.root
        if folder.startswith(root + os.sep):
            return folder[len(root) + 1:]
        return os.path.relpath(folder, root)

    def params_name(self, rel: str) -> str:
        entry = self.entries.get(rel)
        if entry is not None:
            return entry[R.PARAMS_NAME]
        folder = os.path.join(self.root, rel)
        if os.path.exists(os.path.join(folder, R.PARAMS_FILE)):
            return R.PARAMS_FILE
        meta, _, _ = R._read_json(os.path.join(folder, R.RUN_FILE), [])
        name = meta.get("params_file") if meta else None
        return name if isinstance(name, str) and name else R.PARAMS_FILE

    # -- the memo of the last full answer ------------------------------------
    def memo(self, folders: tuple):
        """What ``fast`` needs to trust a packed frame again: every row's link or folder, and key."""
        # Parallel lists: they unpickle several times faster than one tuple per run.
        index = {"links": [], "rels": [], "pnames": [], "keys": [], "terminal": []}
        for link in self.seen_links:
            known = self.links.get(link)
            entry = self.entries.get(known[0]) if known is not None else None
            if entry is None or entry[R.KEY] is None:
                return None  # dangling, racy or unreadable: not worth a memo
            index["links"].append(link)
            index["rels"].append(known[0])
            index["pnames"].append(self.intern(known[1]))
            index["keys"].append(entry[R.KEY])
            index["terminal"].append(entry[R.STATUS] in R.TERMINAL)
        extra = {name: {} for name in folders}
        for rel in self.seen:
            name = rel.partition("/")[0]
            if name in extra:
                entry = self.entries.get(rel)
                if entry is None or entry[R.KEY] is None:
                    return None
                extra[name][rel] = (entry[R.PARAMS_NAME], entry[R.KEY], entry[R.STATUS] in R.TERMINAL)
        # Adding, removing or re-pointing a link changes the index folder's mtime; while it has
        # not changed, the memo's links are exactly the folder's and need not be listed.
        st = self.index_stat
        listing = None
        if st is not None and time.time() - st.st_mtime > RACY_SECONDS:
            listing = (st.st_ino, st.st_mtime_ns, st.st_size)
        return {"index": index, "folders": extra, "listing": listing}

    def fast(self, memo: dict, folders: tuple):
        """``(live, known)``: ``live`` is ``{rel: run.json stat}`` of unfinished runs when every
        file matches ``memo``, else None; ``known`` holds the keys taken, for the long way."""
        live: dict = {}
        known: dict = {}
        checks = memo["index"]
        listing = memo["listing"]
        if listing is not None and R.stat_key(R.try_stat(self.root + "/index")) == listing:
            same = self.fast_unlisted(checks, live, known)
        else:
            rows = zip(checks["rels"], checks["pnames"], checks["keys"], checks["terminal"])
            same = self.fast_listed(dict(zip(checks["links"], rows)), live, known)
        for folder in folders:
            same = self.fast_folder(folder, memo["folders"][folder], live, known) and same
        return (live if same else None), known

    def fast_unlisted(self, checks: dict, live: dict, known: dict) -> bool:
        """The index folder is as it was: stat each run's files, paths relative to the root.

        The hot loop of a warm call, inlined: two stats for a finished run
        (about three quarters of its time is those two system calls).
        """
        stat, no_file, plugins = os.stat, R.NO_FILE, self.plugins
        rels = checks["rels"]
        ppaths = checks.get("ppaths") or [r + "/" + p for r, p in zip(rels, checks["pnames"])]
        mpaths = checks.get("mpaths") or [r + "/metrics.jsonl" for r in rels]
        same = True
        fd = os.open(self.root, os.O_RDONLY)
        try:
            for rel, ppath, mpath, key, terminal in zip(rels, ppaths, mpaths, checks["keys"], checks["terminal"]):
                try:
                    p = stat(ppath, dir_fd=fd)
                except OSError:
                    same = False
                    continue
                try:
                    m = stat(mpath, dir_fd=fd)
                    mkey = (m.st_ino, m.st_mtime_ns, m.st_size)
                except OSError:
                    mkey = no_file
                jst = None
                if not terminal:
                    try:
                        jst = stat(rel + "/run.json", dir_fd=fd)
                    except OSError:
                        pass
                dkey = R.stat_key(R.try_stat(self.root + "/" + rel)) if plugins else no_file
                now = hash(((p.st_ino, p.st_mtime_ns, p.st_size), mkey, R.stat_key(jst), dkey))
                if now != key:
                    same = False
                    known[rel] = (now, jst)
                elif not terminal:
                    live[rel] = jst
                    known[rel] = (now, jst)
                else:
                    known[rel] = (now, None)
        finally:
            os.close(fd)
        return same

    def fast_listed(self, checks: dict, live: dict, known: dict) -> bool:
        """The index folder changed: list it, and stat each params file through its link."""
        root, key_now = self.root, self.key_now
        same, seen = True, 0
        with os.scandir(root + "/index") as it:
            for e in it:
                name = e.name
                if name[0] == ".":
                    continue
                check = checks.get("index/" + name)
                if check is None:
                    same = False
                    continue
                seen += 1
                rel, pname, key, terminal = check
                now = key_now(rel, e.path if e.is_symlink() else root + "/" + rel + "/" + pname, terminal)
                known[rel] = now
                if now is None or now[0] != key:
                    same = False
                elif not terminal:
                    live[rel] = now[1]
        return same and seen == len(checks)

    def fast_folder(self, folder: str, checks: dict, live: dict, known: dict) -> bool:
        """The same for ``fails/`` or ``tmp/``, whose runs have no links."""
        seen, same = 0, True
        try:
            it = os.scandir(self.root + "/" + folder)
        except FileNotFoundError:
            return not checks
        with it:
            for e in it:
                if e.name[0] == "." or not e.is_dir(follow_symlinks=False):
                    continue
                rel = folder + "/" + e.name
                check = checks.get(rel)
                if check is None:
                    same = False
                    continue
                seen += 1
                pname, key, terminal = check
                now = self.key_now(rel, e.path + "/" + pname, terminal)
                known[rel] = now
                if now is None or now[0] != key:
                    same = False
                elif not terminal:
                    live[rel] = now[1]
        return same and seen == len(checks)

    # -- the answer ---------------------------------------------------------
    def result(self):
        pairs = [(rel, e) for rel, e in self.seen.items() if e is not None]
        pairs.sort(key=lambda p: (p[1][R.ID], p[1][R.NAME]))
        now = time.time()
        terminal = R.TERMINAL
        statuses = [e[R.STATUS] if e[R.STATUS] in terminal else self.status(rel, e, now) for rel, e in pairs]
        return [p[0] for p in pairs], [p[1] for p in pairs], statuses

    def status(self, rel: str, entry, now: float) -> str:
        st = self.run_stats.get(rel)
        return live_status(entry[R.STATUS], entry[R.HOST], entry[R.PID], st.st_mtime if st else None, now, self.host)


_EXTRA_FOLDERS = ("fails", "tmp")


def _folders(include_failed: bool, include_tmp: bool) -> tuple:
    return tuple(name for name, on in zip(_EXTRA_FOLDERS, (include_failed, include_tmp)) if on)


def _frame_file(folders: tuple) -> str:
    return index_cache.FRAME_FILE.format("+".join(("index",) + folders))


def _same_as_newest(old: dict, new: dict) -> bool:
    """True when ``new`` rows only follow the newest old row with its exact keys and declarations.

    Then the layout cannot change: the newest group of keys stays the newest.
    """
    if not old["ids"] or not new["ids"] or min(new["ids"]) <= max(old["ids"]):
        return False
    last = old["ids"].index(max(old["ids"]))
    return all(all(v == old[k][last] for v in new[k]) for k in ("pkeys", "mkeys", "xkeys", "schemas")) and \
        (any(old["commit"]) or not any(new["commit"]))


def _missing(df, layout: dict, entries: list) -> dict:
    """``{column: True}`` for the columns where every one of ``entries`` has no value."""
    names = {}
    for kind, k_keys, k_vals in (("params", R.PKEYS, R.PVALS), ("metrics", R.MKEYS, R.MVALS),
                                 ("plugins", R.XKEYS, R.XVALS)):
        rows = [dict(zip(e[k_keys], e[k_vals])) for e in entries]
        for key, name in zip(layout[kind], df.attrs.get(kind, ())):
            names[name] = all(row.get(key) is None for row in rows)
    names["dirty"] = all(e[R.DIRTY] is None for e in entries)
    return names


def _patched_memo(memo: dict, ctx, added: list, removed: set, dropped: set, index_st, folders: tuple) -> dict:
    """``memo`` with the keys of the runs ``ctx`` read, the links it added, without the rows dropped."""
    checks = memo["index"]
    names = ("links", "rels", "pnames", "keys", "terminal")
    if removed:
        stay = [i for i, link in enumerate(checks["links"]) if link not in removed]
        index = {k: [checks[k][i] for i in stay] for k in names}
    else:
        index = {k: list(checks[k]) for k in names}
    row = {rel: i for i, rel in enumerate(index["rels"])}
    for key, _ in added:
        rel, pname = ctx.links[key]
        entry = ctx.entries[rel]
        index["links"].append(key)
        index["rels"].append(rel)
        index["pnames"].append(pname)
        index["keys"].append(entry[R.KEY])
        index["terminal"].append(entry[R.STATUS] in R.TERMINAL)
    for rel, entry in ctx.entries.items():
        i = row.get(rel)
        if i is not None:
            index["keys"][i] = entry[R.KEY]
            index["terminal"][i] = entry[R.STATUS] in R.TERMINAL
    extra = {}
    for name in folders:
        extra[name] = {rel: row for rel, row in memo["folders"][name].items() if rel not in dropped}
        for rel, entry in ctx.entries.items():
            if rel.startswith(name + "/"):
                extra[name][rel] = (entry[R.PARAMS_NAME], entry[R.KEY], entry[R.STATUS] in R.TERMINAL)
    listing = None
    if index_st is not None and time.time() - index_st.st_mtime > RACY_SECONDS:
        listing = R.stat_key(index_st)
    return {"index": index, "folders": extra, "listing": listing}


def _handout(df):
    """A copy of a remembered frame the caller may change freely (lists in cells included)."""
    out = df.copy(deep=False)  # copy-on-write: the columns are shared until either side writes
    for name in out.columns:
        if out[name].dtype == object:
            values = out[name].tolist()
            if any(type(v) is list for v in values):
                out[name] = [list(v) if type(v) is list else v for v in values]
    return out


def _indexing_plugins(pm) -> list:
    """``name@mtime`` of every plugin implementing ``indexing``: editing one invalidates the cache."""
    out = []
    for impl in pm.hook.indexing.get_hookimpls():
        stamp = ""
        origin = getattr(impl.plugin, "__file__", None)
        if origin:
            try:
                stamp = str(os.stat(origin).st_mtime_ns)
            except OSError:
                pass
        out.append(f"{impl.plugin_name}@{stamp}")
    return out


def varying(df) -> list:
    """Param columns whose values differ within ``df``, in declaration order.

    The param columns are ``df.attrs["params"]`` (set by ``Index.info``); a
    frame that lost its attrs falls back to every column that is not run
    metadata. Missing values count as a value (NaN vs 1 differs); lists are
    compared by content.
    """
    from exman.index_frame import GIT_COLUMNS, META_COLUMNS

    names = df.attrs.get("params")
    if names is None:
        skip = set(META_COLUMNS) | set(GIT_COLUMNS) | set(df.attrs.get("metrics", ())) | set(df.attrs.get("plugins", ()))
        names = [c for c in df.columns if c not in skip]
    out = []
    for name in names:
        if name not in df.columns:
            continue
        seen = set()
        for value in df[name].tolist():
            seen.add(_hashable(value))
            if len(seen) > 1:
                out.append(name)
                break
    return out


def _hashable(value):
    if isinstance(value, float) and value != value:
        return ("nan",)  # NaN != NaN, but two missing values are the same value
    if value is None:
        return ("nan",)
    if isinstance(value, list):
        return ("list", tuple(_hashable(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return ("repr", repr(value))
    return value


def _metrics_frame(targets):
    import numpy as np
    import pandas as pd

    from exman import index_frame

    ids, steps, times, names, values = [], [], [], [], []
    messages: list = []
    for number, folder in targets:
        for row in R.read_metric_rows(os.path.join(folder, R.METRICS_FILE), messages):
            step = row.get("step")
            when = row.get("time")
            for key, value in row.items():
                if key == "step" or key == "time":
                    continue
                ids.append(number)
                steps.append(step)
                times.append(when)
                names.append(key)
                values.append(value)
    for message in messages:
        warnings.warn(message, IndexWarning, stacklevel=3)
    seconds = np.array([t if isinstance(t, (int, float)) else np.nan for t in times], dtype=np.float64)
    df = pd.DataFrame({
        "id": np.array(ids, dtype=np.int64),
        "step": index_frame._infer(steps) if steps else np.array([], dtype=np.int64),
        "time": _local_times(seconds),
        "metric": index_frame._strings(names),
        "value": index_frame._infer(values) if values else np.array([], dtype=np.float64),
    })
    if len(df):
        df = df.sort_values(["id", "step"], kind="stable", ignore_index=True)
    return df


def _local_times(seconds):
    """Unix seconds as naive local ``datetime64[ns]``, like ``info()``'s start and end."""
    import numpy as np

    if len(seconds) == 0:
        return np.array([], dtype="datetime64[ns]")
    # UTC offsets change at most every quarter hour: look each bucket up once.
    finite = np.isfinite(seconds)
    buckets = np.where(finite, seconds // 900, 0).astype(np.int64)
    uniq, inverse = np.unique(buckets, return_inverse=True)
    offsets = np.array([time.localtime(int(b) * 900).tm_gmtoff for b in uniq], dtype=np.float64)
    local = seconds + offsets[inverse.reshape(-1)]
    micros = np.where(finite, np.round(local * 1e6), 0).astype(np.int64)
    micros[~finite] = np.iinfo(np.int64).min
    return micros.view("datetime64[us]").astype("datetime64[ns]")
