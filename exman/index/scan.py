"""Which runs an ``Index`` call covers, checked against the cache file by file.

This module owns which runs a call walks (the ``index/`` links, a mark's
subtree, ``fails/`` and ``tmp/``, listed by ``exman.layout``'s walkers, which
know the format), the per-run cache check, the memo a later
call uses to trust a whole answer again, and run statuses as of now. It
collects warning messages but never issues them (``exman.index`` does), reads
one run only through ``exman.index.read``, and never imports pandas.

Cache check per run, in system calls: the params file (through the index
link when ``index/`` changed), ``metrics.jsonl``, plus ``run.json`` while the
run has not reached a final status, plus the run folder when an ``indexing``
plugin is installed. Finished runs are checked too: a metric appended later or
a hand edit of ``params.yaml`` must show on the next call.
"""

from __future__ import annotations

import os
import time

from exman import fs, layout
from exman.index import read as R
from exman.runinfo import live_status

# A file modified less than this long ago may change again within the same
# mtime tick (coarse on NFS), unseen by its stat: such entries are re-read next
# call instead of trusted (git's "racy clean" rule).
RACY_SECONDS = 2.0

EXTRA_FOLDERS = (layout.FAILS, layout.TMP)
# Link keys in the cache: the link's path below the root.
INDEX_KEY, MARKED_KEY = layout.INDEX + "/", layout.MARKED + "/"
_METRICS, _RUN = "/" + layout.METRICS_FILE, "/" + layout.RUN_FILE  # made once: the warm check's hot loop


def folders(include_failed: bool, include_tmp: bool) -> tuple:
    return tuple(name for name, on in zip(EXTRA_FOLDERS, (include_failed, include_tmp)) if on)


def indexing_plugins(pm) -> list:
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


class Context:
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
        # Taken before listing: a link added during the walk changes it after this.
        self.index_stat = R.try_stat(os.path.join(self.root, layout.INDEX))
        links, seen_links = self.links, self.seen_links
        for e in layout.index_entries(self.root):
            key = INDEX_KEY + e.name
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
            folder, pname = layout.copied_index_entry(self.root, os.path.basename(path))
            stat_path = os.path.join(folder, pname)
        pst = R.try_stat(stat_path)
        # A link leading out of the root (planted there, or absolute from a root since copied) never
        # brings in a folder from elsewhere: as for a root that moved, the run of that name here counts.
        outside = is_link and not folder.startswith(self.root + os.sep) and layout.leads_outside(self.root, path)
        if pst is None or outside:
            # An absolute link made before the root moved: the run may still be here.
            moved = os.path.join(self.root, layout.RUNS, os.path.basename(folder))
            pst = R.try_stat(os.path.join(moved, pname)) if moved != folder else None
            if pst is None:
                where = "outside the root" if outside else "to a missing file"
                self.messages.append(
                    f"exman: index link {path} points {where} ({target if is_link else stat_path}); skipped"
                )
                return
            folder, stat_path = moved, os.path.join(moved, pname)
        rel = self.rel(folder)
        self.links[key] = (rel, pname)
        self.changed = True
        self.read(rel, stat_path, pname, pst=pst)

    def scan_mark(self, source: str) -> str:
        """Walk ``marked/<source>``; return the link-key prefix it covers."""
        parts = fs.check_relative_key(source, "mark")
        start = os.path.join(self.root, layout.MARKED, *parts)
        prefix = MARKED_KEY + "/".join(parts)
        if os.path.islink(start):
            self.mark_link(prefix, start)
            return prefix
        if not os.path.isdir(start):
            raise KeyError(source)

        def unlisted(folder, exc):
            self.messages.append(f"exman: cannot list mark folder {folder}: {exc.strerror}")

        for key, e in layout.walk_links(start, unlisted):
            self.mark_link(prefix + "/" + key, e.path)
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
        if layout.leads_outside(self.root, path):  # as for index links: only a run of this root
            moved = os.path.join(self.root, layout.RUNS, os.path.basename(folder))
            if not os.path.isdir(moved):
                self.messages.append(f"exman: mark {path} points outside the root ({target}); skipped")
                return
            folder = moved
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
        for e in layout.run_dirs(self.root, name):
            rel = name + "/" + e.name
            pname = self.params_name(rel)
            stat_path = e.path + "/" + pname
            if not self.check(rel, stat_path, pname):
                self.read(rel, stat_path, pname, failed_dir=name == layout.FAILS)

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
            mst = stat(folder + _METRICS)
            mkey = (mst.st_ino, mst.st_mtime_ns, mst.st_size)
        except OSError:
            mkey = R.NO_FILE
        jst = None if terminal else R.try_stat(folder + _RUN)
        dkey = R.stat_key(R.try_stat(folder)) if self.plugins else R.NO_FILE
        return hash(((pst.st_ino, pst.st_mtime_ns, pst.st_size), mkey, R.stat_key(jst), dkey)), jst

    def read(self, rel: str, stat_path: str, pname: str, pst=None, failed_dir: bool = False) -> None:
        folder = self.root + "/" + rel
        if pst is None:
            pst = R.try_stat(stat_path)
        dkey = R.stat_key(R.try_stat(folder)) if self.plugins else R.NO_FILE
        entry, mst, jst = R.read_run(
            folder,
            os.path.basename(rel),
            pname,
            pst,
            pm=self.pm,
            intern=self.intern,
            previous=self.entries.get(rel),
            plugins=self.plugins,
            failed_dir=failed_dir,
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
            return folder[len(root) + 1 :]
        return os.path.relpath(folder, root)

    def params_name(self, rel: str) -> str:
        entry = self.entries.get(rel)
        if entry is not None:
            return entry[R.PARAMS_NAME]
        return layout.params_name(os.path.join(self.root, rel))

    # -- the memo of the last full answer ------------------------------------
    def memo(self, folders: tuple):
        """What ``fast`` needs to trust a packed frame again: every row's link or folder, and key."""
        # Parallel lists: they unpickle several times faster than one tuple per run.
        index: dict[str, list] = {"links": [], "rels": [], "pnames": [], "keys": [], "terminal": []}
        for link in self.seen_links:
            known = self.links.get(link)
            entry = self.entries.get(known[0]) if known is not None else None
            if known is None or entry is None or entry[R.KEY] is None:
                return None  # dangling, racy or unreadable: not worth a memo
            index["links"].append(link)
            index["rels"].append(known[0])
            index["pnames"].append(self.intern(known[1]))
            index["keys"].append(entry[R.KEY])
            index["terminal"].append(entry[R.STATUS] in R.TERMINAL)
        extra: dict[str, dict] = {name: {} for name in folders}
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
        if listing is not None and R.stat_key(R.try_stat(self.root + "/" + layout.INDEX)) == listing:
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
        mpaths = checks.get("mpaths") or [r + _METRICS for r in rels]
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
                        jst = stat(rel + _RUN, dir_fd=fd)
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
        for e in layout.index_entries(root):
            check = checks.get(INDEX_KEY + e.name)
            if check is None:
                same = False
                continue
            seen += 1
            rel, pname, key, terminal = check
            now = key_now(rel, e.path if e.is_symlink() else root + "/" + rel + "/" + pname, terminal)
            same = _unchanged(rel, now, key, terminal, live, known) and same
        return same and seen == len(checks)

    def fast_folder(self, folder: str, checks: dict, live: dict, known: dict) -> bool:
        """The same for ``fails/`` or ``tmp/``, whose runs have no links."""
        seen, same = 0, True
        for e in layout.run_dirs(self.root, folder):
            rel = folder + "/" + e.name
            check = checks.get(rel)
            if check is None:
                same = False
                continue
            seen += 1
            pname, key, terminal = check
            now = self.key_now(rel, e.path + "/" + pname, terminal)
            same = _unchanged(rel, now, key, terminal, live, known) and same
        return same and seen == len(checks)

    # -- the answer ---------------------------------------------------------
    def result(self):
        """``(rels, entries, statuses as of now)`` of the runs seen, sorted by id."""
        pairs = [(rel, e) for rel, e in self.seen.items() if e is not None]
        pairs.sort(key=lambda p: (p[1][R.ID], p[1][R.NAME]))
        rels, entries = [p[0] for p in pairs], [p[1] for p in pairs]
        statuses = statuses_now([e[R.STATUS] for e in entries], live_rows(rels, entries), self.run_stats.get, self.host)
        return rels, entries, statuses


def live_rows(rels: list, entries: list) -> list:
    """``(row, rel, recorded status, host, pid)`` of the runs not finished: their status can still change."""
    terminal = R.TERMINAL
    return [
        (i, rel, e[R.STATUS], e[R.HOST], e[R.PID])
        for i, (rel, e) in enumerate(zip(rels, entries))
        if e[R.STATUS] not in terminal
    ]


def statuses_now(statuses: list, live: list, beat, host: str) -> list:
    """``statuses`` with each ``live`` row's status worked out as of now (``exman.runinfo.live_status``).

    ``beat(rel)`` is the stat of the run's ``run.json`` (its heartbeat), None
    without one; ``host`` is this machine's name. Every answer, read or
    remembered, gets its statuses here.
    """
    now = time.time()
    for i, rel, status, run_host, pid in live:
        st = beat(rel)
        statuses[i] = live_status(status, run_host, pid, st.st_mtime if st else None, now, host)
    return statuses


def _unchanged(rel: str, now, key, terminal: bool, live: dict, known: dict) -> bool:
    """Record ``rel``'s fresh key in ``known`` (and its run.json stat in ``live`` while it
    runs); True when the key still matches the remembered one."""
    known[rel] = now
    if now is None or now[0] != key:
        return False
    if not terminal:
        live[rel] = now[1]
    return True
