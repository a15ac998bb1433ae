"""Damaged run files and a damaged cache: every reader answers, none prints a traceback (lower items).

One root holds a real run (recorded by a real sweep) copied once per damage:
a field of run.json replaced by a value of another type, a whole run.json, a
params.yaml or metrics.jsonl of odd shape. ``ls``, ``show``, ``diff``,
``sweep --status``, ``sweeps``, ``doctor``, ``Index.info()``, ``summary()`` and
``Index.metrics()`` all run over it. Then the Index cache is replaced by
pickles with a valid header and a damaged body.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import pickle
import shutil
import sys
import traceback
import warnings

import pytest
from click.testing import CliRunner
from conftest import exman_command

from exman import Index
from exman.cli import make_cli

from .tools import SLOW, report

SCRIPT = """
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
with args.safe_experiment as run:
    run.log(loss=args.lr, acc=0.5)
    run.log(loss=args.lr / 2, acc=0.6)
"""

ODD = [None, 5, -1, 1.5, "x", "", [], {}, [1, [2]], {"a": {"b": [1]}}, True, "2026-13-45T99:00:00", 10**30]
FIELDS = [
    "status",
    "id",
    "name",
    "start",
    "end",
    "duration",
    "pid",
    "host",
    "user",
    "params",
    "schema",
    "extra",
    "params_stat",
    "sweep",
    "sweep_cell",
    "boot_id",
    "pid_ns",
    "argv",
    "tmp",
    "params_file",
]
WHOLE_JSON = ["[]", '"x"', "5", "null", "{}", '{"status": "runn', "\udcff", '{"status": NaN}', '{"params": {"lr": [}']
PARAMS = [
    "- 1\n- 2\n",
    "5\n",
    "{}\n",
    "1: 2\n",
    "lr: {a: [1, {b: 2}]}\n",
    "lr: 2026-01-01\n",
    "lr: !!binary aGk=\n",
    "lr: !!set {a, b}\n",
    "? [1, 2]\n: 3\n",
    "lr: .nan\nseed: .inf\n",
    "lr: [\n",
]
METRICS = [
    "[1, 2]\n",
    '{"step": "x", "loss": 1}\n',
    '{"loss": [1]}\n',
    '{"loss": {"a": 1}}\n',
    '{"time": "x", "loss": 1}\n',
    '{"step": 1e400, "loss": 1}\n',
    "5\n",
    '"s"\n',
    "null\n",
    '{"loss": 1e999}\n',
    '{"step": null}\n',
    '{"step": 1, "acc": true}\n',
]


def _variants():
    out = [("run.json", f"{field}={value!r}", field, value) for field, value in itertools.product(FIELDS, ODD)]
    out += [("run.json", f"whole {text!r}", None, text) for text in WHOLE_JSON]
    out += [("params.yaml", f"params {text!r}", None, text) for text in PARAMS]
    out += [("metrics.jsonl", f"metrics {text!r}", None, text) for text in METRICS]
    if not SLOW:
        out = out[::4] + [v for v in out if v[0] != "run.json" or v[2] is None]
        out = list({v[1]: v for v in out}.values())
    return out


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    import subprocess

    from .tools import env

    folder = tmp_path_factory.mktemp("damaged")
    (folder / "main.py").write_text(SCRIPT)
    command = exman_command()
    subprocess.run(
        [*command, "--root", str(folder / "exman"), "sweep", "-p", "lr=0.1,0.2", "--", sys.executable, "main.py"],
        cwd=folder,
        env=env(),
        check=True,
        capture_output=True,
    )
    root = folder / "exman"
    template = sorted((root / "runs").iterdir())[0]
    meta = json.loads((template / "run.json").read_text())
    variants = _variants()
    for number, (target, _label, field, value) in enumerate(variants, start=10):
        name = f"{number:06d}-2026-01-01-00-00-00"
        run = root / "runs" / name
        shutil.copytree(template, run)
        fresh = dict(meta, id=number, name=name)
        (run / "run.json").write_text(json.dumps(fresh))
        os.symlink(os.path.relpath(run / "params.yaml", root / "index"), root / "index" / f"{name}.yaml")
        os.mkdir(root / ".exman" / "ids" / str(number))
        if target == "run.json" and field is not None:
            fresh[field] = value
            (run / "run.json").write_text(json.dumps(fresh))
        elif target == "run.json":
            (run / "run.json").write_bytes(value.encode("utf-8", "surrogateescape"))
        else:
            (run / target).write_text(value)
    return root, meta["sweep"], len(variants)


def _cli(root, *args):
    result = CliRunner().invoke(make_cli(), ["--root", str(root), *map(str, args)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "".join(
            traceback.format_exception(type(result.exception), result.exception, result.exception.__traceback__)
        )
    return None


def test_every_reader_answers_over_damaged_runs(damaged):
    root, sweep_id, count = damaged
    failures = []
    calls = [
        ("ls",),
        ("ls", "--sort", "loss"),
        ("ls", "--format", "json"),
        ("ls", "--fails"),
        ("sweep", "--status", sweep_id),
        ("sweeps",),
        ("doctor",),
        ("diff", "1", "10"),
    ]
    calls += [("show", n) for n in range(10, 10 + count)]
    for args in calls:
        problem = _cli(root, *args)
        if problem:
            failures.append((args, problem.strip().splitlines()[-1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for what, call in [
            ("info", lambda: Index(root).info(include_failed=True)),
            ("info again (cached)", lambda: Index(root).info(include_failed=True)),
            ("summary", lambda: Index(root).summary("loss")),
            ("metrics", lambda: Index(root).metrics()),
        ]:
            try:
                call()
            except Exception as exc:
                failures.append((what, f"{type(exc).__name__}: {exc}"))
    report(f"damaged runs: {count} variants, {len(calls)} commands and 4 Index calls, {len(failures)} tracebacks")
    assert not failures, "\n".join(f"{a}: {m}" for a, m in failures)


def test_damaged_cache_body_is_read_around(damaged, tmp_path):
    root, _, _ = damaged
    copy = tmp_path / "root"
    shutil.copytree(root, copy, symlinks=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = len(Index(copy).info(include_failed=True))
        caches = sorted((copy / ".exman").glob("*.pickle"))
        assert caches
        originals = {p: p.read_bytes() for p in caches}
        bodies = [
            {"entries": [1, 2]},
            {"entries": {"runs/x": (1, 2)}},
            {"links": 5},
            {"memo": 5},
            {"entries": {"runs/x": None}, "links": {"index/x": (None,)}},
        ]
        for body in bodies:
            for path, data in originals.items():
                head = pickle.load(io.BytesIO(data))[0]
                path.write_bytes(pickle.dumps((head, body)) + pickle.dumps({"statuses": 5}))
            assert len(Index(copy).info(include_failed=True)) == expected, body
