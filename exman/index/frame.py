"""Turning index entries into one typed DataFrame.

Columns are built as whole lists and typed once each (never row by row in
pandas): a column's dtype comes from the argparse schemas its runs declared,
and only columns without a usable declaration (exman 0.1.9 runs, metrics,
plugin columns, conflicting declarations) are typed from their values.
``layout``/``merge`` let a few rows join an existing frame exactly as a full
build would have typed them (or refuse). ``metrics`` builds the long frame
of logged rows for ``Index.metrics``. Imported only when a frame is built:
this module imports pandas, so ``exman.index`` must import it lazily.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pandas as pd

from exman import layout as L
from exman.errors import IndexWarning
from exman.index import read as R
from exman.layout import BASE_COLUMNS, GIT_COLUMNS, META_COLUMNS  # noqa: F401 (imported from here by older code)

# Run metadata: a parameter of the same name keeps its name; the metadata column becomes exman_<key>.
_NAT = np.iinfo(np.int64).min


def build(root, rels: list, entries: list, statuses: list, layout=None) -> pd.DataFrame:
    """``entries`` are sorted by id; ``statuses`` are their statuses as of now.

    ``layout`` (from ``layout()`` over a larger set of runs) forces that set's
    columns, order and declarations: rows built this way merge into its frame.
    """
    n = len(entries)
    fields = list(zip(*entries)) if n else [()] * (R.OK + 1)
    ids = np.array(fields[R.ID], dtype=np.int64)
    if layout is not None:
        specs = layout["specs"]
        gather = _gather_as
        orders = layout["params"], layout["metrics"], layout["plugins"]
    else:
        specs = _schema_specs(fields[R.SCHEMA], ids) if n else {}
        gather = _gather
        orders = None, None, None
    params = gather(fields[R.PKEYS], fields[R.PVALS], ids, n, orders[0])
    columns, options = param_columns(params, specs)

    data: dict = {"id": ids, "root": _paths(root, rels), "time": _times(fields[R.TIME])}
    meta = {"id": "id", "root": "root", "time": "time"}
    metadata = {
        "status": lambda: _strings(statuses),
        "start": lambda: _times(fields[R.START]),
        "end": lambda: _times(fields[R.END]),
        "duration": lambda: np.array(fields[R.DURATION], dtype=np.float64),
        "sweep": lambda: _strings(fields[R.SWEEP]),
        "sweep_cell": lambda: _cells(fields[R.SWEEP_CELL]),
        "host": lambda: _strings(fields[R.HOST]),
        "user": lambda: _strings(fields[R.USER]),
    }
    if layout["commit"] if layout else any(v is not None for v in fields[R.COMMIT]):
        metadata["commit"] = lambda: _strings(fields[R.COMMIT])
        metadata["dirty"] = lambda: _infer(list(fields[R.DIRTY]))
    if layout["slurm"] if layout else any(v is not None for v in fields[R.SLURM]):
        metadata.update(_slurm_columns(fields[R.SLURM]))
    for key, make in metadata.items():
        name = meta_name(key, params)
        data[name] = make()
        meta[key] = name
    taken = set(data) | set(columns.values())

    param_names: list = []
    option_names: list = []
    for key, values in params.items():
        name = columns[key]
        data[name] = _typed(values, specs.get(key))
        (option_names if key in options else param_names).append(name)
    metric_names = []
    for key, values in gather(fields[R.MKEYS], fields[R.MVALS], ids, n, orders[1]).items():
        name = _free(key, "_metric", taken)
        data[name] = _infer(values)
        metric_names.append(name)
    plugin_names = []
    for key, values in gather(fields[R.XKEYS], fields[R.XVALS], ids, n, orders[2]).items():
        name = _free(key, "_plugin", taken)
        data[name] = _infer(values)
        plugin_names.append(name)

    df = pd.DataFrame(data, copy=False)
    df.attrs["params"] = param_names
    df.attrs["options"] = option_names  # exman's own options (name, tmp, git_dirty, config_file)
    df.attrs["metrics"] = metric_names
    df.attrs["plugins"] = plugin_names
    # Where each piece of run metadata landed: read it through exman.index.meta_column.
    df.attrs["meta"] = meta
    return df


def _slurm_columns(records) -> dict:
    """slurm_job and slurm_node as strings, slurm_task and slurm_restart as nullable integers."""
    parts = list(zip(*[r if r is not None else (None,) * 4 for r in records])) or [()] * 4
    return {
        "slurm_job": lambda: _strings(parts[0]),
        "slurm_task": lambda: pd.array(list(parts[1]), dtype="Int64"),
        "slurm_node": lambda: _strings(parts[2]),
        "slurm_restart": lambda: pd.array(list(parts[3]), dtype="Int64"),
    }


def meta_name(key: str, params) -> str:
    """The column of metadata ``key``: its own name, or ``exman_<key>`` when a parameter has it."""
    name = key
    while name in params:
        name = "exman_" + name
    return name


def param_columns(params, specs: dict) -> tuple[dict, set]:
    """``({param key: column}, keys that are exman's own options)``.

    A key is an option (``name``, ``tmp``, ...) when no schema declares it:
    0.1.9 runs, or runs whose script left ``--name`` to exman.
    """
    taken = set(BASE_COLUMNS)
    columns = {}
    for key in params:
        columns[key] = _free(key, "_param", taken)
    options = {k for k in params if k in L.OPTION_KEYS and not specs.get(k)}
    return columns, options


def _free(key: str, suffix: str, taken: set) -> str:
    """A column name not used yet: a name taken by a column before it gets a suffix."""
    name = key
    while name in taken:
        name += suffix
    taken.add(name)
    return name


def _gather(keys_col, vals_col, ids, n, order=None) -> dict:
    """``{column: list of n values}`` from per-row (keys, values) tuples.

    Rows share key tuples (one per script version), so each group is
    transposed at C speed; columns are ordered as the newest run declared them.
    """
    if n == 0:
        return {}
    groups = _groups(keys_col)
    if len(groups) == 1:
        keys = keys_col[0]
        if not keys:
            return {}
        return {k: list(col) for k, col in zip(keys, zip(*vals_col))}
    order = _order(groups, ids)
    out = {}
    for k in order:
        out[k] = np.full(n, None, dtype=object)
    for keys, rows in groups.items():
        if not keys:
            continue
        idx = np.array(rows, dtype=np.intp)
        for k, col in zip(keys, zip(*[vals_col[i] for i in rows])):
            arr = np.empty(len(rows), dtype=object)
            arr[:] = col
            out[k][idx] = arr
    return {k: v.tolist() for k, v in out.items()}


def _groups(keys_col) -> dict:
    """``{keys tuple: [row, ...]}``.

    Grouped by object first (a tuple's hash is not cached: hashing 100,000
    tuples of 20 strings costs seconds), then equal tuples read in different
    calls are merged by value.
    """
    by_object: dict = {}
    for i, keys in enumerate(map(id, keys_col)):
        rows = by_object.get(keys)
        if rows is None:
            by_object[keys] = rows = []
        rows.append(i)
    groups: dict = {}
    for rows in by_object.values():
        groups.setdefault(keys_col[rows[0]], []).extend(rows)
    return groups


def _order(groups: dict, ids) -> tuple:
    """Column order: as the newest run declared them, then older runs' extra keys."""
    order: dict = {}
    for keys, _rows in sorted(groups.items(), key=lambda kv: -int(ids[kv[1]].max())):
        for k in keys:
            order.setdefault(k, None)
    return tuple(order)


def _gather_as(keys_col, vals_col, ids, n, order) -> dict:
    """``_gather`` for a few rows, in a column order decided over more runs."""
    rows = [dict(zip(keys, vals)) for keys, vals in zip(keys_col, vals_col)]
    return {k: [row.get(k) for row in rows] for k in order}


def layout(entries: list) -> dict:
    """What decides a frame's columns beyond its rows' values: key orders, declarations, git.

    Two sets of runs with equal layouts get the same columns with the same
    names, so rows built with ``build(..., layout=...)`` can join a frame.
    """
    return layout_of(shape(entries))


def shape(entries: list) -> dict:
    """Per row, what ``layout_of`` needs (tuples shared between rows: cheap to keep and pickle)."""
    fields = list(zip(*entries)) if entries else [()] * (R.OK + 1)
    return {
        "ids": list(fields[R.ID]),
        "pkeys": list(fields[R.PKEYS]),
        "mkeys": list(fields[R.MKEYS]),
        "xkeys": list(fields[R.XKEYS]),
        "schemas": list(fields[R.SCHEMA]),
        "commit": [v is not None for v in fields[R.COMMIT]],
        "slurm": [v is not None for v in fields[R.SLURM]],
    }


def layout_of(shape: dict) -> dict:
    if not shape["ids"]:
        return {"params": (), "metrics": (), "plugins": (), "specs": {}, "commit": False, "slurm": False}
    ids = np.array(shape["ids"], dtype=np.int64)
    return {
        "params": _order(_groups(shape["pkeys"]), ids),
        "metrics": _order(_groups(shape["mkeys"]), ids),
        "plugins": _order(_groups(shape["xkeys"]), ids),
        "specs": _schema_specs(shape["schemas"], ids),
        "commit": any(shape["commit"]),
        "slurm": any(shape["slurm"]),
    }


def merge(old: pd.DataFrame, new: pd.DataFrame, missing: dict) -> pd.DataFrame | None:
    """``old`` then ``new`` rows, typed as ``build`` would type them together; None when unsure.

    Both come from ``build`` with one layout. ``missing[name]`` is True when
    every new value of that column is missing (a run that logged nothing yet).
    """
    if list(old.columns) != list(new.columns):
        return None
    if not len(new):
        new = old.iloc[:0]  # nothing to add: no empty column may widen the old ones
    data = {}
    for name in old.columns:
        a, b = old[name], new[name]
        if a.dtype == b.dtype:
            data[name] = b.array
            continue
        kinds = {str(a.dtype), str(b.dtype)}
        if kinds == {"int64", "float64"}:
            if a.dtype == np.float64 and not a.isna().any() and (a % 1 == 0).all():
                # The row that made it float (its NaN, its 2.5) may be the one being replaced:
                # the whole column may be int64 again, or hold a written 3.0. Unsure.
                return None
            data[name] = b.to_numpy(dtype=np.float64)
        elif missing.get(name) and a.dtype.kind in "ifbM" and isinstance(a.dtype, np.dtype):
            # int -> float with NaN, bool -> object with NaN: what typing the whole column gives
            data[name] = np.full(len(b), np.nan, dtype=np.float64 if a.dtype.kind in "if" else object)
            if a.dtype.kind == "M":
                data[name] = np.full(len(b), np.datetime64("NaT"), dtype=a.dtype)
        elif missing.get(name) and (a.dtype == object or not isinstance(a.dtype, np.dtype)):
            data[name] = pd.Series([None] * len(b), dtype=a.dtype).array  # string NA, Categorical -1
        else:
            return None
    extra = pd.DataFrame(data, copy=False)
    out = pd.concat([old, extra], ignore_index=True)
    out.attrs = {
        k: list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v for k, v in old.attrs.items()
    }
    for name in old.columns:
        a, c = old[name].dtype, out[name].dtype
        if c != a and not (a.kind in "ib" and c.kind in "fO" if isinstance(a, np.dtype) else False):
            return None  # concat chose a type the whole column would not get
    return out


def _schema_specs(schemas, ids) -> dict:
    """``{param: [(type, list, choices), ...]}`` over the distinct schemas, newest first."""
    newest: dict = {}
    for i, schema in enumerate(schemas):
        if schema is None:
            continue
        key = id(schema)
        if key not in newest:
            newest[key] = [schema, i]
        elif ids[i] > ids[newest[key][1]]:
            newest[key][1] = i
    distinct: dict = {}
    for schema, i in newest.values():  # equal schemas read in different calls are different objects
        if schema not in distinct or ids[i] > ids[distinct[schema]]:
            distinct[schema] = i
    specs: dict = {}
    for schema, _ in sorted(distinct.items(), key=lambda kv: -int(ids[kv[1]])):
        for dest, type_, listy, choices in schema:
            specs.setdefault(dest, []).append((type_, listy, choices))
    return specs


def _typed(values: list, specs):
    """A column typed from its declarations; falls back to the values."""
    if not specs:
        return _infer(values)
    types = {t for t, _, _ in specs}
    if any(listy for _, listy, _ in specs):
        return _objects(values)
    if types <= {"int"}:
        return _ints(values)
    if types <= {"int", "float"}:
        out = _floats(values)
        return out if out is not None else _infer(values)
    if types <= {"bool"}:
        if all(type(v) is bool or v is None for v in values):
            return _bools(values)
        return _infer(values)
    if types <= {"str", "path"}:
        if not all(type(v) is str or v is None for v in values):
            # argparse leaves a default that is not text unconverted (``default=1`` with no type, or
            # ``type=str, default=1``): the column must not hold 1 beside '3'. Text, as declared:
            # reading the given values as numbers would pool '007' with '7' and retype the column
            # the day a run gives 'abc'.
            values = [v if v is None or type(v) is str else str(v) for v in values]
        present = [v for v in values if v is not None]
        choices = [c for _, _, cs in specs if cs for c in cs]
        if choices and all(type(c) is str for c in choices) and all(cs for _, _, cs in specs):
            categories = list(dict.fromkeys(choices))
            extra = sorted(set(present) - set(categories))  # values from a script that allowed more
            return pd.Categorical(values, categories=categories + extra)
        return _strings(values)
    return _infer(values)


def _ints(values: list):
    if all(type(v) is int for v in values):
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            return _objects(values)
    if all(type(v) is int or v is None for v in values):
        if any(v is not None and not -(1 << 53) <= v <= 1 << 53 for v in values):
            return _objects(values)  # a float would round it; keep the exact ints, NaN for the gaps
        return np.array(values, dtype=np.float64)  # gaps: NaN needs a float column
    out = _floats(values)
    return out if out is not None else _infer(values)


def _floats(values: list):
    for v in values:
        t = type(v)
        if not (t is float or t is int or v is None or (t is str and v in ("inf", "-inf", "nan"))):
            return None
    return np.array(values, dtype=np.float64)


def _bools(values: list):
    if all(type(v) is bool for v in values):
        return np.array(values, dtype=bool)
    return _objects(values)


def _infer(values: list):
    """Type a column from its values: exman 0.1.9 runs, metrics, plugin columns."""
    kinds = {type(v) for v in values}
    kinds.discard(type(None))
    if not kinds:
        return _objects(values)
    if kinds == {bool}:
        return _bools(values)
    if kinds == {int}:
        return _ints(values)
    if kinds <= {int, float}:
        return np.array(values, dtype=np.float64)
    if str in kinds and kinds <= {int, float, str} and len(kinds) > 1:
        # Roots written before exman kept NaN/inf metrics as floats hold them as text.
        out = _floats(values)
        if out is not None:
            return out
    if kinds == {str}:
        return _strings(values)
    return _objects(values)


def _objects(values: list):
    arr = np.empty(len(values), dtype=object)
    arr[:] = [np.nan if v is None else v for v in values]
    return arr


def _strings(values):
    return pd.array(list(values), dtype=str) if _HAS_STR else _objects(list(values))


def _cells(values):
    """Sweep grid cells as a nullable integer column (``Int64``, ``<NA>`` outside a sweep): run.json
    holds them as the text of ``EXMAN_SWEEP_CELL``; a value that is no whole number is missing too."""
    out = []
    for v in values:
        if type(v) is str:
            try:
                v = int(v.strip())
            except ValueError:
                v = None
        # beyond int64 (a hand-edited 10**30) no Int64 column holds it: missing, like any bad value
        out.append(v if type(v) is int and -(1 << 62) < v < (1 << 62) else None)
    return pd.array(out, dtype="Int64")


def _times(values) -> np.ndarray:
    """Microseconds since the naive epoch (or None) as ``datetime64[ns]``."""
    ints = np.array([_NAT if v is None else v for v in values], dtype=np.int64)
    return ints.view("datetime64[us]").astype("datetime64[ns]")


def _paths(root, rels: list) -> np.ndarray:
    """Absolute ``Path`` objects, made from a cached parent (4x faster than ``root / rel``)."""
    parents: dict = {}
    out = np.empty(len(rels), dtype=object)
    made = []
    for rel in rels:
        head, _, tail = rel.rpartition("/")
        child = parents.get(head)
        if child is None:
            parent = root.joinpath(head) if head else root
            child = getattr(parent, "_make_child_relpath", None)
            if child is None or child(tail) != parent / tail:
                child = parent.joinpath
            parents[head] = child
        made.append(child(tail))
    out[:] = made
    return out


def _has_str_dtype() -> bool:
    # pandas >= 3 has a real string dtype for ``str``, with missing values as NA. pandas 1.5 and
    # 2.x map ``dtype=str`` to object and turn None into the text "None": use object + NaN there.
    try:
        probe = pd.array(["a", None], dtype=str)
    except (TypeError, ValueError):
        return False
    return isinstance(probe.dtype, pd.StringDtype) and bool(probe.isna()[1])


_HAS_STR = _has_str_dtype()


# -- the warm answer: a built frame as plain values ---------------------------
# ``pack`` turns a frame from ``build`` into lists, tuples, bytes and strings
# only (the index cache refuses every other type); ``unpack`` makes it again
# without typing a single value twice.


def pack(df: pd.DataFrame) -> dict:
    columns = []
    for name in df.columns:
        if name == "root":
            continue
        columns.append((name, _pack_column(df[name])))
    attrs = {k: dict(v) if isinstance(v, dict) else list(v) for k, v in df.attrs.items() if k != "root"}
    return {"columns": columns, "attrs": attrs}


def unpack(packed: dict, root, rels: list, statuses: list) -> pd.DataFrame:
    data = {}
    for name, column in packed["columns"]:
        data[name] = _unpack_column(column)
        if name == "id":
            data["root"] = _paths(root, rels)
    data[packed["attrs"]["meta"]["status"]] = _strings(statuses)
    df = pd.DataFrame(data, copy=False)
    for key, value in packed["attrs"].items():
        df.attrs[key] = dict(value) if isinstance(value, dict) else list(value)
    return df


def _pack_column(series: pd.Series):
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = np.ascontiguousarray(series.cat.codes.to_numpy())
        return ("cat", series.cat.categories.tolist(), codes.dtype.str, codes.tobytes())
    if isinstance(dtype, np.dtype) and dtype.kind in "biufM":
        arr = np.ascontiguousarray(series.to_numpy())
        return ("np", arr.dtype.str, arr.tobytes())
    if isinstance(dtype, pd.Int64Dtype):  # sweep_cell
        return ("Int64", series.fillna(0).to_numpy(dtype=np.int64).tobytes(), series.isna().to_numpy().tobytes())
    if isinstance(dtype, np.dtype):  # object: lists, mixed values
        return ("obj", series.tolist())
    codes, uniques = pd.factorize(series)  # pandas' string dtype; NaN gets code -1
    if len(uniques) * 2 <= len(series):
        return ("strcodes", [str(u) for u in uniques], codes.astype(np.int64).tobytes())
    return ("str", series.array.to_numpy(dtype=object, na_value=None).tolist())


def _unpack_column(column):
    kind = column[0]
    if kind == "np":
        return np.frombuffer(column[2], dtype=np.dtype(column[1])).copy()
    if kind == "cat":
        codes = np.frombuffer(column[3], dtype=np.dtype(column[2]))
        return pd.Categorical.from_codes(codes, categories=pd.Index(column[1], dtype=object if not column[1] else None))
    if kind == "Int64":
        return pd.arrays.IntegerArray(
            np.frombuffer(column[1], dtype=np.int64).copy(), np.frombuffer(column[2], dtype=bool).copy()
        )
    if kind == "obj":
        return _objects_raw(column[1])
    if kind == "strcodes":
        codes = np.frombuffer(column[2], dtype=np.int64)
        # code -1 (missing) picks the appended None
        return _strings(list(column[1]) + [None]).take(np.where(codes < 0, len(column[1]), codes))
    return _strings(column[1])


def _objects_raw(values: list):
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def metrics(targets) -> pd.DataFrame:
    """Every logged row of ``targets`` (``(id, run folder)`` pairs) as ``Index.metrics`` returns it."""
    ids, steps, times, names, values = [], [], [], [], []
    messages: list = []
    for number, folder in targets:
        for row in R.read_metric_rows(os.path.join(folder, R.METRICS_FILE), messages):
            step = row.get("step")
            when = row.get("time")
            for key, value in row.items():
                if key == "step" or key == "time":
                    continue
                ids.append(number)
                steps.append(step)
                times.append(when)
                names.append(key)
                values.append(value)
    for message in messages:
        warnings.warn(message, IndexWarning, stacklevel=3)
    seconds = np.array([t if isinstance(t, (int, float)) else np.nan for t in times], dtype=np.float64)
    df = pd.DataFrame(
        {
            "id": np.array(ids, dtype=np.int64),
            "step": _infer(steps) if steps else np.array([], dtype=np.int64),
            "time": _local_times(seconds),
            "metric": _strings(names),
            "value": _infer(values) if values else np.array([], dtype=np.float64),
        }
    )
    if len(df):
        df = df.sort_values(["id", "step"], kind="stable", ignore_index=True)
    return df


def _local_times(seconds):
    """Unix seconds as naive local ``datetime64[ns]``, like ``info()``'s start and end."""
    if len(seconds) == 0:
        return np.array([], dtype="datetime64[ns]")
    # UTC offsets change at most every quarter hour: look each bucket up once.
    finite = np.isfinite(seconds)
    buckets = np.where(finite, seconds // 900, 0).astype(np.int64)
    uniq, inverse = np.unique(buckets, return_inverse=True)
    offsets = np.array([time.localtime(int(b) * 900).tm_gmtoff for b in uniq], dtype=np.float64)
    local = seconds + offsets[inverse.reshape(-1)]
    micros = np.where(finite, np.round(local * 1e6), 0).astype(np.int64)
    micros[~finite] = np.iinfo(np.int64).min
    return micros.view("datetime64[us]").astype("datetime64[ns]")
