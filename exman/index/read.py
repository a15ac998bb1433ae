"""Reading one run folder into an index entry: the Index's per-run work.

An entry is a plain tuple (so the on-disk cache can hold it without pickling
any class): what ``info()`` needs to build a row, plus the warnings met while
reading, which are re-emitted on every call that uses the entry. Reading never
raises because of a bad file: it records a warning naming the file and keeps
what it could read.

Which record wins:

- ``run.json`` (written by ``exman_plugins.metadata``) gives the typed params,
  the argparse schema and the run's metadata in one small JSON file;
- ``params.yaml`` is read instead of ``run.json``'s params only when its stat
  differs from ``params_stat`` (edited by hand after the run), or for runs
  without ``run.json`` (exman 0.1.9 roots), through the ``load_params`` hook.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import time

from exman import layout
from exman.fs import read_regular
from exman.layout import METRICS_FILE, PARAMS_FILE, RUN_FILE  # noqa: F401 (imported from here)
from exman.runinfo import process_key
from exman.types import to_plain

# The statuses a run reaches for good; anything else may still change.
TERMINAL = frozenset({"completed", "failed", "interrupted"})

RECORDED_KEYS = frozenset(layout.RECORDED_KEYS)

_LEADING_NUMBER = re.compile(r"^(\d+)")
_FOLDER_TIME = re.compile(r"^\d+-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})")
_EPOCH = datetime.datetime(1970, 1, 1)
_US = datetime.timedelta(microseconds=1)

# Positions in an entry tuple.
(
    KEY,
    ID,
    NAME,
    PARAMS_NAME,
    TIME,
    STATUS,
    START,
    END,
    DURATION,
    SWEEP,
    SWEEP_CELL,
    HOST,
    USER,
    PID,
    COMMIT,
    DIRTY,
    SLURM,
    PKEYS,
    PVALS,
    SCHEMA,
    MKEYS,
    MVALS,
    MSTATE,
    XKEYS,
    XVALS,
    WARNINGS,
    OK,
) = range(27)
META_FIELDS = 17  # KEY..SLURM


class Interner:
    """Share equal tuples and strings between entries: the cache pickles each once.

    It also remembers schema summaries by the exact bytes of the schema in
    ``run.json``: runs of one script share them, and summarising 20 params
    costs more than reading the file.
    """

    def __init__(self):
        self._seen: dict = {}
        self.schemas: dict = {}

    def __call__(self, value):
        return self._seen.setdefault(value, value)


# A missing file. Keys are hashed, and hash(None) differs between processes before 3.12.
NO_FILE = (0, 0, -1)


def stat_key(st) -> tuple:
    return NO_FILE if st is None else (st.st_ino, st.st_mtime_ns, st.st_size)


def try_stat(path: str):
    try:
        return os.stat(path)
    except OSError:
        return None


def read_run(
    folder: str,
    name: str,
    params_name: str,
    params_st,
    *,
    pm,
    intern: Interner,
    previous=None,
    plugins: bool = False,
    failed_dir: bool = False,
):
    """Read ``folder`` (absolute) into ``(entry, metrics_st, run_st)``.

    ``params_st`` is the stat of the params file taken before reading, so a
    file changed while we read is seen as changed on the next call.
    ``previous`` is the cached entry for the same folder, whose metrics are
    extended instead of re-read when ``metrics.jsonl`` only grew.
    """
    warnings: list[str] = []
    meta, run_st, schema = _read_json(folder, warnings, intern)
    params_path = folder + "/" + params_name
    params: dict = {}
    extra: dict = {}
    ok = True
    if meta is not None:
        params = meta.get("params")
        if type(params) is not dict:
            params = {}
        extra = meta.get("extra")
        if type(extra) is not dict:
            extra = {}
        # exman's own options (name, tmp, ...) are columns as in 0.1.9, beside the params.
        options = [k for k in layout.OPTION_KEYS if k in extra and k not in params]
        if options:
            params = dict(params)
            params.update((k, extra[k]) for k in options)
        recorded = meta.get("params_stat")
        if params_st is not None and recorded != [params_st.st_mtime_ns, params_st.st_size]:
            # Hand-edited after the run: the file is the truth, the schema still types it.
            edited = _load_params(pm, params_path, warnings)
            if edited is not None:
                params = {k: v for k, v in edited.items() if k not in extra or k in options}
    else:
        loaded = _load_params(pm, params_path, warnings) if params_st is not None else None
        if loaded is None:
            if params_st is None:
                warnings.append(f"exman: run {folder} has neither {RUN_FILE} nor a readable {params_name}; skipped")
            ok = False
            loaded = {}
        params = {k: v for k, v in loaded.items() if k not in RECORDED_KEYS}
        extra = {k: loaded[k] for k in ("time", "id", "commit", "dirty") if k in loaded}
        meta = {"status": "failed" if failed_dir else None}

    number = _run_id(meta.get("id", extra.get("id")), name)
    if number is None:
        warnings.append(f"exman: cannot tell the id of run {folder} (no id in {RUN_FILE} or {params_name}); skipped")
        ok = False
        number = -1

    metrics, mstate, metrics_st = _read_metrics(folder + "/" + METRICS_FILE, previous, warnings)

    pkeys = intern(tuple(params))
    pvals = tuple(params.values())
    mkeys = intern(tuple(metrics))
    mvals = tuple(metrics.values())
    xkeys, xvals = (), ()
    if plugins and ok:
        xkeys, xvals = _plugin_columns(pm, folder, number, name, meta, params, metrics, warnings)
        xkeys = intern(xkeys)

    status = meta.get("status")
    entry = [
        None,  # KEY: filled in by the caller, which knows which stats it compares
        number,
        name,
        params_name,
        _naive_us(extra.get("time"), name),
        intern(status) if isinstance(status, str) else None,
        _local_us(meta.get("start")),
        _local_us(meta.get("end")),
        _float(meta.get("duration")),
        _str(meta.get("sweep")),
        _str(meta.get("sweep_cell")),
        intern(_str(meta.get("host"))),
        intern(_str(meta.get("user"))),
        process_key(meta),  # PID: the pid with where it runs, for the liveness rule
        _str(extra.get("commit")),
        extra.get("dirty") if isinstance(extra.get("dirty"), bool) else None,
        _slurm(meta.get("slurm")),
        pkeys,
        pvals,
        schema,
        mkeys,
        mvals,
        mstate,
        xkeys,
        xvals,
        tuple(warnings),
        ok,
    ]
    return entry, metrics_st, run_st


def _slurm(record) -> tuple | None:
    """run.json's ``slurm`` record as (job id, array task id, node, restarts); None outside SLURM."""
    if not isinstance(record, dict) or record.get("job_id") in (None, ""):
        return None
    task, restart = record.get("array_task_id"), record.get("restart")
    return (str(record["job_id"]), _int(task), _str(record.get("node")), _int(restart))


def _int(value) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def read_bytes(path: str, offset: int = 0):
    """``(bytes from offset, stat)`` in one read; a FIFO or device raises OSError."""
    return read_regular(path, offset)


def _read_json(folder: str, warnings: list, intern: Interner | None = None):
    """``(dict or None, stat or None, schema summary or None)`` of ``folder``'s run.json; the
    stat is of the file read.

    The schema is two thirds of a typical ``run.json`` and the same for every
    run of a script: when its exact bytes were summarised before, they are not
    parsed (``layout.parse_run_json``) and the summary is reused.
    """
    try:
        data, st = layout.run_json_bytes(folder)
    except FileNotFoundError:
        return None, None, None
    except OSError as exc:
        warnings.append(f"exman: cannot read {folder}/{RUN_FILE}: {exc.strerror}")
        return None, None, None
    known = intern.schemas if intern is not None else {}
    try:
        meta, memo = layout.parse_run_json(data, known.__contains__)
    except ValueError as exc:
        warnings.append(f"exman: {folder}/{RUN_FILE} is not valid JSON ({exc}); using the params file instead")
        return None, st, None
    if not isinstance(meta, dict):
        warnings.append(f"exman: {folder}/{RUN_FILE} is not a JSON object; using the params file instead")
        return None, st, None
    summary = known.get(memo) if memo is not None else None
    if summary is None and intern is not None:
        schema = meta.get("schema")
        if isinstance(schema, dict):
            summary = intern(_schema_key(schema))
            if memo is not None:
                intern.schemas[memo] = summary
    return meta, st, summary


def _load_params(pm, path: str, warnings: list):
    from pathlib import Path

    try:
        data = pm.hook.load_params(path=Path(path))
    except (OSError, ValueError) as exc:
        warnings.append(f"exman: cannot read {path}: {exc}")
        return None
    except Exception as exc:  # a third-party loader must not break the whole index
        warnings.append(f"exman: cannot read {path}: {type(exc).__name__}: {exc}")
        return None
    if not isinstance(data, dict):
        warnings.append(f"exman: {path} is empty or not a mapping")
        return None
    return {str(k): to_plain(v) for k, v in data.items()}


def _read_metrics(path: str, previous, warnings: list):
    """Last value of every metric: ``(dict, state, stat)``.

    ``state`` is ``(inode, bytes consumed, bad lines so far)``: when the file
    only grew since ``previous`` was read, only the new lines are parsed.
    """
    last: dict = {}
    offset = bad = 0
    state = previous[MSTATE] if previous is not None else None
    try:
        if state is not None:
            before = os.stat(path)
            if before.st_ino == state[0] and state[1] <= before.st_size:
                last = dict(zip(previous[MKEYS], previous[MVALS]))
                offset, bad = state[1], state[2]
        data, st = read_bytes(path, offset)
        if offset and state is not None and (st.st_ino != state[0] or st.st_size < offset):
            last, offset, bad = {}, 0, 0  # replaced between the stat and the read: start over
            data, st = read_bytes(path)
    except FileNotFoundError:
        return {}, None, None
    except OSError as exc:
        warnings.append(f"exman: cannot read {path}: {exc.strerror}")
        return {}, None, None
    # A killed writer can leave a truncated last line: leave it for next time.
    end = data.rfind(b"\n") + 1
    if end:
        rows, new_bad = _parse_lines(data[:end])
        bad += new_bad
        scalar = _SCALAR_TYPES
        for row in rows:
            for key, value in row.items():
                if key != "step" and key != "time" and type(value) in scalar:
                    last[key] = value
    if bad:
        warnings.append(f"exman: {path}: skipped {bad} unreadable line(s)")
    return last, (st.st_ino, offset + end, bad), st


_SCALARS = (bool, int, float, str)
_SCALAR_TYPES = frozenset((bool, int, float, str, type(None)))


def _scalar_row(row: dict) -> dict:
    """A metrics row as ``run.log`` writes it: scalar values, an int step, a numeric time.
    A hand-damaged value of another kind is dropped (it would make the column unusable)."""
    out = {}
    for key, value in row.items():
        if key == "step":
            value = value if type(value) is int else None
        elif key == "time":
            value = value if type(value) in (int, float) else None
        elif value is not None and type(value) not in _SCALARS:
            continue
        out[key] = value
    return out


def _parse_lines(body: bytes):
    """``(rows, number of unreadable lines)`` of complete JSON lines."""
    try:
        # One C-level parse of all lines is ~5x faster than one json.loads per line.
        rows = json.loads((b"[" + body.rstrip(b"\n").replace(b"\n", b",") + b"]").decode("utf-8"))
        if all(isinstance(r, dict) for r in rows):
            return rows, 0
    except ValueError:
        pass
    rows, bad = [], 0
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    return rows, bad


def read_metric_rows(path: str, warnings: list) -> list:
    """Every complete row of a metrics file (for ``Index.metrics``)."""
    try:
        data = read_regular(path)[0]
    except FileNotFoundError:
        return []
    except OSError as exc:
        warnings.append(f"exman: cannot read {path}: {exc.strerror}")
        return []
    end = data.rfind(b"\n") + 1
    rows, bad = _parse_lines(data[:end]) if end else ([], 0)
    rows = [_scalar_row(row) for row in rows]
    if bad:
        warnings.append(f"exman: {path}: skipped {bad} unreadable line(s)")
    return rows


def _plugin_columns(pm, folder, number, name, meta, params, metrics, warnings):
    from pathlib import Path

    record = {"id": number, "name": name, "params": dict(params), "metrics": dict(metrics), "meta": meta}
    try:
        results = pm.hook.indexing(run_path=Path(folder), record=record)
    except Exception as exc:  # one plugin's bug must not hide the run
        warnings.append(f"exman: an indexing plugin failed on {folder}: {type(exc).__name__}: {exc}")
        return (), ()
    columns: dict = {}
    for result in reversed(results):  # pluggy calls later plugins first; let earlier ones win ties
        if isinstance(result, dict):
            columns.update({str(k): to_plain(v) for k, v in result.items()})
        elif result is not None:
            warnings.append(f"exman: an indexing plugin returned {type(result).__name__} for {folder}, expected a dict")
    return tuple(columns), tuple(columns.values())


def _schema_key(schema: dict) -> tuple:
    """A hashable summary of the schema: ``((dest, type, list, choices), ...)``."""
    out = []
    for dest, spec in schema.items():
        if not isinstance(spec, dict):
            continue
        choices = spec.get("choices")
        out.append(
            (
                dest,
                str(spec.get("type")),
                bool(spec.get("list")),
                tuple(c if isinstance(c, (str, int, float, bool)) else str(c) for c in choices)
                if isinstance(choices, list)
                else None,
            )
        )
    return tuple(out)


def _run_id(value, name: str):
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 62:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    m = _LEADING_NUMBER.match(name)
    return int(m.group(1)) if m else None


def _naive_us(value, name: str):
    """The run's local start time as microseconds since the naive epoch (0.1.9's ``time``)."""
    when = None
    if isinstance(value, datetime.datetime):
        when = value.replace(tzinfo=None)
    elif isinstance(value, str):
        try:
            when = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None:
            when = when.astimezone().replace(tzinfo=None)
    if when is None:
        m = _FOLDER_TIME.match(name)
        if m is None:
            return None
        try:
            year, month, day, hour, minute, second = map(int, m.groups())
            when = datetime.datetime(year, month, day, hour, minute, second)
        except ValueError:
            return None
    return (when - _EPOCH) // _US


_UTC_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_OFFSETS: dict = {}  # quarter hour -> local UTC offset in microseconds


def _local_us(value):
    """An ISO time with offset as microseconds since the naive epoch, in this machine's local time."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        return (when - _EPOCH) // _US
    utc = (when - _UTC_EPOCH) // _US
    # Offsets change on quarter hours at most: one localtime() per quarter hour seen.
    bucket = utc // 900_000_000
    offset = _OFFSETS.get(bucket)
    if offset is None:
        offset = _OFFSETS[bucket] = time.localtime(bucket * 900).tm_gmtoff * 1_000_000
    return utc + offset


def _float(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _str(value):
    return value if isinstance(value, str) else (None if value is None else str(value))
