"""Run folder names: ``<number zero-filled>-<YYYY-mm-dd-HH-MM-SS>[-<name>]``, ``--name`` and ``zfill=``."""

from __future__ import annotations

from exman import hookimpl
from exman.fs import check_component
from exman.layout import TIME_FORMAT_DIR


@hookimpl
def add_settings(register):
    register("zfill", 6, convert=int)


@hookimpl
def add_arguments(parser, group):
    parser.add_exman_argument(
        group, "--name", dest="exman_name", default=None, metavar="NAME", help="suffix for the run folder name"
    )


@hookimpl
def on_parse(parser, options):
    name = options.get("exman_name")
    if name is not None:
        if not isinstance(name, str):  # from --config: `name: 5` or a list
            parser.error(f"--name {name!r} must be text (quote it in the params file)")
        try:
            check_component(name, "--name")
        except ValueError as exc:
            parser.error(str(exc))


@hookimpl(trylast=True)
def naming(parser, number, time, name):
    folder = f"{number:0{parser.settings['zfill']}d}-{time.strftime(TIME_FORMAT_DIR)}"
    if name:
        folder += "-" + name
    return folder
