"""Bad input to a training script: each kind answered with one clear line, nothing lost.

Every case starts from a root that already holds a run, feeds the script one
kind of bad input, and checks: exit status 2, the last line of stderr is
``main.py: error: ...`` naming the problem, no traceback, no new run folder,
and the earlier run untouched. The command-line kinds (mark keys, ids,
planted links) are in ``test_bad_cli_input.py``.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exman import ExParser

from .tools import assert_untouched, env, report, snapshot

SCRIPT = """
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__), default_config_files=["local.cfg"], automark=["tag"])
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--tag", default="base")
parser.add_argument("--opt", choices=["sgd", "adam"], default="sgd")
parser.add_argument("--dims", type=int, nargs="+", default=[8])
args = parser.parse_args()
with args.safe_experiment as run:
    run.log(loss=args.lr)
"""


def _bomb() -> bytes:
    """Billion laughs: nine levels of nine aliases, 387 million values from 1 kB."""
    lines = ["dims: [&a0 [1,1,1,1,1,1,1,1,1],"]
    for i in range(1, 9):
        lines.append(f"  &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "],")
    lines.append("  *a8]")
    return "\n".join(lines).encode()


def config(content: bytes):
    def setup(d):
        (d / "bad.yaml").write_bytes(content)
        return ["--config", "bad.yaml"], {}

    return setup


def argv(*args):
    return lambda d: (list(args), {})


def local_config(content: bytes):
    def setup(d):
        (d / "local.cfg").write_bytes(content)
        return [], {}

    return setup


def _missing(d):
    return ["--config", "nope.yaml"], {}


def _directory(d):
    (d / "adir").mkdir()
    return ["--config", "adir"], {}


def _dangling(d):
    os.symlink("gone.yaml", d / "link.yaml")
    return ["--config", "link.yaml"], {}


def _fifo(d):
    os.mkfifo(d / "pipe.yaml")
    return ["--config", "pipe.yaml"], {}


def _huge_file(d):
    with open(d / "huge.yaml", "wb") as fh:
        fh.truncate((64 << 20) + 1)  # sparse: costs no disk
    return ["--config", "huge.yaml"], {}


def _root_is_file(d):
    (d / "afile").write_text("not a root")
    return [], {"EXMAN_RUN_ROOT": d / "afile"}


def _root_under_file(d):
    (d / "afile").write_text("not a root")
    return [], {"EXMAN_RUN_ROOT": d / "afile" / "exman"}


def _root_runs_is_file(d):
    (d / "other").mkdir()
    (d / "other" / "runs").write_text("not a folder")
    return [], {"EXMAN_RUN_ROOT": d / "other"}


def _root_parent_missing(d):
    return [], {"EXMAN_RUN_ROOT": d / "no" / "such" / "parent" / "exman"}


def test_root_parent_missing_is_created(tmp_path, template):
    """A root whose parent folders do not exist yet ($SCRATCH/project/exman) is made, as 0.1.9 did."""
    folder = tmp_path / "project"
    shutil.copytree(template, folder, symlinks=True)
    args, extra = _root_parent_missing(folder)
    proc = subprocess.run(
        [sys.executable, "main.py", *args], cwd=folder, env=env(**extra), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    root = Path(extra["EXMAN_RUN_ROOT"])
    assert [p.name[:6] for p in (root / "runs").iterdir()] == ["000001"]
    assert len(list((root / "index").iterdir())) == 1


def _mark_folder_leads_outside(d):
    """The automark folder marked/tag/ swapped for a link to a folder outside the root."""
    (d / "outside").mkdir()
    shutil.rmtree(d / "exman" / "marked" / "tag")
    os.symlink(d / "outside", d / "exman" / "marked" / "tag")
    return [], {}


def _ids_folder_leads_outside(d):
    """.exman/ids/, where every run claims its number, swapped for a link outside the root."""
    (d / "outside").mkdir()
    shutil.rmtree(d / "exman" / ".exman" / "ids")
    os.symlink(d / "outside", d / "exman" / ".exman" / "ids")
    return [], {}


def _root_read_only(d):
    root = d / "exman"
    for folder in [root, *[p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()]]:
        folder.chmod(0o555)
    return [], {}


NON_UTF8 = os.fsdecode(b"caf\xe9")

# name: (setup, words the one-line error must contain)
CASES = {
    "config-empty": (config(b""), "expected a mapping"),
    "config-comments-only": (config(b"# nothing here\n"), "expected a mapping"),
    "config-corrupt-yaml": (config(b"lr: [0.1,\nepochs: 3\n"), "not valid YAML"),
    "config-binary": (config(bytes(range(256)) * 8), "not UTF-8"),
    "config-latin-1": (config("lr: 0.1\ntag: café\n".encode("latin-1")), "not UTF-8"),
    "config-utf-16": (config("lr: 0.1\n".encode("utf-16")), "not UTF-8"),
    "config-python-apply-tag": (config(b"lr: !!python/object/apply:os.system ['touch PWNED']\n"), "not valid YAML"),
    "config-python-new-tag": (config(b"!!python/object/new:subprocess.Popen [['touch', 'PWNED']]\n"), "not valid YAML"),
    "config-python-name-tag": (config(b"lr: !!python/name:os.system\n"), "not valid YAML"),
    "config-missing": (_missing, "no such file"),
    "config-directory": (_directory, "is a directory"),
    "config-dangling-link": (_dangling, "no such file"),
    "config-fifo": (_fifo, "not a regular file"),
    "config-device": (argv("--config", "/dev/zero"), "not a regular file"),
    "config-huge-file": (_huge_file, "larger than 64 MB"),
    "config-list": (config(b"- 1\n- 2\n"), "expected a mapping"),
    "config-scalar": (config(b"just some text\n"), "expected a mapping"),
    "config-wrong-type": (config(b"epochs: many\n"), "bad value for 'epochs'"),
    "config-bad-choice": (config(b"opt: rmsprop\n"), "'rmsprop' is not one of the choices"),
    "config-list-for-a-number": (config(b"lr: [0.1, 0.2]\n"), "expected a single value"),
    "config-number-for-a-list": (config(b"dims: 8\n"), "expected a list"),
    "config-alias-bomb": (config(_bomb()), "more than 1,000,000 values"),
    # PyYAML keeps the last of two equal keys without a word: which lr did the run get?
    "config-duplicate-key": (config(b"lr: 0.1\nepochs: 3\nlr: 0.2\n"), "'lr' is given twice"),
    "config-name-a-number": (config(b"name: 5\n"), "must be text"),
    "config-name-a-list": (config(b"name: [a, b]\n"), "must be text"),
    "config-flag-not-a-bool": (config(b"tmp: maybe\n"), "expected true or false"),
    "config-deep-nesting": (config(b"dims: " + b"[" * 100 + b"]" * 100 + b"\n"), "nested deeper than 64"),
    # Past ~20,000 levels libyaml's C composer overflows the stack: a segfault, before the fix.
    # Which layer refuses it (exman's depth check or libyaml's own limit) and in whose words depends
    # on the libyaml version: what counts is one line naming the file, and no crash.
    "config-nesting-bomb": (config(b"dims: " + b"[" * 100_000 + b"]" * 100_000 + b"\n"), "--config bad.yaml: "),
    "local-config-corrupt": (local_config(b"lr: [0.1,\n"), "local.cfg: "),
    "local-config-python-tag": (local_config(b"lr: !!python/object/apply:os.system ['touch PWNED']\n"), "local.cfg: "),
    "local-config-alias-bomb": (local_config(_bomb()), "more than 1,000,000 values"),
    "local-config-duplicate-key": (local_config(b"lr: 0.1\nlr: 0.2\n"), "'lr' is given twice"),
    "name-dot-dot": (argv("--name", ".."), "must be a plain name"),
    "name-traversal": (argv("--name", "../../outside"), "must be a plain name"),
    "name-slash": (argv("--name", "a/b"), "must be a plain name"),
    "name-absolute": (argv("--name", "/tmp/x"), "must be a plain name"),
    "name-backslash": (argv("--name", "a\\b"), "must be a plain name"),
    # A run named with a newline or a tab could not be reached by any command (nor read in a listing).
    "name-newline": (argv("--name", "a\nb"), "control character"),
    "name-tab": (argv("--name", "a\tb"), "control character"),
    "name-line-separator": (argv("--name", "a\u2028b"), "control character"),
    "name-c1-next-line": (argv("--name", "a\x85b"), "control character"),
    "name-empty": (argv("--name", ""), "must be a plain name"),
    "name-too-long": (argv("--name", "n" * 300), "longer than 200 bytes"),
    "name-not-utf-8": (argv("--name", NON_UTF8), "not valid UTF-8"),
    "value-not-utf-8": (argv("--tag", NON_UTF8), "not valid UTF-8"),
    "value-huge-int": (argv("--epochs", "9" * 5000), "invalid int value"),
    "value-bad-choice": (argv("--opt", "rmsprop"), "invalid choice"),
    "root-is-a-file": (_root_is_file, "exists and is not a folder"),
    "root-under-a-file": (_root_under_file, "Not a directory"),
    "root-runs-is-a-file": (_root_runs_is_file, "runs exists and is not a folder"),
    "root-read-only": (_root_read_only, "Permission denied"),
    "root-mark-folder-leads-outside": (_mark_folder_leads_outside, "a symlink; exman writes only inside its root"),
    "root-ids-folder-leads-outside": (_ids_folder_leads_outside, "ids/ is a symlink"),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A script folder whose root holds one completed run; copied for each case."""
    folder = tmp_path_factory.mktemp("template")
    (folder / "main.py").write_text(SCRIPT)
    proc = subprocess.run([sys.executable, "main.py"], cwd=folder, env=env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return folder


def _drop_write_override():
    """For root: give up the capabilities that let it write anywhere, so file modes bind."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _can_drop_privileges() -> bool:
    if os.geteuid() != 0:
        return True
    try:
        proc = subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_drop_write_override)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_one_clear_line(tmp_path, template, case):
    setup, words = CASES[case]
    folder = tmp_path / "project"
    shutil.copytree(template, folder, symlinks=True)
    root = folder / "exman"
    args, extra = setup(folder)
    before = snapshot(root)
    kwargs = {}
    if case == "root-read-only" and os.geteuid() == 0:
        # chmod does not stop root; dropping CAP_DAC_OVERRIDE in the child makes it.
        if not _can_drop_privileges():
            pytest.skip("running as root without a way to drop CAP_DAC_OVERRIDE")
        kwargs["preexec_fn"] = _drop_write_override
    proc = subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=folder,
        env=env(**extra),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        **kwargs,
    )
    err = proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}:\n{err[-2000:]}"
    assert "Traceback" not in err, err[-2000:]
    lines = err.strip().splitlines()
    assert lines[-1].startswith("main.py: error: ") and words in lines[-1], lines[-1][:500]
    assert all(line.startswith(("usage:", " ")) for line in lines[:-1]), err[:2000]
    assert not (folder / "PWNED").exists(), "a YAML tag ran code"
    assert_untouched(before, root)
    for place in ("runs", "tmp", "fails"):
        assert len(list((root / place).iterdir())) == (1 if place == "runs" else 0)
    assert not (folder / "outside").exists() or not list((folder / "outside").iterdir()), "written outside the root"


def test_bad_input_kinds_are_many_enough():
    # The issue asks for at least 25 kinds; docs/reliability.md lists these.
    from .test_bad_cli_input import CASES as CLI_CASES

    script = len(CASES) + 2  # + NUL in --name and huge values, below
    cli = (
        len(CLI_CASES) + 5
    )  # + NUL in a mark key, links planted in a run and the index, damaged files, unreadable, outside
    assert script + cli >= 25
    report(
        f"bad input: {script + cli} kinds ({script} to a script, {cli} to the command line), "
        f"each answered with one line and nothing lost"
    )


def test_switch_from_a_params_file_reads_as_in_0_1_9(tmp_path, template):
    """A switch's text value in --config: true/false, yes/no, on/off, 1/0, as configargparse read it."""
    folder = tmp_path / "project"
    shutil.copytree(template, folder, symlinks=True)
    (folder / "on.yaml").write_text("tmp: 'on'\n")
    proc = subprocess.run(
        [sys.executable, "main.py", "--config", "on.yaml"], cwd=folder, env=env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((folder / "exman" / "tmp").iterdir())) == 1


def test_name_with_nul_is_refused(tmp_path, capsys):
    """argv cannot carry NUL, so this one is in-process."""
    parser = ExParser(root=tmp_path / "exman")
    parser.add_argument("--lr", type=float, default=0.1)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--name", "a\0b"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "must be a plain name" in err.strip().splitlines()[-1]
    assert not (tmp_path / "exman" / "runs").exists() or not list((tmp_path / "exman" / "runs").iterdir())


def test_huge_values_are_recorded_and_restored(tmp_path, template):
    """A huge but valid value is not an error: it is recorded whole and --config restores it."""
    folder = tmp_path / "project"
    shutil.copytree(template, folder, symlinks=True)
    big = "x" * 100_000  # a command line allows 128 kB per argument
    dims = [str(i) for i in range(5000)]
    proc = subprocess.run(
        [sys.executable, "main.py", "--tag", big, "--dims", *dims],
        cwd=folder,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = sorted((folder / "exman" / "runs").iterdir())
    params = runs[-1] / "params.yaml"
    proc = subprocess.run(
        [sys.executable, "main.py", "--config", params], cwd=folder, env=env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import yaml

    again = yaml.safe_load((sorted((folder / "exman" / "runs").iterdir())[-1] / "params.yaml").read_text())
    assert again["tag"] == big and again["dims"] == list(range(5000))
    # The automark for a 100 kB value is cut to a legal file name, not refused.
    marks = list((folder / "exman" / "marked" / "tag").iterdir())
    assert all(len(m.name.encode()) <= 200 for m in marks)


ROUND_TRIP = """
import pathlib
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--flag", type=bool, default=True)
parser.add_argument("--off", type=bool, default=False)
parser.add_argument("--n", type=int, default=3)
parser.add_argument("--x", type=float, default=2.0)
parser.add_argument("--word", default="null")
parser.add_argument("--yes", default="yes")
parser.add_argument("--sci", default="1e3")
parser.add_argument("--path", type=pathlib.Path, default=pathlib.Path("data/train"))
parser.add_argument("--maybe", type=exman.optional(int), default=None)
parser.add_argument("--opt", choices=["sgd", "adam"], default="adam")
parser.add_argument("--dims", type=int, nargs="+", default=[1, 2])
parser.add_argument("--pair", type=float, nargs=2, action="append", default=None)
parser.add_argument("--switch", action="store_true")
args = parser.parse_args()
assert isinstance(args.path, pathlib.Path)
"""


def test_config_round_trip_keeps_every_value(tmp_path):
    """Rerunning from a params file (the `exman rerun` path) restores each value with its type."""
    import yaml

    (tmp_path / "main.py").write_text(ROUND_TRIP)
    first = [
        "--off",
        "false",
        "--flag",
        "true",
        "--n",
        "-4",
        "--x",
        "1e-3",
        "--maybe",
        "none",
        "--pair",
        "1",
        "2",
        "--pair",
        "3",
        "4.5",
        "--switch",
    ]
    proc = subprocess.run([sys.executable, "main.py", *first], cwd=tmp_path, env=env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (run,) = (tmp_path / "exman" / "runs").iterdir()
    proc = subprocess.run(
        [sys.executable, "main.py", "--config", run / "params.yaml"],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    runs = sorted((tmp_path / "exman" / "runs").iterdir())
    a, b = (yaml.safe_load((r / "params.yaml").read_text()) for r in runs)
    for key in ("root", "time", "id", "config_file"):  # config_file: the file the second run came from
        a.pop(key), b.pop(key)
    assert a == b and a["off"] is False and a["flag"] is True and a["word"] == "null" and a["maybe"] is None
