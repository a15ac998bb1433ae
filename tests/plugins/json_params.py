"""Example plugin: params stored as ``params.json`` instead of YAML."""

import json

from exman import hookimpl
from exman.fs import atomic_write


@hookimpl
def storage(run, params):
    path = run.path / "params.json"
    atomic_write(path, json.dumps(params, indent=1))
    return path


@hookimpl
def load_params(path):
    if path.suffix == ".json":
        return json.loads(path.read_text())
