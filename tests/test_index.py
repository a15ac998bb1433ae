"""exman.Index: typed columns, marks, statuses, bad files, the on-disk cache.

Runs are made through ExParser (in this process, or by a real script when a
process has to die); only bad input is written by hand.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import Script, count_calls, env_for_subprocess
from plugins import results_columns

import exman
from exman import index as index_module
from exman.index import Index, IndexWarning, NotARootError, meta_column
from exman.index import cache as index_cache
from exman.index import read as index_read
from exman.index.frame import BASE_COLUMNS, META_COLUMNS


def parser_v1(root, **kwargs):
    p = exman.ExParser(root=root, **kwargs)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--opt", choices=["sgd", "adam", "rmsprop"], default="sgd")
    p.add_argument("--tag", type=str, default="1")
    p.add_argument("--flag", type=bool, default=False)
    p.add_argument("--layers", type=int, nargs="+", default=[8, 8])
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out"))
    p.add_argument("--seed", type=exman.optional(int), default=None)
    return p


def make_run(parser, *argv, logs=(), fail=False):
    args = parser.parse_args(list(map(str, argv)))
    if fail:
        with pytest.raises(RuntimeError):
            with args.safe_experiment as run:
                raise RuntimeError("failing on purpose")
        return args
    with args.safe_experiment as run:
        for row in logs:
            run.log(**row)
    return args


def age(path, seconds=3600.0):
    """Set the mtime of ``path`` (a file, or everything under a folder) back, past the racy window."""
    when = time.time() - seconds
    if os.path.isfile(path):
        os.utime(path, (when, when))
        return
    for folder, dirs, files in os.walk(path):
        for name in files + dirs:
            os.utime(os.path.join(folder, name), (when, when), follow_symlinks=False)


def reads(monkeypatch):
    """Count the runs read from disk (not served from the cache)."""
    return count_calls(monkeypatch, index_read, "read_run")


@pytest.fixture
def root(tmp_path):
    return tmp_path / "exman"


# -- columns and types ------------------------------------------------------


def test_columns_dtypes_and_order(root):
    p = parser_v1(root)
    make_run(p, logs=[{"loss": 1.0, "acc": 0.5}, {"loss": 0.5}])
    make_run(
        p,
        "--lr",
        "1",
        "--tag",
        "2",
        "--flag",
        "yes",
        "--opt",
        "adam",
        "--layers",
        "4",
        "--seed",
        "3",
        logs=[{"loss": 2.0, "acc": 0.25}],
    )
    df = Index(root).info()
    assert list(df.columns[:11]) == [
        "id",
        "root",
        "time",
        "status",
        "start",
        "end",
        "duration",
        "sweep",
        "sweep_cell",
        "host",
        "user",
    ]
    assert df.attrs["params"] == ["lr", "epochs", "opt", "tag", "flag", "layers", "out", "seed"]
    assert df.attrs["options"] == ["tmp", "git_dirty", "name", "config_file"]
    assert df.attrs["metrics"] == ["loss", "acc"]
    assert list(df.columns[11:]) == df.attrs["params"] + df.attrs["options"] + df.attrs["metrics"]
    assert df["name"].isna().all() and df["tmp"].dtype == bool and not df["tmp"].any()
    dtypes = df.dtypes.astype(str).to_dict()
    assert dtypes["id"] == "int64" and dtypes["epochs"] == "int64"
    assert dtypes["time"] == dtypes["start"] == dtypes["end"] == "datetime64[ns]"
    assert dtypes["lr"] == "float64" and dtypes["duration"] == "float64"
    assert dtypes["flag"] == "bool"
    assert pd.api.types.is_string_dtype(df["tag"]) and df["tag"].tolist() == ["1", "2"]
    assert pd.api.types.is_string_dtype(df["out"]) and df["out"].tolist() == ["out", "out"]
    assert isinstance(df["opt"].dtype, pd.CategoricalDtype)
    assert list(df["opt"].cat.categories) == ["sgd", "adam", "rmsprop"]
    assert df["layers"].tolist() == [[8, 8], [4]]
    # an optional int seen as None in one run: a float column with NaN
    assert dtypes["seed"] == "float64" and np.isnan(df["seed"][0]) and df["seed"][1] == 3.0
    # a float parameter stays a float even when every value is whole
    assert df["lr"].tolist() == [0.1, 1.0]
    assert df["loss"].tolist() == [0.5, 2.0] and df["acc"].tolist() == [0.5, 0.25]
    assert df["id"].tolist() == [1, 2] and df["status"].tolist() == ["completed", "completed"]
    assert [r for r in df["root"]] == [a.resolve() for a in sorted((root / "runs").iterdir())]
    assert all(isinstance(r, pathlib.Path) and r.is_absolute() for r in df["root"])
    assert (df["end"] >= df["start"]).all() and (df["duration"] >= 0).all()
    assert df["host"].tolist() == [os.uname().nodename] * 2


def test_param_missing_from_older_runs_is_nan(root):
    old = exman.ExParser(root=root)
    old.add_argument("--a", type=int, default=1)
    make_run(old)
    make_run(old, "--a", "2")
    new = exman.ExParser(root=root)
    new.add_argument("--a", type=int, default=1)
    new.add_argument("--b", type=int, default=5)
    new.add_argument("--c", type=str, default="x")
    make_run(new)
    df = Index(root).info()
    assert df["a"].dtype == np.int64 and df["a"].tolist() == [1, 2, 1]
    assert df["b"].dtype == np.float64 and np.isnan(df["b"][:2]).all() and df["b"][2] == 5.0
    assert pd.api.types.is_string_dtype(df["c"]) and df["c"].isna().tolist() == [True, True, False]
    assert df.attrs["params"] == ["a", "b", "c"]


def test_sweep_cell_is_a_nullable_integer(root, monkeypatch):
    # What `exman sweep` hands its children: the sweep's id and the cell's number, as text.
    p = parser_v1(root)
    for cell in ("0", "12"):
        monkeypatch.setenv("EXMAN_SWEEP_ID", "s1")
        monkeypatch.setenv("EXMAN_SWEEP_CELL", cell)
        make_run(p)
    monkeypatch.delenv("EXMAN_SWEEP_ID")
    monkeypatch.delenv("EXMAN_SWEEP_CELL")
    make_run(p)  # by hand, outside any sweep
    age(root)
    cold = Index(root, cache=False).info()
    Index(root).info()
    warm = Index(root).info()  # from the packed frame
    for df in (cold, warm):
        assert str(df["sweep_cell"].dtype) == "Int64"
        assert df["sweep_cell"].tolist()[:2] == [0, 12] and df["sweep_cell"].isna().tolist() == [False, False, True]
        assert df["sweep"].tolist()[:2] == ["s1", "s1"] and df["sweep"].isna().tolist() == [False, False, True]
    pd.testing.assert_frame_equal(warm, cold)
    assert cold[cold["sweep_cell"] > 5]["id"].tolist() == [2]  # compares as a number: "12" > "5" as text is not


def test_a_sweep_cell_no_column_can_hold_is_missing(root, monkeypatch):
    # Hand-edited or foreign run.json: beyond int64, or text that only looks numeric.
    p = parser_v1(root)
    for cell in ("1" + "0" * 30, "--5", " 7 ", "x"):
        monkeypatch.setenv("EXMAN_SWEEP_ID", "s1")
        monkeypatch.setenv("EXMAN_SWEEP_CELL", cell)
        make_run(p)
    age(root)
    for df in (Index(root, cache=False).info(), Index(root).info()):
        assert str(df["sweep_cell"].dtype) == "Int64"
        assert df["sweep_cell"].isna().tolist() == [True, True, False, True] and df["sweep_cell"][2] == 7


def test_empty_root_has_the_columns(root):
    for folder in ("runs", "index", "marked"):
        (root / folder).mkdir(parents=True)
    df = Index(root).info()
    assert len(df) == 0 and tuple(df.columns) == BASE_COLUMNS + META_COLUMNS
    assert df["id"].dtype == np.int64 and df["time"].dtype == "datetime64[ns]"
    assert df.attrs["params"] == [] and df.attrs["metrics"] == []
    assert Index(root).varying() == [] and len(Index(root).metrics()) == 0


def test_param_named_like_metadata_keeps_its_name(root):
    """A parameter's column is named by its dest; the metadata moves to exman_<key>."""
    p = exman.ExParser(root=root)
    p.add_argument("--host", default="gpu1")
    make_run(p)
    df = Index(root).info()
    assert df["host"][0] == "gpu1" and df["exman_host"][0] == os.uname().nodename
    assert df.attrs["params"] == ["host"] and meta_column(df, "host") == "exman_host"
    assert meta_column(df, "user") == "user" and "exman_user" not in df.columns


# -- marks, fails, moved roots ---------------------------------------------


def test_marks_any_depth_and_unknown(root):
    p = parser_v1(root, automark=["opt", "epochs"])
    make_run(p)
    make_run(p, "--opt", "adam")
    make_run(p, "--opt", "adam", "--epochs", "3")
    ix = Index(root)
    assert ix.info("opt/").id.tolist() == [1, 2, 3]
    assert ix.info("opt/adam").id.tolist() == [2, 3]
    assert ix.info("opt/adam/epochs/3").id.tolist() == [3]
    with pytest.raises(KeyError):
        ix.info("nope")
    with pytest.raises(ValueError):
        ix.info("../runs")
    # a mark made by hand (what `exman mark` does): a relative link to the run folder
    (root / "marked" / "best").mkdir()
    run = sorted((root / "runs").iterdir())[0]
    (root / "marked" / "best" / run.name).symlink_to(os.path.relpath(run, root / "marked" / "best"))
    assert ix.info("best").id.tolist() == [1]


def test_failed_runs_only_with_include_failed(root):
    p = parser_v1(root)
    make_run(p)
    make_run(p, fail=True)
    ix = Index(root)
    assert ix.info().id.tolist() == [1]
    df = ix.info(include_failed=True)
    assert df.id.tolist() == [1, 2] and df.status.tolist() == ["completed", "failed"]
    assert df.root[1].parent == root.resolve() / "fails"
    assert ix.info().id.tolist() == [1]


def test_moved_and_copied_root(tmp_path, root):
    p = parser_v1(root, automark=["opt"])
    make_run(p, logs=[{"loss": 1.0}])
    make_run(p)
    before = Index(root).info()
    copy = tmp_path / "copy" / "exman"
    shutil.copytree(root, copy, symlinks=True)
    moved = tmp_path / "moved"
    shutil.move(str(root), str(moved))
    for where in (copy, moved):
        df = Index(where).info()
        assert [r.parent for r in df.root] == [where.resolve() / "runs"] * 2
        assert all((r / "params.yaml").exists() for r in df.root)
        assert df.drop(columns="root").equals(before.drop(columns="root"))
        assert Index(where).info("opt/sgd").id.tolist() == [1, 2]


def test_not_a_root(tmp_path):
    with pytest.raises(NotARootError, match=str(tmp_path)):
        Index(tmp_path)
    with pytest.raises(ValueError, match="missing"):
        Index(tmp_path / "missing")
    with pytest.raises(ValueError, match="not an exman root"):
        Index(tmp_path / "missing")


# -- statuses ---------------------------------------------------------------

SLEEPER = """
import time, exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--x", type=int, default=0)
args = parser.parse_args()
with args.safe_experiment as run:
    run.log(step=0, loss=1.0)
    time.sleep(60)
"""


def test_killed_run_is_crashed(tmp_path):
    script = Script(tmp_path, SLEEPER)
    proc = subprocess.Popen(
        [sys.executable, str(script.path)],
        env=env_for_subprocess(),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not list(script.root.glob("runs/*/metrics.jsonl")):
            time.sleep(0.05)
        assert Index(script.root).info().status.tolist() == ["running"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    df = Index(script.root).info()
    assert df.status.tolist() == ["crashed"] and df.loss.tolist() == [1.0]


def test_run_on_another_host_is_stale_without_heartbeat(root):
    p = parser_v1(root)
    args = p.parse_args([])  # never ends while the test runs: status running
    path = args.root / "run.json"
    meta = json.loads(path.read_text())
    meta["host"] = "some-other-host"
    meta["boot_id"] = "another-machine"  # what tells machines apart (see the liveness rule)
    path.write_text(json.dumps(meta))
    ix = Index(root)
    assert ix.info().status.tolist() == ["running"]
    old = time.time() - index_module.STALE_AFTER - 60
    os.utime(path, (old, old))
    assert ix.info().status.tolist() == ["stale"]
    os.utime(path)  # a heartbeat
    assert ix.info().status.tolist() == ["running"]
    args.safe_experiment.__exit__(None, None, None)
    assert ix.info().status.tolist() == ["completed"]


def test_live_run_in_this_process_is_running(root):
    p = parser_v1(root)
    args = p.parse_args([])
    with args.safe_experiment as run:
        run.log(loss=3.0)
        df = Index(root).info()
        assert df.status.tolist() == ["running"] and df.loss.tolist() == [3.0]
        run.log(loss=2.0)
        assert Index(root).info().loss.tolist() == [2.0]
    assert Index(root).info().status.tolist() == ["completed"]


# -- exman 0.1.9 roots ------------------------------------------------------


def make_0_1_9_root(root, runs):
    """Files exactly as exman 0.1.9 wrote them: sorted keys, tmp/git_dirty, time and id appended."""
    for folder in ("runs", "index", "marked", "tmp", "fails"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for number, params in enumerate(runs, 1):
        name = f"{number:06d}-2019-03-0{number}-12-00-0{number}"
        folder = root / "runs" / name
        folder.mkdir()
        body = dict(params, git_dirty=False, tmp=False, root=f"runs/{name}")
        text = "".join(
            f"{k}: {json.dumps(v) if not isinstance(v, str) else repr(v)}\n" for k, v in sorted(body.items())
        )
        text += f"time: '2019-03-0{number}T12:00:0{number}'\nid: {number}\n"
        (folder / "params.yaml").write_text(text)
        (root / "index" / f"{name}.yaml").symlink_to(f"../runs/{name}/params.yaml")
    return root


def test_0_1_9_root_types_inferred(tmp_path):
    root = make_0_1_9_root(
        tmp_path / "old",
        [
            {"lr": 0.1, "epochs": 2, "name": "a", "flag": True, "code": "1"},
            {"lr": 1, "epochs": 3, "name": "b", "flag": False, "code": "2"},
        ],
    )
    mark = root / "marked" / "good"
    mark.mkdir()
    run = sorted((root / "runs").iterdir())[1]
    (mark / run.name).symlink_to(f"../../runs/{run.name}")
    df = Index(root).info()
    assert df.id.tolist() == [1, 2] and df.status.tolist() == ["unknown", "unknown"]
    assert df["time"].tolist() == [pd.Timestamp("2019-03-01 12:00:01"), pd.Timestamp("2019-03-02 12:00:02")]
    assert df["time"].dtype == "datetime64[ns]"
    assert df.attrs["params"] == ["code", "epochs", "flag", "lr"]
    assert df.attrs["options"] == ["git_dirty", "name", "tmp"]  # columns, as 0.1.9's Index showed them
    assert df["epochs"].dtype == np.int64 and df["lr"].dtype == np.float64 and df["flag"].dtype == bool
    assert df["code"].tolist() == ["1", "2"] and pd.api.types.is_string_dtype(df["code"])
    assert df["name"].tolist() == ["a", "b"]
    assert df["tmp"].dtype == bool and df["git_dirty"].dtype == bool
    assert Index(root).info("good").id.tolist() == [2]


# -- bad input --------------------------------------------------------------


def test_bad_files_warn_and_never_fail(root):
    p = parser_v1(root)
    for _ in range(5):
        make_run(p, logs=[{"loss": 1.0}, {"loss": 0.5}])
    runs = sorted((root / "runs").iterdir())
    # 1: corrupt params.yaml and no run.json -> skipped with a warning naming the file
    (runs[0] / "run.json").unlink()
    (runs[0] / "params.yaml").write_text("lr: [unclosed\n")
    # 2: empty params.yaml (edited after the run) -> shown from run.json, warned
    (runs[1] / "params.yaml").write_text("")
    # 3: garbage in the middle of metrics.jsonl and a truncated last line
    (runs[2] / "metrics.jsonl").write_text(
        '{"step": 0, "time": 1.0, "loss": 1.0}\nnot json\n{"step": 1, "time": 2.0, "loss": 0.25}\n{"step": 2, "ti'
    )
    # 4: corrupt run.json -> falls back to params.yaml
    (runs[3] / "run.json").write_text("{not json")
    # a dangling index link
    (root / "index" / "000099-2020-01-01-00-00-00.yaml").symlink_to("../runs/000099-2020-01-01-00-00-00/params.yaml")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = Index(root).info()
    messages = [str(w.message) for w in caught if issubclass(w.category, IndexWarning)]
    assert df.id.tolist() == [2, 3, 4, 5]
    assert any(str(runs[0] / "params.yaml") in m for m in messages)
    assert any(str(runs[1] / "params.yaml") in m for m in messages)
    assert any(str(runs[2] / "metrics.jsonl") in m and "1 unreadable" in m for m in messages)
    assert any(str(runs[3] / "run.json") in m for m in messages)
    assert any("000099-2020-01-01-00-00-00.yaml" in m for m in messages)
    assert df.set_index("id").loc[2, "lr"] == 0.1  # from run.json
    assert df.set_index("id").loc[3, "loss"] == 0.25
    assert df.set_index("id").loc[4, "status"] == "unknown" and df.set_index("id").loc[4, "lr"] == 0.1
    # the same warnings again from the cache, not silence
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        Index(root).info()
    assert sorted(str(w.message) for w in again if issubclass(w.category, IndexWarning)) == sorted(messages)


def test_hand_edited_params_yaml_wins(root):
    p = parser_v1(root)
    make_run(p)
    run = next((root / "runs").iterdir())
    text = (run / "params.yaml").read_text()
    (run / "params.yaml").write_text(text.replace("lr: 0.1", "lr: 0.25").replace("epochs: 2", "epochs: 7"))
    df = Index(root).info()
    assert df["lr"].tolist() == [0.25] and df["epochs"].tolist() == [7]
    assert df["lr"].dtype == np.float64 and df["epochs"].dtype == np.int64
    assert df["tag"].tolist() == ["1"]  # YAML's '1' is still the string the schema declares


# -- plugins, metrics(), varying() -------------------------------------------


def test_indexing_plugin_adds_columns(root):
    p = parser_v1(root)
    a = make_run(p)
    make_run(p)
    exman.fs.atomic_write(a.root / "results.json", json.dumps({"test_acc": 0.9, "best_epoch": 3}))
    ix = Index(root, plugins=[results_columns])
    df = ix.info()
    assert df.attrs["plugins"] == ["test_acc", "best_epoch"]
    assert df["test_acc"].tolist()[0] == 0.9 and np.isnan(df["test_acc"][1])
    assert df["best_epoch"].dtype == np.float64
    # results written later are seen on the next call (the folder changed)
    age(root)
    ix.info()
    second = sorted((root / "runs").iterdir())[1]
    exman.fs.atomic_write(second / "results.json", json.dumps({"test_acc": 0.5}))
    age(second, 1800)
    assert ix.info()["test_acc"].tolist() == [0.9, 0.5]
    assert "test_acc" not in Index(root).info().columns


def test_metrics_long_frame(root):
    p = parser_v1(root, automark=["opt"])
    make_run(p, logs=[{"loss": 1.0, "acc": 0.5}, {"loss": 0.5}])
    make_run(p, "--opt", "adam", logs=[{"step": 10, "loss": 2.0}])
    ix = Index(root)
    m = ix.metrics()
    assert list(m.columns) == ["id", "step", "time", "metric", "value"]
    assert m[["id", "step", "metric", "value"]].values.tolist() == [
        [1, 0, "loss", 1.0],
        [1, 0, "acc", 0.5],
        [1, 1, "loss", 0.5],
        [2, 10, "loss", 2.0],
    ]
    assert m["id"].dtype == np.int64 and m["step"].dtype == np.int64 and m["value"].dtype == np.float64
    assert m["time"].dtype == "datetime64[ns]"
    assert ix.metrics("opt/adam")["id"].unique().tolist() == [2]
    df = ix.info()
    assert ix.metrics(df[df.opt == "sgd"])["id"].unique().tolist() == [1]
    assert (m["time"] >= df["start"].min() - pd.Timedelta(seconds=1)).all()


def test_varying(root):
    p = parser_v1(root)
    make_run(p)
    make_run(p, "--lr", "0.5", "--layers", "1", "2")
    make_run(p, "--lr", "0.5", "--layers", "1", "2", "--seed", "1")
    ix = Index(root)
    df = ix.info()
    assert ix.varying() == ["lr", "layers", "seed"] == ix.varying(df)
    assert ix.varying(df[df.lr == 0.5]) == ["seed"]
    assert index_module.varying(df[df.id == 1]) == []


# -- the cache --------------------------------------------------------------


def test_warm_call_reads_nothing_and_matches_cold(root, monkeypatch):
    p = parser_v1(root, automark=["opt"])
    for lr in (0.1, 0.2, 0.3):
        make_run(p, "--lr", lr, logs=[{"loss": lr}])
    make_run(p, fail=True)
    age(root)
    count = reads(monkeypatch)
    cold = Index(root, cache=False).info(include_failed=True)
    assert count["n"] == 4
    Index(root).info(include_failed=True)
    count["n"] = 0
    warm = Index(root).info(include_failed=True)
    assert count["n"] == 0
    pd.testing.assert_frame_equal(cold, warm)
    assert Index(root).info("opt/sgd").id.tolist() == [1, 2, 3]
    count["n"] = 0
    Index(root).info("opt/sgd")
    assert count["n"] == 0


def test_cache_is_never_stale(root, monkeypatch):
    p = parser_v1(root, automark=["opt"])
    for lr in (0.1, 0.2, 0.3):
        make_run(p, "--lr", lr, logs=[{"loss": lr}])
    age(root)
    ix = Index(root)
    ix.info()
    count = reads(monkeypatch)

    # a new run
    new = make_run(p, "--lr", "0.4")
    age(new.root, 1800)
    assert ix.info().lr.tolist() == [0.1, 0.2, 0.3, 0.4] and count["n"] == 1

    # a deleted run: index link removed, and a run folder removed under its link
    runs = sorted((root / "runs").iterdir())
    (root / "index" / (runs[0].name + ".yaml")).unlink()
    shutil.rmtree(runs[1])
    with pytest.warns(IndexWarning, match=runs[1].name):
        assert ix.info().id.tolist() == [3, 4]
    (root / "index" / (runs[1].name + ".yaml")).unlink()

    # a new mark
    (root / "marked" / "best").mkdir()
    (root / "marked" / "best" / runs[3].name).symlink_to(f"../../runs/{runs[3].name}")
    assert ix.info("best").id.tolist() == [4]
    (root / "marked" / "best" / runs[2].name).symlink_to(f"../../runs/{runs[2].name}")
    assert ix.info("best").id.tolist() == [3, 4]

    # params.yaml edited in place, same size, with an old mtime: only the stat key can tell
    params = runs[2] / "params.yaml"
    params.write_text(params.read_text().replace("lr: 0.3", "lr: 0.7"))
    age(params, 900)
    count["n"] = 0
    assert ix.info().lr.tolist() == [0.7, 0.4] and count["n"] == 1

    # a new metric appended to a finished run
    with open(runs[3] / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 5, "time": time.time(), "acc": 0.75}) + "\n")
    age(runs[3] / "metrics.jsonl", 600)
    df = ix.info()
    assert df.acc.isna().tolist() == [True, False] and df.acc.tolist()[1] == 0.75

    # cached and uncached answers agree
    pd.testing.assert_frame_equal(ix.info(), Index(root, cache=False).info())


def test_corrupt_cache_is_rebuilt_silently(root):
    p = parser_v1(root)
    make_run(p)
    make_run(p)
    ix = Index(root)
    expected = ix.info()
    cache = pathlib.Path(index_cache.cache_path(root))
    for garbage in (b"", b"\x80\x05garbage", cache.read_bytes()[:-20]):
        cache.write_bytes(garbage)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pd.testing.assert_frame_equal(ix.info(), expected)
        assert index_cache.load(root, index_cache.header([]))  # rewritten and usable
    cache.unlink()
    pd.testing.assert_frame_equal(ix.info(), expected)


def test_cache_refuses_code(root):
    import pickle

    p = parser_v1(root)
    make_run(p)
    expected = Index(root).info()
    marker = root.parent / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    pathlib.Path(index_cache.cache_path(root)).write_bytes(pickle.dumps((index_cache.header([]), Evil())))
    pd.testing.assert_frame_equal(Index(root).info(), expected)
    assert not marker.exists()


CONCURRENT = """
import sys, exman
for _ in range(5):
    df = exman.Index(sys.argv[1]).info()
    assert len(df) >= 6, len(df)
"""


def test_concurrent_cache_writers(root, tmp_path):
    p = parser_v1(root)
    for _ in range(6):
        make_run(p, logs=[{"loss": 1.0}])
    reader = tmp_path / "reader.py"
    reader.write_text(CONCURRENT)
    procs = [
        subprocess.Popen(
            [sys.executable, str(reader), str(root)], env=env_for_subprocess(), stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    for _ in range(3):
        make_run(p, logs=[{"loss": 0.5}])  # runs appear while they read
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert len(index_cache.load(root, index_cache.header([]))["entries"]) >= 6
    pd.testing.assert_frame_equal(Index(root).info(), Index(root, cache=False).info())


def test_unchanged_root_answers_from_the_packed_frame(root, monkeypatch):
    from exman.index import frame as index_frame

    p = parser_v1(root)
    make_run(p, logs=[{"loss": 1.0, "note": "a"}])
    make_run(p, "--lr", "1", "--tag", "2", "--flag", "yes", "--opt", "adam", "--layers", "4", "--seed", "3")
    make_run(p, fail=True)
    make_run(p, "--tmp")
    live = p.parse_args(["--tag", "x"])  # still running in this process
    age(root)
    for include_failed, include_tmp in ((False, False), (True, False), (False, True), (True, True)):
        which = {"include_failed": include_failed, "include_tmp": include_tmp}
        Index(root).info(**which)
        builds = {"n": 0}
        real = index_frame.build

        def counting(*args, **kwargs):
            builds["n"] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(index_frame, "build", counting)
        warm = Index(root).info(**which)
        monkeypatch.setattr(index_frame, "build", real)
        assert builds["n"] == 0
        cold = Index(root, cache=False).info(**which)
        pd.testing.assert_frame_equal(warm, cold)
        assert warm.attrs == cold.attrs and len(warm) == 3 + include_failed + include_tmp
        assert warm.status.tolist()[-1] == "running"
    live.safe_experiment.__exit__(None, None, None)
    assert Index(root).info().status.tolist() == ["completed"] * 3


def test_unchanged_index_folder_still_sees_file_changes(root, monkeypatch):
    """With index/ untouched the warm check skips listing it; run files are still compared."""
    p = parser_v1(root)
    for lr in (0.1, 0.2, 0.3):
        make_run(p, "--lr", lr, logs=[{"loss": lr}])
    age(root)
    ix = Index(root)
    ix.info()
    assert ix.info().lr.tolist() == [0.1, 0.2, 0.3]
    head = index_cache.header([])
    assert index_cache.load_split(root, head, index_cache.FRAME_FILE.format("index"))[0]["memo"]["listing"]
    runs = sorted((root / "runs").iterdir())
    params = runs[0] / "params.yaml"
    params.write_text(params.read_text().replace("lr: 0.1", "lr: 0.9"))
    age(params, 1800)
    count = reads(monkeypatch)
    assert ix.info().lr.tolist() == [0.9, 0.2, 0.3] and count["n"] == 1
    with open(runs[1] / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 9, "time": time.time(), "loss": 0.01}) + "\n")
    age(runs[1] / "metrics.jsonl", 1700)
    assert ix.info().loss.tolist() == [0.1, 0.01, 0.3]
    shutil.rmtree(runs[2])  # its index link now dangles; index/ itself is unchanged
    with pytest.warns(IndexWarning, match=runs[2].name):
        assert ix.info().id.tolist() == [1, 2]


def test_slurm_columns_only_for_runs_started_under_slurm(root, monkeypatch):
    """run.json's slurm record as typed metadata columns, present once some run has one (like git's);
    a parameter keeps its name, the metadata moves to exman_<key>."""
    p = exman.ExParser(root=root)
    p.add_argument("--slurm_node", default="mine")
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURMD_NODENAME", "SLURM_RESTART_COUNT"):
        monkeypatch.delenv(name, raising=False)
    make_run(p)
    before = Index(root).info()
    assert not [c for c in before.columns if "slurm_" in c and c != "slurm_node"]
    # an array task, restarted once, then a plain job (no array task id)
    for name, value in (
        ("SLURM_JOB_ID", "125"),
        ("SLURM_ARRAY_JOB_ID", "120"),
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURMD_NODENAME", "node7"),
        ("SLURM_RESTART_COUNT", "1"),
    ):
        monkeypatch.setenv(name, value)
    make_run(p)
    for name in ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("SLURM_JOB_ID", "130")
    make_run(p)
    for df in (Index(root).info(), Index(root, cache=False).info()):  # patched onto the memo, and built anew
        assert list(df["slurm_node"]) == ["mine"] * 3
        node = meta_column(df, "slurm_node")
        assert node == "exman_slurm_node"
        assert df["slurm_job"].isna().tolist() == [True, False, False]
        assert df["slurm_job"].tolist()[1:] == ["120", "130"]
        assert str(df["slurm_task"].dtype) == "Int64" and str(df["slurm_restart"].dtype) == "Int64"
        assert df["slurm_task"].isna().tolist() == [True, False, True] and df["slurm_task"][1] == 5
        assert df["slurm_restart"].isna().tolist() == [True, False, False]
        assert df["slurm_restart"].tolist()[1:] == [1, 0]
        assert df[node].isna().tolist() == [True, False, False] and df[node][1] == "node7"
        assert {meta_column(df, k) for k in ("slurm_job", "slurm_task", "slurm_restart")} == {
            "slurm_job",
            "slurm_task",
            "slurm_restart",
        }


@pytest.mark.parametrize("name", ["p\0.yaml", "../params.yaml", "a\nb.yaml", 5, ""])
def test_a_params_file_name_that_is_not_a_plain_name_falls_back_to_params_yaml(tmp_path, name):
    # run.json names the params file a storage plugin wrote; a damaged name must not leave the folder
    # nor raise from deep inside (NUL: "embedded null byte").
    p = exman.ExParser(root=tmp_path / "exman")
    p.add_argument("--lr", type=float, default=0.1)
    args = p.parse_args(["--tmp", "--lr", "0.5"])
    meta = json.loads((args.root / "run.json").read_text())
    (args.root / "run.json").write_text(json.dumps(dict(meta, params_file=name)))
    df = Index(tmp_path / "exman", cache=False).info(include_tmp=True)
    assert df["lr"].tolist() == [0.5]
    assert exman.layout.params_path(args.root, {"params_file": name}) == args.root / "params.yaml"
