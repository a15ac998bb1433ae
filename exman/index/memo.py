"""The last full answer of an ``Index`` kept in memory and on disk, and patching it.

This module owns the frame file (``index_cache``'s packed frame plus the memo
of the files it came from), the in-memory answer per ``Index`` and arguments
(``Index._answers``), and the incremental patch that re-reads only the runs
that changed. It is called by ``Index._info`` only, with the ``Index`` as its
first argument; it must not walk runs itself (``exman.index.scan`` does) nor
import pandas at module level: ``exman.index.frame`` is imported inside the
functions that build or unpack a frame.
"""
from __future__ import annotations

import os
import time
import warnings

from exman.analysis.columns import meta_column
from exman.errors import IndexWarning
from exman.index import cache as index_cache
from exman.index import read as R
from exman.index.scan import INDEX_KEY, RACY_SECONDS, Context, indexing_plugins
from exman.layout import FAILS, INDEX
from exman.runinfo import live_status


def frame_file(folders: tuple) -> str:
    return index_cache.FRAME_FILE.format("+".join(("index",) + folders))


def store(ix, folders, head, memo, df, rels, statuses, live, messages, shape, layout) -> None:
    """Save a full answer in the frame file and in memory."""
    from exman.index import frame as index_frame

    # The memo first: a call that finds a change stops before unpickling the frame.
    index_cache.save(ix.root, head, {"memo": memo}, name=frame_file(folders), tail={
        "rels": rels, "statuses": statuses, "live": live, "messages": list(messages),
        "frame": index_frame.pack(df), "shape": shape, "layout": layout,
    })
    remember(ix, folders, head, memo, df, live, messages, rels, shape, layout)


def remember(ix, folders: tuple, head: dict, memo: dict, df, live: list, messages: list, rels=None,
             shape=None, layout=None) -> None:
    """Keep this call's answer in memory: the next call checks the same files, and reads none."""
    index = memo["index"]
    # The paths the check stats, made once per process instead of once per call.
    index = dict(index, ppaths=[r + "/" + p for r, p in zip(index["rels"], index["pnames"])],
                 mpaths=[r + "/" + R.METRICS_FILE for r in index["rels"]])
    ix._answers[folders] = {"head": head, "memo": dict(memo, index=index), "df": df, "live": live,
                            "messages": list(messages), "rels": rels, "shape": shape, "layout": layout}


def recall(ix, folders: tuple):
    """``(frame, None)`` from memory when not one file it came from changed, else ``(None, known)``.

    The check is the same as ``fast_info``'s (every run's files are
    stat-ed: a finished run can still get a metric or a hand edit), minus
    reading and unpacking the cache file. ``known`` is None when there is
    nothing in memory.
    """
    saved = ix._answers.pop(folders, None)
    if saved is None:
        return None, None, None
    head, memo, df, live_rows, messages = (saved[k] for k in ("head", "memo", "df", "live", "messages"))
    if index_cache.header(indexing_plugins(ix.pm)) != head:
        return None, None, None
    ctx = Context(os.fspath(ix.root), ix.pm, {}, {}, bool(head["plugins"]))
    live, known = ctx.fast(memo, folders)
    if live is None:
        return None, known, saved
    ix._answers[folders] = saved
    out = handout(df)
    if live_rows:
        from exman.index import frame as index_frame

        column = meta_column(df, "status")
        statuses = df[column].tolist()
        now = time.time()
        for i, rel, status, host, pid in live_rows:
            beat = live.get(rel)
            statuses[i] = live_status(status, host, pid, beat.st_mtime if beat else None, now, ctx.host)
        out[column] = index_frame._strings(statuses)
    for message in messages:
        warnings.warn(message, IndexWarning, stacklevel=4)  # the caller of info()
    return out, None, None


def fast_info(ix, folders: tuple):
    """``(frame, None, None)``: the last full answer again, when not one file it came from changed.

    Otherwise ``(None, {rel: (key, run.json stat)}, base)``: the stats
    already taken, so the long way does not take them twice, and the
    answer on disk (None when unusable) for ``patch``.
    """
    from exman.index import frame as index_frame

    head = index_cache.header(indexing_plugins(ix.pm))
    state, read_tail = index_cache.load_split(ix.root, head, frame_file(folders))
    if not state:
        return None, None, None
    ctx = Context(os.fspath(ix.root), ix.pm, {}, {}, bool(head["plugins"]))
    try:
        live, known = ctx.fast(state["memo"], folders)
        tail = read_tail()
        statuses = list(tail["statuses"])
        if live is not None:
            now = time.time()
            for i, rel, status, host, pid in tail["live"]:
                beat = live.get(rel)
                statuses[i] = live_status(status, host, pid, beat.st_mtime if beat else None, now, ctx.host)
        df = index_frame.unpack(tail["frame"], ix.root, tail["rels"], statuses)
    except Exception:  # a memo from another version, a truncated file: take the long way
        return None, None, None
    df.attrs["root"] = ix.root
    base = {"head": head, "memo": state["memo"], "df": df, "live": tail["live"], "messages": tail["messages"],
            "rels": tail["rels"], "shape": tail.get("shape"), "layout": tail.get("layout")}
    if live is None:
        return None, known, base
    for message in tail["messages"]:
        warnings.warn(message, IndexWarning, stacklevel=4)  # the caller of info()
    remember(ix, folders, head, state["memo"], df, tail["live"], tail["messages"], tail["rels"],
             tail.get("shape"), tail.get("layout"))
    return handout(df), None, None


def patch(ix, folders: tuple, base: dict, known: dict):
    """The last answer with only the changed runs read again: their rows replaced, added or dropped.

    For a few new, changed or removed runs in a large root: no other run
    is read, the frame is not rebuilt, and the per-run cache file is left
    as it was (the long way re-reads what it lacks, by stat). Returns
    None, for the long way, whenever the result could differ from a full
    build: a dangling link, a warning, a file in its racy window, new
    columns or declarations, or a column whose type would change.
    """
    from exman.index import frame as index_frame

    if base.get("shape") is None or base["messages"] or not known:
        return None
    memo, root = base["memo"], os.fspath(ix.root)
    checks = memo["index"]
    ctx = Context(root, ix.pm, {}, {}, bool(base["head"]["plugins"]))
    old_rels = base["rels"]
    changed: list = []  # runs in fails/ or tmp/: (rel, stat path, pname, failed_dir)
    relinked: list = []  # index rows whose files changed: (link, rel), read through the link
    index_st = R.try_stat(root + "/" + INDEX)
    if memo["listing"] is not None and R.stat_key(index_st) == memo["listing"]:
        added, removed = [], set()
    else:
        with os.scandir(root + "/" + INDEX) as it:
            now_links = {INDEX_KEY + e.name: e for e in it if e.name[0] != "."}
        links = set(checks["links"])
        added = [(key, e) for key, e in now_links.items() if key not in links]
        removed = links - set(now_links)
    dropped: set = set()  # rows whose link or folder is gone
    for link, rel, _pname, key in zip(checks["links"], checks["rels"], checks["pnames"], checks["keys"]):
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
                changed.append((rel, root + "/" + rel + "/" + pname, pname, folder == FAILS))
            elif now is None:
                return None
            elif now[0] != row[1]:
                changed.append((rel, root + "/" + rel + "/" + row[0], row[0], folder == FAILS))
    if dropped:
        # A run left (delete, unmark, a dangling link): the rows that stay may type
        # narrower without it (int64, not float64 with its NaN): the long way types them.
        return None
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
        rows = index_frame.build(ix.root, rels, entries, statuses, layout=layout)
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
        names = [os.fspath(p) for p in df["root"].tolist()]
        order = sorted(range(len(ids)), key=lambda i: (ids[i], names[i]))
        df = df.take(order).reset_index(drop=True)
        all_rels = [all_rels[i] for i in order]
    df.attrs["root"] = ix.root

    # The live rows' statuses as of now, the memo of the new answer.
    position = {rel: i for i, rel in enumerate(all_rels)}
    fresh = set(rels)
    live_rows = [(position[rel], rel, status, host, pid)
                 for _, rel, status, host, pid in base["live"] if rel not in fresh and rel not in dropped]
    live_rows += [(position[rel], rel, e[R.STATUS], e[R.HOST], e[R.PID])
                  for rel, e in zip(rels, entries) if e[R.STATUS] not in R.TERMINAL]
    live_rows.sort()
    column = meta_column(df, "status")
    statuses = df[column].tolist()
    now = time.time()
    for i, rel, status, host, pid in live_rows:
        if rel in fresh:
            continue
        beat = known.get(rel, (None, None))[1]
        statuses[i] = live_status(status, host, pid, beat.st_mtime if beat else None, now, ctx.host)
    df[column] = index_frame._strings(statuses)

    memo = _patched_memo(memo, ctx, added, removed, dropped, index_st, folders)
    store(ix, folders, base["head"], memo, df, all_rels, statuses, live_rows, [], shape, layout)
    return handout(df)


def _same_as_newest(old: dict, new: dict) -> bool:
    """True when ``new`` rows only follow the newest old row with its exact keys and declarations.

    Then the layout cannot change: the newest group of keys stays the newest.
    """
    if not old["ids"] or not new["ids"] or min(new["ids"]) <= max(old["ids"]):
        return False
    last = old["ids"].index(max(old["ids"]))
    return all(all(v == old[k][last] for v in new[k]) for k in ("pkeys", "mkeys", "xkeys", "schemas")) and \
        (any(old["commit"]) or not any(new["commit"])) and (any(old["slurm"]) or not any(new["slurm"]))


def _missing(df, layout: dict, entries: list) -> dict:
    """``{column: True}`` for the columns where every one of ``entries`` has no value."""
    from exman.index import frame as index_frame

    names = {}
    rows = [dict(zip(e[R.PKEYS], e[R.PVALS])) for e in entries]
    columns, _ = index_frame.param_columns(layout["params"], layout["specs"])
    for key, name in columns.items():
        names[name] = all(row.get(key) is None for row in rows)
    for kind, k_keys, k_vals in (("metrics", R.MKEYS, R.MVALS), ("plugins", R.XKEYS, R.XVALS)):
        rows = [dict(zip(e[k_keys], e[k_vals])) for e in entries]
        for key, name in zip(layout[kind], df.attrs.get(kind, ())):
            names[name] = all(row.get(key) is None for row in rows)
    names[meta_column(df, "dirty")] = all(e[R.DIRTY] is None for e in entries)
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


def handout(df):
    """A copy of a remembered frame the caller may change freely (lists in cells included)."""
    out = df.copy(deep=False)  # copy-on-write: the columns are shared until either side writes
    for name in out.columns:
        if out[name].dtype == object:
            values = out[name].tolist()
            if any(type(v) is list for v in values):
                out[name] = [list(v) if type(v) is list else v for v in values]
    return out
