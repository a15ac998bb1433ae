"""``--tmp``: a debug run goes to ``tmp/``, with no index entry and no marks."""

from __future__ import annotations

from exman import hookimpl


@hookimpl
def add_arguments(parser, group):
    parser.add_exman_argument(
        group, "--tmp", dest="exman_tmp", action="store_true", help="record this run under tmp/, outside the index"
    )


@hookimpl
def location(parser, options):
    if options.get("exman_tmp"):
        return parser.tmp


@hookimpl(trylast=True, specname="location")
def default_location(parser):
    return parser.runs
