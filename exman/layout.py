"""The on-disk format of an exman root, in one place.

Folder and file names, the run-folder pattern and the keys exman itself
writes into a params file are spelled here and nowhere else; so are walking
the run folders of a root and reading a run's ``run.json`` and params. The
format is exman 0.1.9's, extended: a root written by both versions in turn
stays one root (see docs/compat.md).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
from pathlib import Path

from exman.fs import check_component

# -- names ---------------------------------------------------------------------
FOLDER_DEFAULT = "exman"  # simpleroot(): <script folder>/exman
RUNS, INDEX, MARKED, TMP, FAILS = "runs", "index", "marked", "tmp", "fails"
FOLDERS = (RUNS, INDEX, MARKED, TMP, FAILS)
RUN_FOLDERS = (RUNS, TMP, FAILS)  # the folders that hold run folders; runs/ first
STATE = ".exman"  # exman's own bookkeeping (id claims, caches)
SWEEPS = "sweeps"  # <sweep id>.yaml specs, and <sweep id>/ for a running sweep's owner lock and launcher files
IDS = "ids"  # in STATE: one folder per claimed run number
LAST_ID = "last_id"  # in STATE: the last number handed out (a hint)
LOCK = "lock"  # 0.1.9's FileLock file: held while a run number is chosen and its folder made

PARAMS_FILE = "params.yaml"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
LOG_FILE = "log.txt"
TRACEBACK_FILE = "traceback.txt"
DIFF_FILE = "changes.diff"

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # params.yaml's time
TIME_FORMAT_DIR = "%Y-%m-%d-%H-%M-%S"  # in a run folder's name
# <number zero-filled>-<YYYY-mm-dd-HH-MM-SS>[-<--name>]
RUN_NAME = re.compile(r"^(\d+)-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}(?:-.*)?$")

# -- exman's own keys in a params file ---------------------------------------------
# Written by exman over any script argument of that name; never restored by --config.
RECORDED_KEYS = ("root", "time", "id", "commit", "dirty")
# 0.1.9's own options, recorded under these keys: key -> dest of exman's option.
# A script that defines an argument with one of these dests owns the key instead.
OPTION_KEYS = {"tmp": "exman_tmp", "git_dirty": "exman_git_dirty", "name": "exman_name", "config_file": "exman_config"}
OWN_KEYS = RECORDED_KEYS + tuple(OPTION_KEYS)

# The metadata columns of Index.info(), in order.
META_COLUMNS = ("status", "start", "end", "duration", "sweep", "sweep_cell", "host", "user")
GIT_COLUMNS = ("commit", "dirty")
# Where SLURM ran a run (run.json's "slurm"); only when some run of the frame has one, like git's.
SLURM_COLUMNS = ("slurm_job", "slurm_task", "slurm_node", "slurm_restart")
# exman's own columns as in 0.1.9: a parameter of that name gets the suffix _param (0.1.9 overwrote it).
BASE_COLUMNS = ("id", "root", "time")


class RootFolders:
    """The ``FOLDERS`` of ``self.root`` as properties (``ExParser`` and ``Index`` have them)."""

    runs = property(lambda self: self.root / RUNS)
    index = property(lambda self: self.root / INDEX)
    marked = property(lambda self: self.root / MARKED)
    tmp = property(lambda self: self.root / TMP)
    fails = property(lambda self: self.root / FAILS)


def is_root(path: str | os.PathLike) -> bool:
    """A folder exman made: it has ``runs/`` and ``index/`` folders."""
    path = Path(path)
    return (path / RUNS).is_dir() and (path / INDEX).is_dir()


def not_a_root(path: str | os.PathLike) -> str:
    """The error for a ``path`` that ``is_root`` refuses."""
    return f"{path} is not an exman root (no {RUNS}/ and {INDEX}/ folders)"


def root_in(folder: str | os.PathLike) -> Path | None:
    """The root ``folder`` means: itself, its ``exman/`` (a project folder), or the
    nearest folder above it that is one (``cd exman/runs``, a run folder).
    """
    folder = Path(folder).expanduser().resolve()
    for candidate in (folder, folder / "exman", *folder.parents):
        if is_root(candidate):
            return candidate
    return None


def find_root(explicit: str | os.PathLike | None = None) -> Path | None:
    """--root, else $EXMAN_ROOT, else the current folder or ./exman or a folder above."""
    for candidate in (explicit, os.environ.get("EXMAN_ROOT")):
        if candidate and is_root(candidate):
            return Path(candidate).resolve()
    return root_in(".")


def create(root: Path, *, shared: bool = False) -> None:
    """Make the root and its ``FOLDERS`` (missing parents too, as 0.1.9 did); with ``shared``,
    group-writable and setgid, claim folders included. A file in the way is refused."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"exman root {root} exists and is not a folder")
    if not root.parent.is_dir():
        # $SCRATCH/project/exman on first use: made; a file on the way is refused.
        above = next(p for p in root.parents if os.path.lexists(p))
        if not above.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(above))
        os.makedirs(root.parent, exist_ok=True)
    from exman.fs import check_layout_folder

    for folder in (root, *(root / sub for sub in FOLDERS)):
        try:
            os.mkdir(folder)
        except FileExistsError:
            check_layout_folder(folder, root)  # a file, or a symlink leading outside the root, is refused
        if shared:
            _share(folder)
    for folder in (root / STATE, root / STATE / IDS):  # ids/: every run claims its number there
        if os.path.lexists(folder):
            check_layout_folder(folder, root)
    if shared:
        # Claim folders made before the root was shared must take claims from the whole group.
        for folder in (root / STATE, root / STATE / IDS):
            if folder.is_dir():
                _share(folder)


def _share(folder: Path) -> None:
    try:
        os.chmod(folder, 0o2775)
    except PermissionError:
        pass  # another team member owns it; their mode stands


def run_number(name: str) -> int | None:
    """The run number of a run folder's name, or None for anything else."""
    m = RUN_NAME.match(name)
    return int(m.group(1)) if m else None


def run_dirs(root, folder: str):
    """``os.DirEntry`` of every run folder in ``root/folder``, whatever its name (a ``naming``
    plugin need not number them): real folders (not symlinks) whose name has no leading dot
    (atomic writes' temp files). Nothing when the folder is missing; another error is raised."""
    for entry in _listing(os.path.join(root, folder), FileNotFoundError):
        if entry.name[0] != "." and entry.is_dir(follow_symlinks=False):
            yield entry


def run_folders(root, folders=RUN_FOLDERS):
    """``(folder, number, os.DirEntry)`` of every numbered run folder under ``folders`` of ``root``
    (the folders 0.1.9 numbered its runs from). Symlinks are not run folders; a missing or
    unreadable folder has none."""
    for folder in folders:
        for entry in _listing(os.path.join(root, folder)):
            m = RUN_NAME.match(entry.name)
            if m and entry.is_dir(follow_symlinks=False):
                yield folder, int(m.group(1)), entry


def highest_number(root) -> int:
    """The largest run number taken in ``root``: claims in ``.exman/ids/`` and the names in
    ``runs/``, ``tmp/``, ``fails/``, links and files included (0.1.9 numbered from names alone)."""
    top = 0
    for folder in (os.path.join(STATE, IDS), *RUN_FOLDERS):
        for entry in _listing(os.path.join(root, folder)):
            number = run_number(entry.name)
            if number is None and entry.name.isdigit():
                number = int(entry.name)  # a claim
            if number is not None:
                top = max(top, number)
    return top


def _listing(path, missing=OSError):
    """``os.DirEntry`` of ``path``'s entries; none when listing it raises ``missing``."""
    try:
        entries = os.scandir(path)
    except missing:
        return
    with entries:
        yield from entries


# -- index/ and marked/ ------------------------------------------------------------------


def link_name(run_name: str, params_file) -> str:
    """The name of a run's ``index/`` link: the run folder's name with its params file's suffix."""
    return run_name + Path(params_file).suffix


def linked_run_name(entry_name: str) -> str:
    """The run folder's name an ``index/`` entry is named after (``link_name`` undone);
    "" for a name without a suffix."""
    return entry_name.rpartition(".")[0]


def index_entries(root):
    """``os.DirEntry`` of every ``index/`` entry but hidden ones (temp files): exman's links
    to params files, or copies of them made without links (``cp -L``). Errors are raised."""
    with os.scandir(os.path.join(root, INDEX)) as entries:
        for entry in entries:
            if entry.name[0] != ".":
                yield entry


def copied_index_entry(root, entry_name: str) -> tuple[str, str]:
    """``(run folder, params file name)`` of an ``index/`` entry that is a copy, not a link:
    the run folder of that name in ``runs/``, its params file of that suffix."""
    stem, ext = os.path.splitext(entry_name)
    return os.path.join(root, RUNS, stem), os.path.splitext(PARAMS_FILE)[0] + ext


def walk_links(top, on_error=None):
    """``(key, os.DirEntry)`` of every symlink below ``top`` (``marked/`` or a mark), links
    never followed; ``key`` is its path below ``top`` with ``/``. Every name counts: an
    automark value like ``./data`` makes a mark folder named ``._data``. A folder that cannot
    be listed is passed to ``on_error(path, OSError)``, or skipped."""
    stack = [(os.fspath(top), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError as exc:
            if on_error is not None:
                on_error(folder, exc)
            continue
        with entries:
            for entry in entries:
                key = prefix + entry.name
                if entry.is_symlink():
                    yield key, entry
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, key + "/"))


def mark_keys(root) -> list:
    """Every mark key (a folder below ``marked/``, ``a/b`` for nested ones), links not followed."""
    marked = os.path.join(root, MARKED)
    keys = []
    for folder, dirs, _ in os.walk(marked, followlinks=False):
        for d in dirs:
            path = os.path.join(folder, d)
            if not os.path.islink(path):
                keys.append(os.path.relpath(path, marked).replace(os.sep, "/"))
    return sorted(keys)


# -- reading a run ---------------------------------------------------------------------


# The type each run.json field must have; a hand-damaged field of another type is dropped
# when read, so every command can trust what it gets.
RUN_JSON_TYPES: dict = {
    "status": str,
    "id": int,
    "name": str,
    "start": str,
    "end": str,
    "duration": (int, float),
    "pid": int,
    "host": str,
    "user": str,
    "cwd": str,
    "python": str,
    "exman": str,
    "executable": str,
    "argv": list,
    "params": dict,
    "extra": dict,
    "schema": dict,
    "params_stat": list,
    "sweep": str,
    "sweep_cell": (str, int),
    "boot_id": str,
    "pid_ns": int,
    "tmp": bool,
    "params_file": str,
    "format": int,
}


def typed_meta(meta) -> dict:
    """``meta`` (a parsed run.json) without the fields whose type is wrong; {} for a non-dict."""
    if not isinstance(meta, dict):
        return {}
    out = {}
    for key, value in meta.items():
        want = RUN_JSON_TYPES.get(key)
        if want is not None and value is not None:
            if isinstance(value, bool) and want is not bool:
                continue
            if not isinstance(value, want):
                continue
            if key == "argv" and not all(isinstance(a, str) for a in value):
                continue
            if isinstance(value, int) and not -(1 << 62) < value < 1 << 62:
                continue  # no table column holds it
        out[key] = value
    return out


# run.json is one line of ``json.dumps`` (``runinfo.write_record``) with the schema just before
# params_file: a reader that knows a schema's exact bytes can leave them unparsed.
SCHEMA_KEY, AFTER_SCHEMA = b'"schema": ', b', "params_file": '
_JSON = json.JSONDecoder()


def run_json_bytes(folder) -> tuple:
    """``(bytes, stat)`` of a run's ``run.json``; ``OSError`` when missing or not a regular file."""
    from exman.fs import read_regular

    return read_regular(os.path.join(folder, RUN_FILE))


def parse_run_json(data: bytes, skip_schema=None) -> tuple:
    """``(run.json parsed as written, the exact bytes of its schema or None)``; ``ValueError``
    when it is not JSON. With ``skip_schema(schema bytes)`` true the schema is not parsed:
    the caller has them summarised already, and gets ``"schema": None``."""
    schema = None
    start = data.find(SCHEMA_KEY)
    end = data.rfind(AFTER_SCHEMA)
    if 0 <= start < end and data.count(SCHEMA_KEY) == 1 and data.count(AFTER_SCHEMA) == 1:
        schema = data[start:end]
        if skip_schema is not None and skip_schema(schema):
            data = data[:start] + b'"schema": null' + data[end:]
    return _JSON.decode(data.decode("utf-8")), schema  # UnicodeDecodeError is a ValueError too


def read_run_json(folder, mentions: str | None = None) -> dict:
    """A run's ``run.json``, or {} for a 0.1.9 run, a half-written or damaged one (a FIFO
    or a device there too); fields of the wrong type are left out (``runinfo.typed_meta``).
    With ``mentions``, {} too when that text is not in the file: it is not parsed."""
    try:
        data = run_json_bytes(folder)[0]
        if mentions is not None and mentions.encode("utf-8") not in data:
            return {}
        return typed_meta(parse_run_json(data)[0])
    except (OSError, ValueError):
        return {}


def params_name(folder) -> str:
    """The name of a run's params file, the quick way for a run not read before:
    ``params.yaml`` when it is there, else the one ``run.json`` names."""
    if os.path.exists(os.path.join(folder, PARAMS_FILE)):
        return PARAMS_FILE
    return params_path(folder, read_run_json(folder)).name


def params_path(folder, meta: dict | None = None) -> Path:
    """The params file of a run: the one ``run.json`` names (a storage plugin may write
    JSON or TOML), else ``params.yaml``."""
    name = (meta or {}).get("params_file")
    if isinstance(name, str):
        try:
            # a plain name: no '/', '..', NUL or control character
            return Path(folder) / check_component(name, "params_file")
        except ValueError:
            pass
    return Path(folder) / PARAMS_FILE


def read_params(pm, folder, meta: dict | None = None) -> dict:
    """A run's params file as written, through the ``load_params`` hook; {} when unreadable."""
    if meta is None:
        meta = read_run_json(folder)
    try:
        data = pm.hook.load_params(path=params_path(folder, meta))
    except Exception:  # a damaged file or a third-party loader's bug must not stop a command
        return {}
    return {str(k): v for k, v in data.items()} if isinstance(data, dict) else {}


def check_duplicate_keys(root) -> None:
    """Refuse a YAML node graph holding a mapping that gives a key twice: YAML forbids it, and PyYAML
    would keep the last silently (a hand-edited ``lr`` given twice ran with whichever came last).
    For params files and local config files alike."""
    import yaml

    seen_nodes: set = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            keys = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if (key.tag, key.value) in keys:
                        raise ValueError(f"the key {key.value!r} is given twice (line {key.start_mark.line + 1})")
                    keys.add((key.tag, key.value))
                stack.extend((key, value))


def split_params(params: dict, schema: dict | None = None) -> tuple[dict, dict]:
    """``(the script's own params, exman's keys)`` of a params dict.

    An option key (``name``, ``tmp``, ...) is the script's own when its schema
    declares that dest.
    """
    declared = set(schema or ())
    own, extra = {}, {}
    for key, value in params.items():
        if key in RECORDED_KEYS or (key in OPTION_KEYS and key not in declared):
            extra[key] = value
        else:
            own[key] = value
    return own, extra


# -- choosing run numbers alongside exman 0.1.9 ------------------------------------------


class claim_lock:
    """Hold ``root/lock`` as 0.1.9 did (an exclusive ``flock``, what its FileLock takes)
    while a number is chosen and its run folder made, so a 0.1.9 script writing to the
    same root waits and then sees the new folder. Best effort: a file system without
    locks still gets exman's own exclusive id claims."""

    def __init__(self, root):
        self.path = os.path.join(root, LOCK)
        self.fd = None

    def __enter__(self):
        try:
            # O_NOFOLLOW: a lock planted as a link to a missing file elsewhere would be created there.
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
            self.fd = os.open(self.path, flags, 0o666)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None
        return False


FOLDERS_SEEN = "folders"  # in STATE: folders_state() as exman last left it


def folders_state(root) -> list:
    """What changes when anyone adds a run folder: per run folder ``[inode, mtime_ns, links, size]``
    (a new entry bumps the mtime, and the link count or the size, whichever the file system keeps)."""
    state: list = []
    for folder in RUN_FOLDERS:
        try:
            st = os.stat(os.path.join(root, folder))
            state.append([st.st_ino, st.st_mtime_ns, st.st_nlink, st.st_size])
        except OSError:
            state.append(None)
    return state


def note_folders(root) -> None:
    """Remember the run folders' state; called under ``claim_lock`` right after exman made a run folder."""
    from exman.fs import atomic_write

    try:
        atomic_write(os.path.join(root, STATE, FOLDERS_SEEN), json.dumps(folders_state(root)))
    except OSError:
        pass  # only a hint: the next claim scans


def folders_changed(root) -> bool:
    """Whether a run folder may have appeared since exman last made one (under ``claim_lock``):
    then the claim must look at every run folder, as 0.1.9 made its numbers from them."""
    from exman.fs import read_text

    try:
        seen = json.loads(read_text(os.path.join(root, STATE, FOLDERS_SEEN)))  # a FIFO there must not block
    except (OSError, ValueError):
        return True
    return seen != folders_state(root)


def leads_outside(root, link) -> bool:
    """Whether the symlink ``link`` (in ``index/`` or ``marked/``) names a path outside ``root``.

    Read as written, not resolved: a root whose ``runs/`` is itself a link to bigger storage still
    holds its runs, while a link planted to lead elsewhere (or an absolute one from a root since
    copied) does not name a run of this root."""
    try:
        target = os.readlink(link)
    except OSError:
        return False
    where = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(link)), target))
    return not where.startswith(os.path.normpath(os.path.abspath(root)).rstrip(os.sep) + os.sep)


def symlinked_layout(root) -> list:
    """The folders of ``root`` exman writes into that are symlinks."""
    return [name for name in (*FOLDERS, STATE, SWEEPS) if os.path.islink(os.path.join(root, name))]
