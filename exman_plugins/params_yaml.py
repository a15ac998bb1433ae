"""``params.yaml``: the human-readable record of a run and the ``--config`` format.

Written with PyYAML's C dumper and read with the safe (C) loader only: a
params file can never make exman build arbitrary Python objects.
"""

from __future__ import annotations

import os

import yaml

from exman import hookimpl
from exman.fs import atomic_write, read_regular
from exman.layout import PARAMS_FILE, check_duplicate_keys

Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# A params file holds a few hundred values; a few hundred bytes of aliases (a
# "billion laughs") expand to billions, which every reader that walks the values
# would try to hold. The same bound as ``--config``'s (exman.parser).
MAX_VALUES = 1_000_000


class Loader(_BaseLoader):
    """The safe loader, refusing documents whose aliases expand past ``MAX_VALUES``
    values or refer to themselves. Counted on the node graph: linear in the text."""

    def construct_document(self, node):
        _check_expansion(node)
        check_duplicate_keys(node)
        return super().construct_document(node)


class RawLoader(getattr(yaml, "CBaseLoader", yaml.BaseLoader)):
    """Every scalar as written (text): what the command line would have passed."""

    def construct_document(self, node):
        _check_expansion(node)
        return super().construct_document(node)


def retyped(value, text: str) -> bool:
    """Whether YAML's own typing changed a scalar: ``1.10`` -> 1.1, ``0123`` -> 83, ``yes`` ->
    True, a date. What exman itself wrote (``10``, ``0.1``, ``true``) reads back as written."""
    import datetime

    if isinstance(value, (datetime.date, datetime.datetime)):
        return True
    if isinstance(value, (bool, int, float)):
        return yaml.dump(value, Dumper=Dumper).split("\n", 1)[0] != text
    return False


def load_raw(path):
    """The mapping of a YAML params file with its scalars as written, or None."""
    try:
        data = yaml.load(read_regular(path)[0].decode("utf-8"), Loader=RawLoader)
    except Exception:  # only a refinement of load_params, which reported the problem
        return None
    return data if isinstance(data, dict) else None


def _check_expansion(root) -> None:
    sizes: dict = {}  # id(node) -> values it expands to
    open_nodes: set = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            children = _children(node)
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > MAX_VALUES:
                raise ValueError(f"more than {MAX_VALUES:,} values (YAML aliases expanding?); not a params file")
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise ValueError("a YAML alias refers to itself; not a params file")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


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
def params_as_written(path, params):
    raw = load_raw(path)
    if raw is None or len(raw) != len(params):
        return None
    return {key: _as_written(value, text) for value, (key, text) in zip(params.values(), raw.items())}


def _as_written(value, text):
    if isinstance(value, list) and isinstance(text, list) and len(value) == len(text):
        return [_as_written(v, t) for v, t in zip(value, text)]
    if value is None or isinstance(value, (str, list, dict)) or not isinstance(text, str):
        return value
    return text if retyped(value, text) else value


@hookimpl(trylast=True)
def load_params(path):
    try:
        raw = read_regular(path)[0]
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
