"""``index/<run name>.yaml``: a relative link to each kept run's params file."""

from __future__ import annotations

import os

from exman import hookimpl, layout
from exman.fs import relative_symlink


def link_path(parser, name: str, params_file) -> os.PathLike:
    return parser.index / layout.link_name(name, params_file)


@hookimpl
def on_run_start(run):
    if run.tmp or run.params_file is None:
        return
    link = link_path(run.parser, run.name, run.params_file)
    try:
        relative_symlink(link, run.params_file)
    except FileExistsError:
        # `exman doctor --fix --reindex` may have linked this run a moment ago: the same link is fine.
        if os.path.realpath(link) != os.path.realpath(run.params_file):
            raise
    run.links.append(link)


@hookimpl
def on_fail(run):
    for link in list(run.links):
        try:
            os.unlink(link)
        except FileNotFoundError:
            pass
        run.links.remove(link)
