"""SIGKILL at every stage of a run, and at random moments in a loop.

A killed process cannot clean up, so what it leaves is exactly what exman's
write order and atomic writes guarantee: a root that still reads, earlier runs
untouched, and the killed run either absent or recognisable as unfinished.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from .tools import SLOW, assert_untouched, check_root, index_info, python, report, snapshot
from .tools import env as tools_env

# A plugin object kills its own process at a named point of the lifecycle
# (the hook order is documented in exman/hookspecs.py).
SCRIPT = """
import os, pathlib, signal, sys
import exman

AT = os.environ.get("KILL_AT", "")
GO = os.environ.get("GO_FILE")


def die(where):
    if AT == where:
        os.kill(os.getpid(), signal.SIGKILL)


class Killer:
    @exman.hookimpl(wrapper=True)
    def claim_id(self, parser):
        number = yield
        die("claimed")            # id claimed, no run folder yet
        return number

    @exman.hookimpl(wrapper=True)
    def storage(self, run, params):
        die("folder")             # empty run folder
        path = yield
        return path

    @exman.hookimpl(tryfirst=True)
    def on_run_start(self, run):
        die("params")             # params.yaml written, nothing else

    @exman.hookimpl(wrapper=True)
    def on_log(self, run, row):
        result = yield
        if row["step"] == 3:
            die("metrics")        # three metrics rows written
        return result

    @exman.hookimpl(tryfirst=True)
    def on_run_end(self, run, status):
        die("ending")             # block left, status not yet written

    @exman.hookimpl(tryfirst=True)
    def on_fail(self, run):
        die("failing")            # status failed written, links still in place


class Linked:
    @exman.hookimpl
    def on_run_start(self, run):
        die("recorded")           # run.json written, index link and marks not yet


parser = exman.ExParser(root=exman.simpleroot(__file__), plugins=[Killer(), Linked()], automark=["fail"])
parser.add_argument("--fail", type=bool, default=False)
parser.add_argument("--steps", type=int, default=6)
parser.add_argument("--blob", default="b" * int(os.environ.get("BLOB", "0")))
if GO:
    pathlib.Path(GO).touch()
args = parser.parse_args()
die("parsed")
with args.safe_experiment as run:
    print("inside the experiment", flush=True)
    die("inside")
    for i in range(args.steps):
        run.log(loss=1.0 / (i + 1))
    if args.fail:
        raise RuntimeError("failing on purpose")
die("finished")
"""

# kill point -> extra argv, and the status run.json must show afterwards (None: no run.json yet)
STAGES = {
    "claimed": ([], "absent"),
    "folder": ([], None),
    "params": ([], None),
    "recorded": ([], "running"),
    "parsed": ([], "running"),
    "inside": ([], "running"),
    "metrics": ([], "running"),
    "ending": ([], "running"),
    "failing": (["--fail", "true"], "failed"),
    "finished": ([], "completed"),  # killed after the block: nothing left to lose
}


def run_script(folder, *args, kill_at="", go=None, blob=0):
    env = {"KILL_AT": kill_at, "BLOB": blob}
    if go is not None:
        env["GO_FILE"] = go
    proc = python(
        [folder / "main.py", *args],
        env_extra=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=folder,
    )
    return proc


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One completed and one failed run: what a kill must leave alone. Copied for each test."""
    folder = tmp_path_factory.mktemp("template")
    (folder / "main.py").write_text(SCRIPT)
    for args in ([], ["--fail", "true"]):
        run_script(folder, *args).communicate(timeout=120)
    root = folder / "exman"
    assert len(list((root / "runs").iterdir())) == 1 and len(list((root / "fails").iterdir())) == 1
    return folder


def earlier_runs(template, folder):
    shutil.copytree(template, folder, symlinks=True, dirs_exist_ok=True)
    return folder / "exman"


def new_runs(root, before):
    return [
        p
        for place in ("runs", "fails", "tmp")
        for p in (root / place).iterdir()
        if os.path.join(place, p.name) not in before
    ]


@pytest.mark.parametrize("stage", list(STAGES))
def test_sigkill_at_each_stage_leaves_a_readable_root(tmp_path, template, stage):
    root = earlier_runs(template, tmp_path)
    before = snapshot(root)
    extra, status = STAGES[stage]
    proc = run_script(tmp_path, *extra, kill_at=stage)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err

    killed = new_runs(root, before)
    rep = check_root(root, allow_partial=killed)
    assert_untouched(before, root)
    if status == "absent":
        assert killed == []
    else:
        assert len(killed) == 1
        meta = rep.meta.get(killed[0])
        assert (meta or {}).get("status") == status, meta
        if meta and status == "running":
            assert meta["pid"] == proc.pid
    info = index_info(root)
    if info is not None:
        info = info.assign(folder=[r.name for r in info["root"]])
        names = set(info["folder"])
        assert {p.name for p in (root / "runs").iterdir()} - {k.name for k in killed} <= names
        # The Index lists runs through their index links; a run killed before its link is `exman doctor`'s.
        if status == "running" and (root / "index" / (killed[0].name + ".yaml")).is_symlink():
            assert info.set_index("folder").loc[killed[0].name, "status"] == "crashed"

    # `exman doctor --fix` records the dead run as crashed and removes what the kill left half-done.
    doctor(root, killed)

    # The next run gets a fresh id: a killed run's number is never handed out again.
    proc = run_script(tmp_path)
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    rep = check_root(root, allow_partial=killed)
    ids = rep.ids()
    assert len(ids) == len(set(ids)) == 3 + len(killed)


def doctor(root, killed):
    """After ``doctor --fix`` a second ``doctor`` finds nothing, and no run is left 'running'."""
    before = snapshot(root)
    fixed = _exman("--root", root, "doctor", "--fix")
    assert fixed.returncode == 0 and "Traceback" not in fixed.stderr, fixed.stdout + fixed.stderr
    again = _exman("--root", root, "doctor")
    assert again.returncode == 0, again.stdout + again.stderr
    rep = check_root(root, allow_partial=killed)
    assert all(m["status"] != "running" for m in rep.meta.values())
    # Left: only fresh temp files of runs killed before run.json, whose writer doctor cannot tell
    # dead from busy. A minute later they are debris too.
    assert all(not (t.parent / "run.json").exists() for t in rep.temp), rep.temp
    if rep.temp:
        for temp in rep.temp:
            old = temp.stat().st_mtime - 120
            os.utime(temp, (old, old))
        assert _exman("--root", root, "doctor", "--fix").returncode == 0
        rep = check_root(root, allow_partial=killed)
    assert not rep.temp, rep.temp
    # doctor only repairs: every earlier file is still there.
    assert_untouched(before, root, ignore=lambda rel: any(k.name in rel for k in killed) or rel.endswith(".tmp"))
    return rep


def _exman(*args):
    return subprocess.run(
        [sys.executable, "-m", "exman", *map(str, args)], env=tools_env(), capture_output=True, text=True
    )


def test_metrics_reader_skips_a_truncated_last_line(tmp_path, template):
    root = earlier_runs(template, tmp_path)
    run = next((root / "runs").iterdir())
    metrics = run / "metrics.jsonl"
    rows = metrics.read_text().splitlines()
    with open(metrics, "a") as fh:
        fh.write('{"step": 99, "time": 1.0, "loss": 0.')  # what a kill mid-append can leave
    check_root(root, allow_partial=[run])
    info = index_info(root)
    if info is not None:
        row = info.assign(folder=[r.name for r in info["root"]]).set_index("folder").loc[run.name]
        assert row["loss"] == json.loads(rows[-1])["loss"]


@pytest.mark.timeout(1800)
def test_sigkill_at_random_moments(tmp_path):
    """Kill a writer at a random moment, again and again; check the root every time.

    The script records a 1 MB parameter, so params.yaml and run.json take a
    while to write: a writer that wrote in place would be caught half-way.
    """
    iterations = 100 if SLOW else 15
    (tmp_path / "main.py").write_text(SCRIPT)
    root = tmp_path / "exman"
    rng = random.Random(int(os.environ.get("EXMAN_SEED", "6")))
    blob = 1_000_000

    # How long a whole run takes after its imports: the window to kill in.
    go = tmp_path / "go"
    proc = run_script(tmp_path, "--steps", 200, go=go, blob=blob)
    window = _time_after(go, proc)

    killed_runs, kills, loadable = [], 0, 0
    for _ in range(iterations):
        before = snapshot(root) if root.exists() else {}
        go.unlink(missing_ok=True)
        fail = rng.random() < 0.3
        proc = run_script(tmp_path, "--steps", 200, *(["--fail", "true"] if fail else []), go=go, blob=blob)
        _wait_for(go, proc)
        time.sleep(rng.uniform(0, window))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=120)
        kills += proc.returncode == -signal.SIGKILL
        new = new_runs(root, before)
        killed_runs += new
        check_root(root, allow_partial=killed_runs, only=new)
        assert_untouched(before, root)
        loadable += 1
    rep = check_root(root, allow_partial=killed_runs)
    assert len(set(rep.ids())) == len(rep.ids())
    info = index_info(root)
    if info is not None:
        # Indexed runs and set-aside failures, nothing lost; none of them still "running".
        assert len(info) == len(rep.links) + len(rep.runs["fails"])
        assert "running" not in set(info["status"])
    rep = doctor(root, killed_runs)
    statuses = sorted(m["status"] for m in rep.meta.values())
    report(
        f"random SIGKILL: {loadable}/{iterations} iterations left a readable root ({kills} killed mid-run, "
        f"window {window * 1000:.0f} ms); half-written files: 0; after doctor --fix: {len(rep.temp)} temp files, "
        f"run statuses {dict((s, statuses.count(s)) for s in set(statuses))}"
    )


def _wait_for(go, proc, timeout=120):
    start = time.monotonic()
    while not go.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() - start < timeout
        time.sleep(0.002)


def _time_after(go, proc) -> float:
    _wait_for(go, proc)
    start = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return time.monotonic() - start


@pytest.mark.parametrize("hint", ["-5", "abc", "", "99999999999999999999999", "dir"])
def test_damaged_claim_hint_never_gives_a_bad_id(tmp_path, template, hint):
    """``.exman/last_id`` is only a hint: garbage in it costs a scan, never a wrong or huge id."""
    root = earlier_runs(template, tmp_path)
    last = root / ".exman" / "last_id"
    last.unlink()
    if hint == "dir":
        last.mkdir()
    else:
        last.write_text(hint)
    proc = run_script(tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert sorted(check_root(root).ids()) == [1, 2, 3]
