"""``metrics.jsonl``: one JSON object per ``run.log(...)`` call.

Each row is a single ``write`` on a file opened in append mode, so a killed
process leaves at worst one truncated last line, which readers skip. A write
that a full disk cuts short is undone and raises ``OSError``: no row is ever
cut in the middle of the file.
"""

from __future__ import annotations

import json
import os

from exman import hookimpl
from exman.layout import METRICS_FILE

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@hookimpl
def on_log(run, row):
    data = (json.dumps(row, ensure_ascii=False, allow_nan=True) + "\n").encode("utf-8")
    # Relative to the run's folder handle: a root renamed while the run trains keeps its metrics.
    # O_NONBLOCK: a FIFO planted here is refused at once instead of blocking the run.
    path = METRICS_FILE if run.dir_fd is not None else run.path / METRICS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | _CLOEXEC, 0o666, dir_fd=run.dir_fd)
    try:
        append_whole(fd, data)
    finally:
        os.close(fd)


def append_whole(fd: int, data: bytes) -> None:
    """Append ``data`` whole or not at all: a full disk cuts a write short, and the cut row
    would swallow the next one. On an error the part written is cut off again."""
    done = 0
    try:
        while done < len(data):
            n = os.write(fd, data[done:])
            if n <= 0:
                raise OSError(28, "No space left on device")
            done += n
    except OSError:
        if done:
            try:
                os.ftruncate(fd, os.fstat(fd).st_size - done)
            except OSError:
                pass
        raise
