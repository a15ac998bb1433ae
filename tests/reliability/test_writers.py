"""Many processes start runs on one root at the same moment.

Each writer imports exman and builds its parser, then waits at a gate; the
gate opens when all are ready, so the claims really race. Every run must be
recorded exactly once, with a distinct id, an index link and a claim folder.
"""

from __future__ import annotations

import datetime
import subprocess
from collections import Counter

import pytest

from .tools import SLOW, Gate, check_root, index_info, python, report, slow_only

WRITER = (
    """
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--writer", type=int)
parser.add_argument("--round", type=int)
parser.add_argument("--lr", type=float, default=0.1)
"""
    + Gate.WAIT
    + """
args = parser.parse_args()
with args.safe_experiment as run:
    run.log(loss=args.lr * args.writer)
"""
)


def start_round(folder, script, writers: int, rnd: int) -> float:
    """``writers`` processes start one run each at the same moment; return the gate's wait."""
    gate = Gate(folder / f"gate-{rnd}")
    procs = [
        python(
            [script, "--writer", i, "--round", rnd],
            env_extra=gate.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(writers)
    ]
    try:
        waited = gate.open_when(writers, procs)
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0 and "Traceback" not in err, f"writer failed ({proc.returncode}):\n{err}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return waited


def check_writers(root, writers: int, rounds: int):
    rep = check_root(root)
    runs = rep.runs["runs"]
    expected = writers * rounds
    assert not rep.temp, f"temp files left: {rep.temp}"
    assert not rep.runs["tmp"] and not rep.runs["fails"]
    # Every (writer, round) recorded once.
    who = Counter((rep.params[r]["writer"], rep.params[r]["round"]) for r in runs)
    assert set(who) == {(w, r) for w in range(writers) for r in range(rounds)}, "a run is missing"
    assert max(who.values()) == 1, f"recorded twice: {[k for k, v in who.items() if v > 1]}"
    # Ids distinct, and the same in the folder name, params.yaml and run.json.
    ids = rep.ids()
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"duplicate ids: {dupes}"
    for run in runs:
        assert rep.params[run]["id"] == rep.meta[run]["id"] == int(run.name.split("-")[0])
        assert rep.meta[run]["status"] == "completed"
        assert len(rep.metrics[run]) == 1
    # The index is complete and points at the right files.
    assert sorted(link.name for link in rep.links) == sorted(r.name + ".yaml" for r in runs)
    claims = sorted(int(p.name) for p in (root / ".exman" / "ids").iterdir())
    assert claims == sorted(ids)
    info = index_info(root)
    if info is not None:
        assert len(info) == expected and info["id"].is_unique
        assert set(info["status"]) == {"completed"}
    starts = [datetime.datetime.fromisoformat(rep.meta[r]["start"]) for r in runs]
    return len(runs), len(dupes), starts


def spread_ms(starts) -> float:
    return (max(starts) - min(starts)).total_seconds() * 1000


@pytest.mark.parametrize(
    "writers, rounds",
    [pytest.param(24, 2, id="24x2"), pytest.param(64, 10, id="64x10", marks=slow_only)],
)
def test_many_writers_start_at_once(tmp_path, writers, rounds):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    root = tmp_path / "exman"
    for rnd in range(rounds):
        start_round(tmp_path, script, writers, rnd)
    recorded, dupes, starts = check_writers(root, writers, rounds)
    assert recorded == writers * rounds and dupes == 0
    report(
        f"many writers {writers}x{rounds}: {recorded}/{writers * rounds} runs recorded, {dupes} duplicate ids, "
        f"index complete; starts of the last round within {spread_ms(starts[-writers:]):.0f} ms"
    )


def test_writers_on_a_root_made_by_an_older_exman(tmp_path):
    """A root without claim folders (exman 0.1.9): the first claims scan it, then race."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    root = tmp_path / "exman"
    for sub in ("runs", "index", "marked", "tmp", "fails"):
        (root / sub).mkdir(parents=True)
    old = root / "runs" / "000007-2019-01-01-00-00-00"
    old.mkdir()
    (old / "params.yaml").write_text(
        "lr: 0.1\nid: 7\nroot: runs/000007-2019-01-01-00-00-00\ntime: '2019-01-01T00:00:00'\n"
    )
    writers = 16 if not SLOW else 64
    start_round(tmp_path, script, writers, 0)
    ids = sorted(int(p.name.split("-")[0]) for p in (root / "runs").iterdir())
    assert ids == [7, *range(8, 8 + writers)], ids


# Each operation process waits at the same gate as the writers, then works on the root.
OPS = (
    Gate.WAIT
    + """
import sys
from exman.cli import make_cli

def cli(*args):
    try:
        make_cli().main(list(args), prog_name="exman", standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise

root = sys.argv[2]
if sys.argv[1] == "delete":
    cli("--root", root, "delete", "--all", "--yes", "1-5")
    cli("--root", root, "delete", "6-8")
elif sys.argv[1] == "mark":
    for _ in range(3):
        cli("--root", root, "mark", "mixed", "9-100000")
elif sys.argv[1] == "info":
    from exman import Index
    for _ in range(3):
        df = Index(root).info()
        assert df["id"].is_unique and len(df) >= 2, df
"""
)


@pytest.mark.parametrize("writers", [pytest.param(16, id="16"), pytest.param(64, id="64", marks=slow_only)])
def test_mixed_writers_with_delete_mark_and_info(tmp_path, writers):
    """Starts race with `exman delete`, `exman mark` and `Index.info()` on the same root."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    ops = tmp_path / "ops.py"
    ops.write_text(OPS)
    root = tmp_path / "exman"
    start_round(tmp_path, script, 10, 0)  # runs 1-10: 1-5 will be deleted, 6-8 unindexed, 9-10 marked
    gate = Gate(tmp_path / "gate-mixed")
    procs = [
        python(
            [script, "--writer", i, "--round", 1],
            env_extra=gate.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(writers)
    ]
    procs += [
        python([ops, op, root], env_extra=gate.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for op in ("delete", "mark", "info")
    ]
    try:
        gate.open_when(len(procs), procs)
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0 and "Traceback" not in err, f"{proc.args}: {proc.returncode}\n{err}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()

    rep = check_root(root)
    runs = {int(r.name.split("-")[0]): r for r in rep.runs["runs"]}
    assert not set(runs) & {1, 2, 3, 4, 5}, "delete --all left a run"
    new = [r for r in runs.values() if rep.params[r]["round"] == 1]
    assert sorted(rep.params[r]["writer"] for r in new) == list(range(writers)), "a writer's run is missing"
    assert min(int(r.name.split("-")[0]) for r in new) > 10, "a deleted run's id was handed out again"
    assert len(set(runs)) == len(runs) == 5 + writers
    indexed = {link.name[: -len(".yaml")] for link in rep.links}
    assert indexed == {r.name for i, r in runs.items() if i not in (6, 7, 8)}
    marked = {p.name for p in (root / "marked" / "mixed").iterdir()}
    assert {runs[9].name, runs[10].name} <= marked and marked <= {r.name for r in runs.values()}
    info = index_info(root)
    assert info is not None and len(info) == 2 + writers and set(info["status"]) == {"completed"}
    report(
        f"mixed writers: {writers} starts during delete/mark/Index.info(): {len(new)}/{writers} recorded, "
        f"0 duplicate ids, deleted ids not reused"
    )
