"""Run numbers: claimed by an exclusive ``mkdir`` of ``.exman/ids/<n>``.

``mkdir`` is atomic on local and network file systems, so two processes (or
hosts) never claim the same number, and the claim is on the number itself, not
on a folder name that also carries a time. A hint file holding the last number
handed out keeps the cost of a claim constant however many runs the root has.
"""

from __future__ import annotations

import os

from exman import hookimpl, layout
from exman.fs import atomic_write, read_text


def _ids(parser):
    return parser.root / layout.STATE / layout.IDS


def _hint(parser) -> int:
    """Last number known to be taken; a full scan when the hint is missing, or when run
    folders changed since exman last made one (exman 0.1.9 writing to the same root
    numbers its runs from the folders alone)."""
    if layout.folders_changed(parser.root):
        return _scan(parser)
    try:
        hint = int(read_text(parser.root / layout.STATE / layout.LAST_ID))
    except (OSError, ValueError):
        return _scan(parser)
    # The hint always names a claimed number; a damaged one (negative, huge) is not trusted.
    return hint if hint >= 0 and (_ids(parser) / str(hint)).is_dir() else _scan(parser)


def _scan(parser) -> int:
    return layout.highest_number(parser.root)


@hookimpl(trylast=True)
def peek_id(parser) -> int:
    """The number the next claim would get, without claiming it."""
    number = _hint(parser) + 1
    ids = _ids(parser)
    while (ids / str(number)).exists():
        number += 1
    return number


@hookimpl(trylast=True)
def claim_id(parser):
    ids = _ids(parser)
    if not ids.is_dir():
        ids.mkdir(parents=True, exist_ok=True)
        hint = _scan(parser)  # a root made by exman 0.1.9 has numbers but no claims
    else:
        hint = _hint(parser)
    number = hint + 1
    while True:
        try:
            os.mkdir(ids / str(number))
            break
        except FileExistsError:
            number += 1
    try:
        atomic_write(parser.root / layout.STATE / layout.LAST_ID, str(number))
    except OSError:
        pass  # only a hint
    return number
