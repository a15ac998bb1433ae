"""Bad input to the ``exman`` command line, and links planted to lead it outside the root.

Each error case checks: a non-zero exit, ``Error: ...`` naming the problem
as the last line of stderr, no traceback, and the root unchanged. The planted
links check that nothing outside the root is read through them or removed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import exman_command

from exman.cli import make_cli

from .tools import assert_untouched, env, index_info, snapshot

SCRIPT = """
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.1)
args = parser.parse_args()
with args.safe_experiment as run:
    run.log(loss=args.lr)
"""

NON_UTF8 = os.fsdecode(b"caf\xe9")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A root with three runs, run 1 marked ``best``."""
    folder = tmp_path_factory.mktemp("cli-template")
    (folder / "main.py").write_text(SCRIPT)
    for lr in ("0.1", "0.2", "0.3"):
        proc = subprocess.run([sys.executable, "main.py", "--lr", lr], cwd=folder, env=env(), capture_output=True)
        assert proc.returncode == 0, proc.stderr
    runner = CliRunner()
    assert runner.invoke(make_cli(), ["--root", str(folder / "exman"), "mark", "best", "1"]).exit_code == 0
    return folder


@pytest.fixture
def project(tmp_path, template):
    folder = tmp_path / "project"
    shutil.copytree(template, folder, symlinks=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("not exman's")
    return folder


def run_name(root, number):
    return next(p.name for p in (root / "runs").iterdir() if p.name.startswith(f"{number:06d}-"))


def _plant_mark_symlink(root, outside):
    os.symlink(outside, root / "marked" / "evil")
    return ["mark", "evil/x", "1"]


def _plant_run_symlink(root, outside):
    os.symlink(outside, root / "runs" / "000009-2019-01-01-00-00-00")
    return ["delete", "--all", "--yes", "9"]


def _plant_runs_folder_symlink(root, outside):
    # runs/ itself swapped for a link to somewhere else, with a run-shaped folder there
    victim = outside / "000001-2019-01-01-00-00-00"
    victim.mkdir()
    (victim / "params.yaml").write_text("lr: 1\n")
    shutil.rmtree(root / "runs")
    os.symlink(outside, root / "runs")
    return ["delete", "--all", "--yes", "1"]


def _damage_run_json(root, outside):
    (root / "runs" / run_name(root, 2) / "run.json").write_text('{"argv": ')
    return ["rerun", "2"]


# name: (argv after --root, or a function (root, outside) -> argv; words in the last stderr line)
CASES = {
    "mark-key-dot-dot": (["mark", "../escape", "1"], "must not contain '.' or '..'"),
    "mark-key-inner-dot-dot": (["mark", "a/../../escape", "1"], "must not contain '.' or '..'"),
    "mark-key-absolute": (["mark", "/tmp/escape", "1"], "must be a relative path"),
    "mark-key-too-long": (["mark", "k" * 300, "1"], "longer than 200 bytes"),
    "mark-key-not-utf-8": (["mark", NON_UTF8, "1"], "not valid UTF-8"),
    "mark-key-through-planted-symlink": (_plant_mark_symlink, "is a symlink"),
    "mark-unknown-id": (["mark", "k", "99"], "nothing to mark"),
    "unmark-unknown-key": (["unmark", "nokey", "1"], "no mark 'nokey'"),
    "show-unknown-id": (["show", "99"], "no run '99'"),
    "show-garbage-id": (["show", "1-"], "no run '1-'"),
    "diff-unknown-id": (["diff", "1", "99"], "no run '99'"),
    "rerun-unknown-id": (["rerun", "99"], "no run '99'"),
    "delete-unknown-id": (["delete", "99"], "nothing to delete"),
    "delete-backwards-range": (["delete", "3-1"], "3-1"),
    "delete-planted-run-symlink": (_plant_run_symlink, "nothing to delete"),
    "delete-through-planted-runs-folder": (_plant_runs_folder_symlink, "refusing"),
    "ls-where-runs-code": (["ls", "--where", "__import__('os').system('touch PWNED')"], "bad --where expression"),
    # pandas' query runs method calls: a filter must not write a file anywhere.
    "ls-where-writes-a-file": (
        lambda root, outside: ["ls", "--where", f"name.to_csv('{outside}/w.csv') == 1"],
        "a call is not allowed",
    ),
    "report-where-writes-a-file": (
        lambda root, outside: [
            "report",
            "--out",
            str(root.parent / "r.html"),
            "--where",
            f"status.to_csv('{outside}/w.csv') == 1",
        ],
        "a call is not allowed",
    ),
    "compare-where-writes-a-file": (
        lambda root, outside: ["compare", "loss", "-b", "lr", "--where", f"status.to_csv('{outside}/w.csv') == 1"],
        "a call is not allowed",
    ),
    "plan-where-writes-a-file": (
        lambda root, outside: ["plan", "loss", "--diff", "0.1", "--where", f"status.to_csv('{outside}/w.csv') == 1"],
        "a call is not allowed",
    ),
    "ls-where-not-utf-8": (["ls", "--where", os.fsdecode(b"loss > \xff")], "not valid UTF-8"),
    # pandas computes a power of constants in Python integers first: this one would never end.
    "ls-where-power-bomb": (["ls", "--where", "loss < 9**9**9**9"], "a power of numbers"),
    "report-out-over-a-run-file": (
        lambda root, outside: ["report", "--out", str(root / "runs" / run_name(root, 1) / "params.yaml")],
        "where the runs live",
    ),
    "show-negative-lines": (["show", "-n", "-5", "1"], "-5"),
    "plan-infinite-diff": (["plan", "loss", "--diff", "inf", "--std", "1"], "finite difference"),
    # statsmodels' failed solve printed its ConvergenceWarning (4 lines) above the error.
    "plan-effect-too-small": (["plan", "loss", "--diff", "1e-300", "--std", "1"], "cannot solve"),
    "sweep-file-binary": (lambda root, outside: ["sweep", "--file", sys.executable], "not UTF-8"),
    "sweep-file-device": (["sweep", "--file", "/dev/zero"], "not a regular file"),
    "rerun-damaged-run-json": (_damage_run_json, "its run.json is damaged"),
    "root-is-a-file": (None, "is not an exman root"),
    "root-missing": (None, "is not an exman root"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_cli_input_gets_one_clear_line(project, exman_cmd, case):
    spec, words = CASES[case]
    root = project / "exman"
    outside = project.parent / "outside"
    target = root
    if case == "root-is-a-file":
        target = project / "main.py"
        args = ["ls"]
    elif case == "root-missing":
        target = project / "nowhere"
        args = ["ls"]
    else:
        args = spec(root, outside) if callable(spec) else spec
    before, outside_before = snapshot(root), snapshot(outside)
    proc = exman_cmd("--root", target, *args, check=False, cwd=project)
    err = proc.stderr
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in err, err
    *before_last, last = err.strip().splitlines()
    assert last.startswith("Error: ") and words in last, last
    # Only warnings (or click's usage lines for a wrong option) above it: nothing from a library.
    assert all(not line or line.startswith(("exman: warning: ", "Usage: ", "Try ")) for line in before_last), err
    assert_untouched(before, root)
    assert snapshot(outside) == outside_before and (outside / "precious.txt").read_text() == "not exman's"
    assert not (project / "PWNED").exists()


def test_unreadable_run_and_unwritable_out_get_one_line(project, exman_cmd):
    """An OSError no command foresaw (a run folder chmod 000, a read-only --out folder) is one line."""
    from .test_bad_input import _can_drop_privileges, _drop_write_override

    if os.geteuid() == 0 and not _can_drop_privileges():
        pytest.skip("running as root without a way to drop CAP_DAC_OVERRIDE")
    root = project / "exman"
    locked, closed = root / "runs" / run_name(root, 1), project.parent / "closed"
    closed.mkdir()
    before = snapshot(root)
    locked.chmod(0o000)
    closed.chmod(0o555)
    try:
        for args in (["show", "1"], ["diff", "1", "2"], ["report", "--out", closed / "r.html"]):
            proc = subprocess.run(
                [*exman_command(), "--root", str(root), *map(str, args)],
                capture_output=True,
                text=True,
                env=env(),
                preexec_fn=_drop_write_override if os.geteuid() == 0 else None,
            )
            err = proc.stderr.strip()
            assert proc.returncode == 1 and "Traceback" not in err, (args, err[-2000:])
            assert err.splitlines()[-1].startswith("Error: ") and "ermission denied" in err, (args, err)
    finally:
        locked.chmod(0o755)
    assert_untouched(before, root)
    assert not list(closed.iterdir())


def test_mark_key_with_nul_is_refused(project):
    """argv cannot carry NUL; click's runner calls the same command in-process."""
    root = project / "exman"
    result = CliRunner().invoke(make_cli(), ["--root", str(root), "mark", "a\0b", "1"])
    assert result.exit_code == 1 and "without NUL" in result.stderr
    assert sorted(p.name for p in (root / "marked").iterdir()) == ["best"]


def test_delete_never_follows_links_planted_in_a_run_or_the_index(project, exman_cmd):
    root = project / "exman"
    outside = project.parent / "outside"
    first, second = run_name(root, 1), run_name(root, 2)
    os.symlink(outside, root / "runs" / first / "evil-dir")
    os.symlink(outside / "precious.txt", root / "runs" / first / "evil-file")
    # An index link swapped for one that points outside the root.
    os.unlink(root / "index" / f"{second}.yaml")
    os.symlink(outside / "precious.txt", root / "index" / f"{second}.yaml")

    exman_cmd("--root", root, "delete", "--all", "--yes", "1")
    exman_cmd("--root", root, "delete", "2")
    assert not (root / "runs" / first).exists() and not (root / "marked" / "best" / first).exists()
    assert not os.path.lexists(root / "index" / f"{second}.yaml")
    assert (outside / "precious.txt").read_text() == "not exman's"
    assert (root / "runs" / second / "params.yaml").is_file()


def test_links_leading_outside_the_root_bring_in_no_run(project, exman_cmd):
    """An index or mark link planted to name a run-shaped folder elsewhere: not listed as a run of this
    root, named by ls and doctor, unlinked by doctor --fix; the folder elsewhere is never touched."""
    root = project / "exman"
    outside = project.parent / "outside"
    stranger = outside / "000099-2019-01-01-00-00-00"
    shutil.copytree(root / "runs" / run_name(root, 3), stranger)
    os.symlink(stranger / "params.yaml", root / "index" / f"{stranger.name}.yaml")
    (root / "marked" / "k").mkdir()
    os.symlink(stranger, root / "marked" / "k" / stranger.name)
    # An absolute link of a root copied elsewhere since: the run of that name here is the one meant.
    second = run_name(root, 2)
    copy = outside / "old-root" / "runs" / second
    shutil.copytree(root / "runs" / second, copy)
    os.unlink(root / "index" / f"{second}.yaml")
    os.symlink(copy / "params.yaml", root / "index" / f"{second}.yaml")
    outside_before = snapshot(outside)

    with pytest.warns(UserWarning, match="points outside the root"):
        info = index_info(root)
    listed = dict(zip(info["id"], info["root"]))
    assert sorted(listed) == [1, 2, 3] and Path(listed[2]) == root / "runs" / second, listed
    assert "points outside the root" in exman_cmd("--root", root, "ls").stderr
    assert "no runs" in exman_cmd("--root", root, "ls", "--mark", "k").stderr
    proc = exman_cmd("--root", root, "doctor", check=False)
    assert proc.returncode == 1 and proc.stdout.count("link leading outside the root") == 3, proc.stdout
    exman_cmd("--root", root, "doctor", "--fix")
    assert not os.path.lexists(root / "index" / f"{stranger.name}.yaml")
    assert not os.path.lexists(root / "marked" / "k" / stranger.name)
    assert snapshot(outside) == outside_before


def test_damaged_run_files_are_shown_not_crashed_on(project, exman_cmd):
    root = project / "exman"
    one, two, three = (root / "runs" / run_name(root, i) for i in (1, 2, 3))
    (one / "run.json").write_text('{"status": "runn')
    (two / "metrics.jsonl").write_bytes(bytes(range(256)) * 4)
    (three / "params.yaml").write_bytes(b"\xff\xfe\x00")
    for args in (["show", "1"], ["show", "2"], ["show", "3"], ["diff", "1", "2"], ["ls"], ["doctor"]):
        proc = exman_cmd("--root", root, *args, check=False)
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
        assert proc.returncode in (0, 1), (args, proc.returncode)
    # The damaged files are left for the user to look at: nothing rewrote them.
    assert (two / "metrics.jsonl").read_bytes() == bytes(range(256)) * 4
    assert json.loads((root / "runs" / run_name(root, 2) / "run.json").read_text())["status"] == "completed"
