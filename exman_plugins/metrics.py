"""``metrics.jsonl``: one JSON object per ``run.log(...)`` call.

Each row is a single ``write`` on a file opened in append mode, so a killed
process leaves at worst one truncated last line, which readers skip.
"""
from __future__ import annotations

import json
import os

from exman import hookimpl
from exman.layout import METRICS_FILE


@hookimpl
def on_log(run, row):
    line = json.dumps(row, ensure_ascii=False, allow_nan=True) + "\n"
    fd = os.open(run.path / METRICS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
