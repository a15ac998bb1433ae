"""Example ``indexing`` plugin: every key of a run's ``results.json`` becomes a column.

A script writes ``results.json`` at the end (``exman.fs.atomic_write`` keeps
it whole); ``Index(root, plugins=[results_columns]).info()`` shows
its keys (``test_acc``, ...) beside the params. Install it for good with an ``exman``
entry point.
"""

import json

from exman import hookimpl


@hookimpl
def indexing(run_path, record):
    path = run_path / "results.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return {str(k): v for k, v in data.items()}
