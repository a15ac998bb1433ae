"""Repeated ``Index.info()`` calls on one Index: the in-memory answer is never stale.

Every change is made with real runs through ExParser or real file edits, then
aged past the racy window so the next call really is a warm one; each answer is
compared with an uncached read of the same root.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pandas as pd
import pytest
from conftest import count_calls
from test_index import age, make_run, parser_v1

from exman.index import Index
from exman.index import cache as index_cache


@pytest.fixture
def root(tmp_path):
    return tmp_path / "exman"


def same_as_cold(ix, **which):
    df = ix.info(**which)
    pd.testing.assert_frame_equal(df, Index(ix.root, cache=False).info(**which))
    assert df.attrs == Index(ix.root, cache=False).info(**which).attrs
    return df


def disk_reads(monkeypatch):
    """Count reads of the packed answer on disk: zero means the call was answered from memory."""
    return count_calls(monkeypatch, index_cache, "load_split")


def three_runs(root):
    p = parser_v1(root, automark=["opt"])
    for lr in (0.1, 0.2, 0.3):
        make_run(p, "--lr", lr, logs=[{"loss": lr}])
    age(root)
    return p


def test_second_call_is_answered_from_memory(root, monkeypatch):
    three_runs(root)
    ix = Index(root)
    first = same_as_cold(ix)
    count = disk_reads(monkeypatch)
    second = ix.info()
    assert count["n"] == 0
    pd.testing.assert_frame_equal(first, second)
    # the caller owns its copy: changing it (a list in a cell too) changes no later answer
    second.loc[0, "lr"] = 99.0
    second["layers"].iloc[0].append(1)
    second.attrs["params"].append("x")
    second["extra"] = 1
    pd.testing.assert_frame_equal(ix.info(), first)
    assert ix.info().attrs == first.attrs
    # another Index object has its own memory: it reads the packed answer from disk
    Index(root).info()
    assert count["n"] == 1


def test_new_and_deleted_run(root):
    p = three_runs(root)
    ix = Index(root)
    ix.info()
    new = make_run(p, "--lr", "0.4")
    age(new.root, 1800)
    age(root / "index", 1800)
    assert same_as_cold(ix).lr.tolist() == [0.1, 0.2, 0.3, 0.4]
    (root / "index" / (new.root.name + ".yaml")).unlink()
    shutil.rmtree(new.root)
    assert same_as_cold(ix).lr.tolist() == [0.1, 0.2, 0.3]
    # an index link re-pointed by hand (ln -sf) to another run: read through the link
    runs = sorted((root / "runs").iterdir())
    link = root / "index" / (runs[0].name + ".yaml")
    link.unlink()
    link.symlink_to(f"../runs/{runs[2].name}/params.yaml")
    age(root / "index", 1800)
    assert same_as_cold(ix).lr.tolist() == [0.2, 0.3]


def test_new_and_removed_mark(root):
    three_runs(root)
    ix = Index(root)
    runs = sorted((root / "runs").iterdir())
    (root / "marked" / "best").mkdir()
    (root / "marked" / "best" / runs[0].name).symlink_to(f"../../runs/{runs[0].name}")
    assert ix.info("best").id.tolist() == [1]
    (root / "marked" / "best" / runs[2].name).symlink_to(f"../../runs/{runs[2].name}")
    assert ix.info("best").id.tolist() == [1, 3]
    (root / "marked" / "best" / runs[0].name).unlink()
    assert ix.info("best").id.tolist() == [3]
    assert ix.info("opt/").id.tolist() == [1, 2, 3]
    shutil.rmtree(root / "marked" / "best")
    with pytest.raises(KeyError):
        ix.info("best")


def test_hand_edited_params_and_appended_metric_on_finished_runs(root):
    three_runs(root)
    ix = Index(root)
    ix.info()
    runs = sorted((root / "runs").iterdir())
    params = runs[1] / "params.yaml"
    params.write_text(params.read_text().replace("lr: 0.2", "lr: 0.5"))  # in place, same size
    age(params, 900)
    assert same_as_cold(ix).lr.tolist() == [0.1, 0.5, 0.3]
    with open(runs[2] / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 7, "time": time.time(), "loss": 0.01, "acc": 0.9}) + "\n")
    age(runs[2] / "metrics.jsonl", 600)
    df = same_as_cold(ix)
    assert df.loss.tolist() == [0.1, 0.2, 0.01] and df.acc.isna().tolist() == [True, True, False]


def test_running_run_completes_or_moves_to_fails(root):
    p = three_runs(root)
    done = p.parse_args(["--lr", "0.4"])
    doomed = p.parse_args(["--lr", "0.5"])
    age(root)
    ix = Index(root)
    assert same_as_cold(ix, include_failed=True).status.tolist()[3:] == ["running", "running"]
    assert same_as_cold(ix).status.tolist()[3:] == ["running", "running"]
    done.safe_experiment.__exit__(None, None, None)
    age(done.root)
    assert same_as_cold(ix).status.tolist()[3:] == ["completed", "running"]
    error = RuntimeError("failing on purpose")
    doomed.safe_experiment.__exit__(RuntimeError, error, None)
    moved = root / "fails" / doomed.root.name
    assert moved.is_dir() and not doomed.root.exists()
    age(root)
    assert same_as_cold(ix).id.tolist() == [1, 2, 3, 4]
    df = same_as_cold(ix, include_failed=True)
    assert df.status.tolist()[3:] == ["completed", "failed"] and df.root.tolist()[4] == moved


def test_rewritten_run_json_of_a_running_run_is_seen(root):
    p = three_runs(root)
    live = p.parse_args([])
    age(root)
    ix = Index(root)
    assert ix.info().status.tolist()[-1] == "running"
    # the same files, but the recorded pid is now gone: only the status can tell
    meta = json.loads((live.root / "run.json").read_text())
    meta["pid"] = 2**22 + 12345  # above pid_max's default: no such process
    stat = os.stat(live.root / "run.json")
    (live.root / "run.json").write_text(json.dumps(meta))
    os.utime(live.root / "run.json", ns=(stat.st_atime_ns, stat.st_mtime_ns - 3_600 * 10**9))
    assert same_as_cold(ix).status.tolist()[-1] == "crashed"
    live.safe_experiment.__exit__(None, None, None)


def walks(monkeypatch):
    """Count the long way (every run checked against the per-run cache, the frame rebuilt)."""
    count = {"n": 0}
    real = Index._walk

    def counting(self, *args, **kwargs):
        count["n"] += self.cache  # the uncached reads to compare with do not count
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Index, "_walk", counting)
    return count


@pytest.mark.parametrize("fresh", [False, True], ids=["same-index", "new-index"])
def test_few_changes_patch_the_last_answer(root, monkeypatch, fresh):
    """New, changed and failed runs replace or add rows without rebuilding; the answer equals a full build."""
    p = three_runs(root)
    ix = Index(root)
    ix.info(include_failed=True)
    ix.info()
    count = walks(monkeypatch)

    def check(**which):
        df = (Index(root) if fresh else ix).info(**which)
        cold = Index(root, cache=False).info(**which)
        pd.testing.assert_frame_equal(df, cold)
        assert df.attrs == cold.attrs
        return df

    live = p.parse_args(["--lr", "0.4", "--seed", "5"])  # running, no metric yet: NaN in float columns
    age(root)
    assert check(include_failed=True).status.tolist() == ["completed"] * 3 + ["running"]
    with live.safe_experiment as run:
        run.log(loss=0.04)
    age(root)
    assert check(include_failed=True).loss.tolist() == [0.1, 0.2, 0.3, 0.04]
    make_run(p, "--opt", "adam", fail=True)
    age(root)
    assert check(include_failed=True).status.tolist()[-1] == "failed"
    params = sorted((root / "runs").iterdir())[0] / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 2", "epochs: 9"))
    age(params, 900)
    assert check(include_failed=True).epochs.tolist()[:4] == [9, 2, 2, 2]
    assert count["n"] == 0
    # A run that left can change the types of the rows that stay (its NaN made a column
    # float64): the long way types them, once per answer.
    runs = sorted((root / "runs").iterdir())
    (root / "index" / (runs[1].name + ".yaml")).unlink()  # a deleted run
    shutil.rmtree(runs[1])
    shutil.rmtree(sorted((root / "fails").iterdir())[0])  # a failed run cleaned up
    age(root)
    assert check(include_failed=True).id.tolist() == [1, 3, 4]
    assert check().id.tolist() == [1, 3, 4]
    walked = count["n"]
    assert walked <= 2
    # a new column (a metric no run had) needs the long way, and gets it
    make_run(p, logs=[{"brand_new": 1.5}])
    age(root)
    assert check(include_failed=True).brand_new.tolist()[-1] == 1.5
    assert count["n"] == walked + 1


@pytest.mark.parametrize("fresh", [False, True], ids=["same-index", "new-index"])
@pytest.mark.parametrize("edit", ["seed: null -> 7", "flag: null -> false", "epochs: 2.5 -> 3"])
def test_changed_row_that_held_the_only_nan_is_typed_as_a_full_build(root, fresh, edit):
    """The old version of one run made a column float64 (its NaN or float) or object (bool + NaN);
    once that run is edited the whole column is int64 or bool again, cached or not."""
    key, change = edit.split(": ")
    before, after = change.split(" -> ")
    p = parser_v1(root)
    for seed in (1, 2, 3):
        make_run(p, "--seed", seed)
    params = sorted((root / "runs").iterdir())[1] / "params.yaml"
    text = params.read_text()
    line = next(x for x in text.splitlines() if x.startswith(key + ":"))
    params.write_text(text.replace(line, f"{key}: {before}"))
    age(root)
    ix = Index(root)
    first = same_as_cold(ix)
    assert first[key].dtype in ("float64", object)
    params.write_text(params.read_text().replace(f"{key}: {before}", f"{key}: {after}"))
    age(params, 900)
    df = same_as_cold(Index(root) if fresh else ix)
    assert df[key].dtype in ("int64", bool)
    make_run(p, "--seed", 4)  # and a new run on top of that answer
    age(root)
    assert same_as_cold(Index(root) if fresh else ix)[key].dtype in ("int64", bool)
