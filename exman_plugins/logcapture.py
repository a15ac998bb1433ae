"""``log.txt``: inside ``safe_experiment``, stdout and stderr are also written to the run.

Python-level tee: output of child processes or C extensions writing to the
file descriptors directly is not captured.
"""

from __future__ import annotations

import os
import sys
from weakref import WeakKeyDictionary

from exman import hookimpl
from exman.fs import open_regular
from exman.layout import LOG_FILE

# run -> (stdout, stderr, log) while its output is captured.
_captured: WeakKeyDictionary = WeakKeyDictionary()


class _Tee:
    def __init__(self, stream, log):
        self._stream = stream
        self._log = log

    def write(self, text):
        n = self._stream.write(text)
        try:
            self._log.write(text)
        except (ValueError, OSError):
            pass  # the log closed or the disk filled: the console still gets it
        return n

    def flush(self):
        self._stream.flush()
        try:
            self._log.flush()
        except (ValueError, OSError):
            pass

    def __getattr__(self, item):
        return getattr(self._stream, item)


@hookimpl
def on_experiment_enter(run):
    try:
        fd = open_regular(run.path / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    except OSError as exc:  # a FIFO planted there would block the run
        print(f"exman: not capturing output into {LOG_FILE}: {exc.strerror}", file=sys.stderr)
        return
    os.set_blocking(fd, True)
    log = os.fdopen(fd, "a", encoding="utf-8", errors="replace", buffering=1)
    _captured[run] = (sys.stdout, sys.stderr, log)
    sys.stdout = _Tee(sys.stdout, log)
    sys.stderr = _Tee(sys.stderr, log)


@hookimpl(tryfirst=True)
def on_run_end(run):
    saved = _captured.pop(run, None)
    if saved is None:
        return
    sys.stdout, sys.stderr, log = saved
    log.close()
