"""exman.analysis.statcache: remembered scipy/statsmodels answers, checked against the libraries themselves."""

from __future__ import annotations

import json
import math
import os

import pytest

np = pytest.importorskip("numpy")
stats = pytest.importorskip("scipy.stats")
multitest = pytest.importorskip("statsmodels.stats.multitest")

from exman.analysis import statcache  # noqa: E402

PPF = "scipy.stats.t.ppf"


def test_answers_are_the_librarys_and_only_for_the_exact_inputs():
    memo = statcache.Memo()
    dof = np.array([3.0, 7.5, 19.0])
    with statcache.using(memo):
        first = statcache.elementwise(PPF, stats.t.ppf, 0.975, dof)[0]
    assert first.tolist() == stats.t.ppf(0.975, dof).tolist() and memo.added == 3

    # A wrong answer planted for exactly 3.0 comes back for 3.0 only: one ulp away is a new question.
    memo.entries[f"{PPF}:0.975,3.0"] = [-1.0]
    near = np.nextafter(3.0, 4.0)
    asked = []

    def ppf(q, d):
        asked.append(d.tolist())
        return stats.t.ppf(q, d)

    with statcache.using(memo):
        again = statcache.elementwise(PPF, ppf, 0.975, np.array([3.0, near, 19.0]))[0]
    assert asked == [[near]]  # the library was asked about the new input alone
    assert again.tolist() == [-1.0, stats.t.ppf(0.975, near), stats.t.ppf(0.975, 19.0)]

    # Outside using(), nothing is remembered or answered from the memo.
    assert statcache.elementwise(PPF, stats.t.ppf, 0.975, np.array([3.0]))[0].tolist() == [stats.t.ppf(0.975, 3.0)]


def test_two_outputs_and_whole_vectors_match_the_libraries():
    args = ([0.5, 0.7], [0.1, 0.2], [4.0, 5.0], [0.6, 0.6], [0.15, 0.3], [4.0, 3.0])
    memo = statcache.Memo()
    name = "scipy.stats.ttest_ind_from_stats(equal_var=False)"

    def welch(*a):
        return tuple(stats.ttest_ind_from_stats(*a, equal_var=False))

    with statcache.using(memo):
        computed = statcache.elementwise(name, welch, *args, outputs=2)
        remembered = statcache.elementwise(name, None, *args, outputs=2)  # nothing left to compute
    expected = stats.ttest_ind_from_stats(*map(np.array, args), equal_var=False)
    for got in (computed, remembered):
        assert got[0].tolist() == expected.statistic.tolist() and got[1].tolist() == expected.pvalue.tolist()

    p = np.array([0.01, 0.04, 0.03, 0.5])
    holm = "statsmodels.stats.multitest.multipletests(method=holm)"
    with statcache.using(memo):
        adjusted = statcache.whole(holm, lambda v: multitest.multipletests(v, method="holm")[1], p)
        assert statcache.whole(holm, None, p).tolist() == adjusted.tolist()
        changed = statcache.whole(holm, lambda v: multitest.multipletests(v, method="holm")[1], p[:3])
    assert adjusted.tolist() == multitest.multipletests(p, method="holm")[1].tolist()
    assert changed.tolist() == multitest.multipletests(p[:3], method="holm")[1].tolist()


def test_saved_memo_loads_back_only_with_the_same_libraries(tmp_path):
    path = tmp_path / "exman" / ".exman" / "stats-cache.json"
    memo = statcache.load(path)  # no file yet
    assert memo.entries == {} and memo.stamp is not None
    with statcache.using(memo):
        statcache.elementwise("scipy.stats.t.sf", stats.t.sf, np.array([math.inf, 1.5, math.nan]), 3.0)
    statcache.save(path, memo)  # its folder made on the way
    loaded = statcache.load(path)
    # inf and NaN, as inputs and as answers, survive the JSON round trip
    assert repr(loaded.entries) == repr(memo.entries) and len(memo.entries) == 3
    assert math.isnan(loaded.entries["scipy.stats.t.sf:nan,3.0"][0])

    data = json.loads(open(path).read())
    data["stamp"][0][3] += 1  # scipy reinstalled: its files changed
    with open(path, "w") as fh:
        json.dump(data, fh)
    assert statcache.load(path).entries == {}

    for damaged in ("", "{", '{"format": 1}', json.dumps({**data, "stamp": memo.stamp, "entries": {"k": ["x"]}})):
        with open(path, "w") as fh:
            fh.write(damaged)
        assert statcache.load(path).entries == {}

    path.unlink()
    os.mkfifo(path)  # planted: reading it would block until someone writes
    assert statcache.load(path).entries == {}


def test_nothing_written_through_a_linked_state_folder(tmp_path):
    root, elsewhere = tmp_path / "exman", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, root / ".exman")
    memo = statcache.load(root / ".exman" / "stats-cache.json")
    with statcache.using(memo):
        statcache.elementwise(PPF, stats.t.ppf, 0.975, np.array([2.0]))
    statcache.save(root / ".exman" / "stats-cache.json", memo)
    assert list(elsewhere.iterdir()) == []
