"""Record what a user sees in an exman root, as JSON on stdout.

Run with the interpreter of the exman under test (0.1.9's venv or ours):

    python observe.py '{"root": "/abs/root", "marks": [null, "best"]}'

It prints one JSON object:

- ``tree``: every entry under the root (links not followed): ``dir``,
  ``file`` or ``link:<target>``; ``log.txt`` with its text and
  ``traceback.txt`` with its last line;
- ``params``: every ``params.yaml`` under ``runs/``, ``tmp/`` and ``fails/``,
  key -> repr of the value as YAML loads it (Python tags kept as text);
- ``info``: for each selection (null: ``Index(root).info()``, else
  ``info(mark)``) the columns in order, and per column the dtype, the value
  reprs by row and, for object columns, the Python types of the values; or the
  exception's class name.

Paths, times and addresses are left as they are: the test normalises them.
This file must run unchanged on Python 3.9+ under exman 0.1.9 and ours.
"""

import datetime
import json
import math
import os
import pathlib
import sys

import yaml


class _Loader(yaml.SafeLoader):
    pass


def _tagged(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return "!" + suffix + " " + repr(value)


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", _tagged)


def tree(root):
    out = {}
    if not root.exists():
        return {".": "missing"}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = pathlib.Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                out[rel] = "dir"
            elif name == "log.txt":
                out[rel] = "file:" + path.read_text(errors="replace")
            elif name == "traceback.txt":
                lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
                out[rel] = "file, last line: " + (lines[-1] if lines else "")
            else:
                out[rel] = "file"
        dirs[:] = [d for d in dirs if not (pathlib.Path(folder) / d).is_symlink()]
    return out


def params(root):
    out = {}
    for place in ("runs", "tmp", "fails"):
        for path in sorted((root / place).glob("*/params.yaml")):
            rel = path.relative_to(root).as_posix()
            try:
                data = yaml.load(path.read_text(), Loader=_Loader)
            except Exception as exc:
                out[rel] = {"<error>": type(exc).__name__}
                continue
            if not isinstance(data, dict):
                out[rel] = {"<not a mapping>": repr(data)}
                continue
            out[rel] = {str(k): repr(v) for k, v in data.items()}
    return out


def cell(value):
    if value is None:
        return "None"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if type(value).__name__ in ("NaTType",):
        return "NaT"
    if isinstance(value, datetime.datetime):
        return "<datetime>"
    if isinstance(value, pathlib.PurePath):
        return f"Path({value})"
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return repr(value)


def info(exman, root, selection):
    try:
        index = exman.Index(str(root))
        df = index.info() if selection is None else index.info(selection)
    except Exception as exc:
        return {"error": type(exc).__name__}
    columns = {}
    for name in df.columns:
        series = df[name]
        values = series.tolist()
        column = {"dtype": str(series.dtype), "values": [cell(v) for v in values]}
        if str(series.dtype) in ("object", "str", "string", "category"):
            column["types"] = sorted({type(v).__name__ for v in values})
        columns[str(name)] = column
    return {"order": [str(c) for c in df.columns], "rows": len(df), "columns": columns}


def main():
    spec = json.loads(sys.argv[1])
    root = pathlib.Path(spec["root"])
    out = {"tree": tree(root), "params": params(root)}
    if spec.get("marks") is not None:
        import pandas

        import exman

        out["info"] = {}
        for selection in spec["marks"]:
            out["info"]["info()" if selection is None else f"info({selection!r})"] = info(exman, root, selection)
        out["_meta"] = {"pandas": pandas.__version__}
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
