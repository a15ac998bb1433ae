"""The last full answer of an ``Index``: in memory, in its frame file, and patched.

``Answers`` (one per ``Index``) owns the answer in memory per arguments
(``include_failed``, ``include_tmp``) and the frame files
(``index-frame-*.pickle``: the memo of the files an answer came from, then the
packed frame). ``Index._info`` takes its steps in this order:

1. ``recall``: the last answer, from memory or else from the frame file,
   checked against the files it came from (``exman.index.scan`` stats them);
2. ``patch``: when a few runs changed, only those are read again and their
   rows replaced or added;
3. otherwise the long way (``Index._walk``, ``exman.index.frame.build``), whose
   answer ``keep`` stores.

Nothing here walks the runs itself (``exman.index.scan`` does), writes into the
``Index`` or issues warnings (``Index._info`` does), and pandas is imported only
inside the steps that build or unpack a frame.
"""

from __future__ import annotations

import os
import time

from exman.analysis.columns import meta_column
from exman.index import cache as index_cache
from exman.index import read as R
from exman.index.scan import INDEX_KEY, RACY_SECONDS, Context, live_rows, statuses_now
from exman.layout import FAILS, INDEX, index_entries, run_dirs


def frame_file(folders: tuple) -> str:
    return index_cache.FRAME_FILE.format("+".join((INDEX,) + folders))


class Answer:
    """One full answer and what checks and patches it; the frame file holds the same, packed.

    ``memo``: what ``Context.fast`` compares (every row's link or folder and
    stat key); ``rels``: each row's run folder; ``live``: ``(row, rel,
    recorded status, host, pid)`` of the rows not finished, whose status is
    worked out again on each call; ``messages``: the warnings it came with;
    ``shape``/``layout``: what decides its columns (``exman.index.frame``).
    """

    __slots__ = ("head", "memo", "df", "rels", "live", "messages", "shape", "layout")

    def __init__(self, head: dict, memo: dict, df, rels: list, live: list, messages, shape=None, layout=None):
        self.head = head
        self.memo = memo
        self.df = df
        self.rels = rels
        self.live = live
        self.messages = list(messages)
        self.shape = shape
        self.layout = layout


class Found:
    """What ``Answers.recall`` found.

    ``df``: the answer again, not one file having changed (statuses as of now),
    with the ``messages`` to warn again. Otherwise ``known``, the stat keys
    taken (``{rel: (key, run.json stat)}``, so the long way does not take them
    twice; None when nothing was checked), and ``base``, the last answer for
    ``patch`` (None when there is none).
    """

    __slots__ = ("df", "messages", "known", "base")

    def __init__(self, df=None, messages=(), known=None, base: Answer | None = None):
        self.df = df
        self.messages = messages
        self.known = known
        self.base = base


class Answers:
    """The last full answer per arguments of one ``Index``, in memory and in its frame file."""

    def __init__(self, root):
        self.root = root  # the resolved root, a Path
        self._memory: dict = {}  # folders -> Answer

    # -- 1. recall ---------------------------------------------------------------
    def recall(self, folders: tuple, head: dict, pm) -> Found:
        """The last answer for ``folders`` if not one file it came from changed: from memory, else from disk.

        The check stats every run's files (a finished run can still get a
        metric or a hand edit); from memory it skips reading and unpacking
        the frame file.
        """
        answer = self._memory.pop(folders, None)  # back in memory only if it still holds
        if answer is None or answer.head != head:
            return self._load(folders, head, pm)
        ctx = _context(self.root, pm, head)
        live, known = ctx.fast(answer.memo, folders)
        if live is None:
            return Found(known=known, base=answer)
        self._memory[folders] = answer
        out = handout(answer.df)
        if answer.live:
            _statuses_now(out, answer.live, live.get, ctx.host)
        return Found(out, answer.messages)

    def _load(self, folders: tuple, head: dict, pm) -> Found:
        from exman.index import frame as index_frame

        state, read_tail = index_cache.load_split(self.root, head, frame_file(folders))
        if not state:
            return Found()
        ctx = _context(self.root, pm, head)
        try:
            live, known = ctx.fast(state["memo"], folders)
            tail = read_tail()
            statuses = list(tail["statuses"])
            if live is not None:
                statuses_now(statuses, tail["live"], live.get, ctx.host)
            df = index_frame.unpack(tail["frame"], self.root, tail["rels"], statuses)
        except Exception:  # a memo from another version, a truncated file: take the long way
            return Found()
        df.attrs["root"] = self.root
        answer = Answer(
            head, state["memo"], df, tail["rels"], tail["live"], tail["messages"], tail.get("shape"), tail.get("layout")
        )
        if live is None:
            return Found(known=known, base=answer)
        self._remember(folders, answer)
        return Found(handout(df), answer.messages)

    # -- 2. patch ----------------------------------------------------------------
    def patch(self, folders: tuple, base: Answer, known: dict, pm):
        """``base`` with only the changed runs read again: their rows replaced or added.

        For a few new or changed runs in a large root: no other run is read,
        the frame is not rebuilt, and the per-run cache file is left as it
        was (the long way re-reads what it lacks, by stat). Returns None, for
        the long way, whenever the result could differ from a full build: a
        run that left, a dangling link, a warning, a file in its racy window,
        new columns or declarations, or a column whose type would change.
        """
        if base.shape is None or base.messages or not known:
            return None
        ctx = _context(self.root, pm, base.head)
        changes = _changes(ctx, base.memo, folders, known)
        if changes is None or changes.count > max(100, len(base.rels) // 20):
            return None  # many changes: the long way, which also refreshes the per-run cache file
        read = _read_changed(ctx, changes, known)
        if read is None:
            return None
        rels, entries, statuses = read
        merged = _merged(self.root, base, rels, entries, statuses)
        if merged is None:
            return None
        df, all_rels, shape, layout = merged
        live = _live_rows(base.live, all_rels, rels, entries)
        fresh = set(rels)  # read just now: their statuses are as of now already
        statuses = _statuses_now(
            df, [row for row in live if row[1] not in fresh], lambda rel: known.get(rel, (None, None))[1], ctx.host
        )
        memo = _patched_memo(base.memo, ctx, changes, folders)
        self._store(folders, Answer(base.head, memo, df, all_rels, live, [], shape, layout), statuses)
        return handout(df)

    # -- 3. keep the long way's answer ---------------------------------------------
    def keep(self, folders: tuple, head: dict, ctx: Context, df, rels: list, entries: list, statuses: list):
        """Store the long way's answer when its files allow; return the frame to hand out."""
        from exman.index import frame as index_frame

        memo = ctx.memo(folders)
        if memo is None:
            return df
        shape = index_frame.shape(entries)
        self._store(
            folders,
            Answer(head, memo, df, rels, live_rows(rels, entries), ctx.messages, shape, index_frame.layout_of(shape)),
            statuses,
        )
        return handout(df)

    # -- memory and the frame file -----------------------------------------------------
    def _store(self, folders: tuple, answer: Answer, statuses: list) -> None:
        """Save a full answer in the frame file and in memory."""
        from exman.index import frame as index_frame

        # The memo first: a call that finds a change stops before unpickling the frame.
        index_cache.save(
            self.root,
            answer.head,
            {"memo": answer.memo},
            name=frame_file(folders),
            tail={
                "rels": answer.rels,
                "statuses": statuses,
                "live": answer.live,
                "messages": list(answer.messages),
                "frame": index_frame.pack(answer.df),
                "shape": answer.shape,
                "layout": answer.layout,
            },
        )
        self._remember(folders, answer)

    def _remember(self, folders: tuple, answer: Answer) -> None:
        """Keep ``answer`` in memory: the next call checks the same files, and reads none."""
        index = answer.memo["index"]
        # The paths the check stats, made once per process instead of once per call.
        index = dict(
            index,
            ppaths=[r + "/" + p for r, p in zip(index["rels"], index["pnames"])],
            mpaths=[r + "/" + R.METRICS_FILE for r in index["rels"]],
        )
        answer.memo = dict(answer.memo, index=index)
        self._memory[folders] = answer


def _context(root, pm, head: dict) -> Context:
    """A walk that starts from no cached entry: it checks against a memo, or reads what changed."""
    return Context(os.fspath(root), pm, {}, {}, bool(head["plugins"]))


def _statuses_now(df, live: list, beat, host: str) -> list:
    """Set ``df``'s status column with the ``live`` rows' statuses as of now; return the column's values."""
    from exman.index import frame as index_frame

    column = meta_column(df, "status")
    statuses = statuses_now(df[column].tolist(), live, beat, host)
    df[column] = index_frame._strings(statuses)
    return statuses


# -- the steps of patch ------------------------------------------------------------
class Changes:
    """What changed since a memo: new ``index/`` links, index rows whose files changed
    (re-read through their link), new or changed runs in ``fails/`` or ``tmp/``."""

    __slots__ = ("added", "relinked", "folder_runs", "index_st")

    def __init__(self, added: list, relinked: list, folder_runs: list, index_st):
        self.added = added  # (link key, DirEntry)
        self.relinked = relinked  # (link key, rel)
        self.folder_runs = folder_runs  # (rel, params file path, params name, in fails/)
        self.index_st = index_st  # the index folder's stat, taken before listing it

    @property
    def count(self) -> int:
        return len(self.added) + len(self.relinked) + len(self.folder_runs)


def _changes(ctx: Context, memo: dict, folders: tuple, known: dict) -> Changes | None:
    """The runs to read again; None when a run left or a stat is missing.

    A run that left (deleted, unmarked, a dangling link) takes the long way:
    the rows that stay may type narrower without it (int64, not float64 with
    its NaN).
    """
    root, checks = ctx.root, memo["index"]
    index_st = R.try_stat(root + "/" + INDEX)
    added: list = []
    if memo["listing"] is None or R.stat_key(index_st) != memo["listing"]:
        now_links = {INDEX_KEY + e.name: e for e in index_entries(root)}
        links = set(checks["links"])
        if not links <= now_links.keys():
            return None
        added = [(key, e) for key, e in now_links.items() if key not in links]
    relinked = []
    for link, rel, key in zip(checks["links"], checks["rels"], checks["keys"]):
        now = known.get(rel)
        if now is None:
            return None
        if now[0] != key:
            relinked.append((link, rel))
    folder_runs = []
    for folder in folders:
        rows = memo["folders"][folder]
        present = [folder + "/" + e.name for e in run_dirs(root, folder)]
        if not rows.keys() <= set(present):
            return None
        for rel in present:
            row = rows.get(rel)
            if row is None:
                pname = ctx.params_name(rel)
            else:
                now = known.get(rel)
                if now is None:
                    return None
                if now[0] == row[1]:
                    continue
                pname = row[0]
            folder_runs.append((rel, root + "/" + rel + "/" + pname, pname, folder == FAILS))
    return Changes(added, relinked, folder_runs, index_st)


def _read_changed(ctx: Context, changes: Changes, known: dict):
    """``(rels, entries, statuses)`` of the runs that changed, read; None when the result is unsure."""
    root = ctx.root
    for key, e in changes.added:
        ctx.index_link(key, e.path, e.is_symlink())
    for link, rel in changes.relinked:
        # Through the link: it may point elsewhere now (ln -sf).
        path = root + "/" + link
        ctx.index_link(link, path, os.path.islink(path))
        if ctx.links.get(link, (None,))[0] != rel:
            return None
    for rel, stat_path, pname, failed_dir in changes.folder_runs:
        ctx.read(rel, stat_path, pname, failed_dir=failed_dir)
    if ctx.messages or any(e is None or e[R.KEY] is None for e in ctx.seen.values()):
        return None
    for key, _ in changes.added:
        link = ctx.links.get(key)
        if link is None or link[0] in known:
            return None  # a second link to a run already shown, or a run moved under a new link
    rels, entries, statuses = ctx.result()
    if len(rels) != changes.count:
        return None
    return rels, entries, statuses


def _merged(root, base: Answer, rels: list, entries: list, statuses: list):
    """``(df, rels, shape, layout)``: ``base``'s frame with the rows read replaced or added, in id order.

    None unless the columns, their order, declarations and types come out as a full build would make them.
    """
    from exman.index import frame as index_frame

    old_rels = base.rels
    fresh = set(rels)
    keep = [i for i, rel in enumerate(old_rels) if rel not in fresh]
    replaced = len(keep) < len(old_rels)
    old_shape, new_shape = base.shape, index_frame.shape(entries)
    if replaced:
        shape = {k: [old_shape[k][i] for i in keep] + new_shape[k] for k in old_shape}
    else:
        shape = {k: old_shape[k] + new_shape[k] for k in old_shape}
    layout = base.layout
    if replaced or not _same_as_newest(old_shape, new_shape):
        layout = index_frame.layout_of(shape)
        if layout != base.layout:
            return None
    try:
        rows = index_frame.build(root, rels, entries, statuses, layout=layout)
    except Exception:
        return None
    missing = _missing(base.df, layout, entries)
    old = base.df.iloc[keep].reset_index(drop=True) if replaced else base.df
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
    df.attrs["root"] = root
    return df, all_rels, shape, layout


def _live_rows(old_live: list, all_rels: list, rels: list, entries: list) -> list:
    """The unfinished rows of the patched answer, at their new positions."""
    position = {rel: i for i, rel in enumerate(all_rels)}
    fresh = set(rels)
    rows = [row for row in old_live if row[1] not in fresh] + live_rows(rels, entries)
    return sorted((position[rel], rel, status, host, pid) for _, rel, status, host, pid in rows)


def _same_as_newest(old: dict, new: dict) -> bool:
    """True when ``new`` rows only follow the newest old row with its exact keys and declarations.

    Then the layout cannot change: the newest group of keys stays the newest.
    """
    if not old["ids"] or not new["ids"] or min(new["ids"]) <= max(old["ids"]):
        return False
    last = old["ids"].index(max(old["ids"]))
    return (
        all(all(v == old[k][last] for v in new[k]) for k in ("pkeys", "mkeys", "xkeys", "schemas"))
        and (any(old["commit"]) or not any(new["commit"]))
        and (any(old["slurm"]) or not any(new["slurm"]))
    )


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


def _patched_memo(memo: dict, ctx: Context, changes: Changes, folders: tuple) -> dict:
    """``memo`` with the keys of the runs ``ctx`` read and the links it added."""
    checks = memo["index"]
    index = {k: list(checks[k]) for k in ("links", "rels", "pnames", "keys", "terminal")}
    row = {rel: i for i, rel in enumerate(index["rels"])}
    for key, _ in changes.added:
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
        extra[name] = dict(memo["folders"][name])
        for rel, entry in ctx.entries.items():
            if rel.startswith(name + "/"):
                extra[name][rel] = (entry[R.PARAMS_NAME], entry[R.KEY], entry[R.STATUS] in R.TERMINAL)
    listing = None
    st = changes.index_st
    if st is not None and time.time() - st.st_mtime > RACY_SECONDS:
        listing = R.stat_key(st)
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
