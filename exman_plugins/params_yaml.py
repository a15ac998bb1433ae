"""``params.yaml``: the human-readable record of a run and the ``--config`` format.

Written with PyYAML's C dumper and read with the safe (C) loader only: a
params file can never make exman build arbitrary Python objects.
"""
from __future__ import annotations

import os

import yaml

from exman import hookimpl
from exman.fs import atomic_write
from exman.layout import PARAMS_FILE

Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dumps(data: dict) -> str:
    return yaml.dump(data, Dumper=Dumper, default_flow_style=False, sort_keys=False, allow_unicode=True)


# libyaml's C composer recurses once per nesting level and overflows the C
# stack (a segfault, not an exception) somewhere past 20,000 levels. Each level
# costs at least two bytes, so only longer texts need the depth check first.
SHALLOW_BYTES = 32 << 10
MAX_DEPTH = 1000


def loads(text: str):
    """Safe-load YAML; a nesting bomb raises ValueError instead of crashing the process."""
    if len(text) > SHALLOW_BYTES:
        depth = 0
        # The event parser keeps its state on the heap: it cannot overflow.
        for event in yaml.parse(text, Loader=Loader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    return yaml.load(text, Loader=Loader)


@hookimpl(trylast=True)
def storage(run, params):
    text = dumps(params)
    path = run.path / PARAMS_FILE
    atomic_write(path, text)
    if os.environ.get("EXMAN_PRINT_PARAMS", "1").strip().lower() not in ("0", "no", "false", "off"):
        print(text, end="", flush=True)  # as exman 0.1.9 did; EXMAN_PRINT_PARAMS=0 keeps stdout for the script
    return path


@hookimpl(trylast=True)
def load_params(path):
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:
        data = loads(text)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid YAML"
        raise ValueError(f"not valid YAML ({first})") from None
    if not isinstance(data, dict):
        raise ValueError("expected a mapping of parameter names to values")
    return data
