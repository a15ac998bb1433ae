"""``git=`` / ``git_assert_clean=``: record ``commit`` and ``dirty``, save ``changes.diff``.

Uses the ``git`` command, not a git library: two short subprocesses cost less
than importing one, and only scripts that ask for git pay them.
"""

from __future__ import annotations

import os
from weakref import WeakKeyDictionary

from exman import hookimpl
from exman.fs import atomic_write
from exman.layout import DIFF_FILE

# parser -> (commit, dirty) of its latest parse, read back when the run is recorded.
_state: WeakKeyDictionary = WeakKeyDictionary()


@hookimpl
def add_settings(register):
    register("git", None)  # True: the working folder's repository; a path: that one
    register("git_assert_clean", False, convert=bool)


def _enabled(parser) -> bool:
    git = parser.settings["git"]
    return git is not None and git is not False or parser.settings["git_assert_clean"]


def _repo(parser) -> str:
    git = parser.settings["git"]
    return os.getcwd() if git in (None, True) else os.fspath(git)


def _git(parser, *args, raw: bool = False):
    """git's output as text, or as bytes with ``raw`` (a diff of non-UTF-8 files)."""
    import subprocess  # only scripts that ask for git pay for it

    try:
        out = subprocess.run(["git", "-C", _repo(parser), *args], capture_output=True, check=False)
    except FileNotFoundError:
        parser.error("git=... was given but the git command is not installed")
    if out.returncode != 0:
        err = out.stderr.decode("utf-8", "replace").strip()
        parser.error(
            f"git=...: {_repo(parser)} is not a usable git repository ({err.splitlines()[-1] if err else out.returncode})"
        )
    return out.stdout if raw else out.stdout.decode("utf-8", "replace")


@hookimpl
def add_arguments(parser, group):
    # Always there, as in 0.1.9: a script run with --git-dirty works with or without git=.
    parser.add_exman_argument(
        group,
        "--git-dirty",
        dest="exman_git_dirty",
        action="store_true",
        help="run even though the git tree has uncommitted changes (with git_assert_clean)",
    )


@hookimpl
def on_parse(parser, options):
    if not _enabled(parser):
        return
    commit = _git(parser, "rev-parse", "HEAD").strip()
    dirty = bool(_git(parser, "status", "--porcelain", "--untracked-files=no").strip())
    _state[parser] = (commit, dirty)
    if dirty and parser.settings["git_assert_clean"] and not options.get("exman_git_dirty"):
        parser.error(f"git tree {_repo(parser)} has uncommitted changes: commit them or pass --git-dirty")


@hookimpl
def collect_params(parser):
    if _enabled(parser):
        commit, dirty = _state[parser]
        return {"commit": commit, "dirty": dirty}


@hookimpl
def on_run_start(run):
    parser = run.parser
    if _enabled(parser) and _state[parser][1]:
        atomic_write(run.path / DIFF_FILE, _git(parser, "diff", "HEAD", raw=True))
