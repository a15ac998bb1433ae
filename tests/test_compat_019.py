"""exman 0.1.9 scripts, notebooks and roots keep working: one test per incompatibility fixed.

Scripts run as real subprocesses; 0.1.9's files are written as 0.1.9 writes them
(see tests/test_index.py::make_0_1_9_root). The differential suite against the
real 0.1.9 lives in tests/compat/.
"""

from __future__ import annotations

import argparse
import fcntl
import getpass
import json
import os
import subprocess
import sys
import time
import warnings

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from conftest import Script, env_for_subprocess
from test_index import age, make_0_1_9_root

import exman
from exman.cli import make_cli
from exman.index import Index, meta_column
from exman.index.scan import RACY_SECONDS
from exman.plugins import get_plugin_manager

OPTIONS_SCRIPT = """
import json, os, sys
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=1)
args = parser.parse_args()
os.makedirs(os.path.join(args.root, "out"), exist_ok=args.tmp)
print("NS=" + json.dumps({"tmp": args.tmp, "name": args.name, "git_dirty": args.git_dirty,
                          "config_file": args.config_file, "has_root": "root" in args,
                          "lr": args.lr, "epochs": args.epochs}))
"""


def namespace_of(proc) -> dict:
    line = [x for x in proc.stdout.splitlines() if x.startswith("NS=")][-1]
    return json.loads(line[3:])


def params_of(folder) -> dict:
    return yaml.safe_load((folder / "params.yaml").read_text())


# 1 ---------------------------------------------------------------------------------------
def test_one_string_is_split_on_whitespace(tmp_path):
    p = exman.ExParser(root=tmp_path / "exman")
    p.add_argument("-v", type=int, default=0)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args("--lr 0.5  --epochs 3")
    assert (args.lr, args.epochs) == (0.5, 3)
    args = p.parse_args("-v 3 --epochs 2")
    assert (args.v, args.epochs) == (3, 2)
    assert params_of(args.root)["epochs"] == 2


# 2 ---------------------------------------------------------------------------------------
def test_own_options_are_in_the_namespace_and_recorded(tmp_path):
    script = Script(tmp_path, OPTIONS_SCRIPT)
    ns = namespace_of(script.run("--name", "base", "--lr", "0.5"))
    assert ns == {
        "tmp": False,
        "name": "base",
        "git_dirty": False,
        "config_file": None,
        "has_root": True,
        "lr": 0.5,
        "epochs": 1,
    }
    ns = namespace_of(script.run("--tmp", "--git-dirty"))
    assert ns["tmp"] is True and ns["git_dirty"] is True and ns["name"] is None
    (run,) = (script.root / "runs").iterdir()
    recorded = params_of(run)
    # 0.1.9 wrote its options into params.yaml too
    assert {k: recorded[k] for k in ("tmp", "git_dirty", "name", "config_file")} == {
        "tmp": False,
        "git_dirty": False,
        "name": "base",
        "config_file": None,
    }
    df = Index(script.root).info()
    assert df["name"].tolist() == ["base"] and df["tmp"].tolist() == [False]
    assert df.attrs["params"] == ["lr", "epochs"]  # options are columns, not params


def test_script_that_owns_an_option_name_keeps_it(tmp_path):
    p = exman.ExParser(root=tmp_path / "exman")
    p.add_argument("--name", default="resnet")
    args = p.parse_args([])
    assert args.name == "resnet" and args.tmp is False
    df = Index(tmp_path / "exman").info()
    assert df["name"].tolist() == ["resnet"] and "name" in df.attrs["params"]


def test_a_text_column_holding_an_unconverted_default_has_one_kind_of_value(tmp_path):
    # argparse leaves a default that is not text as it is; given values arrive as text.
    p = exman.ExParser(root=tmp_path / "exman")
    p.add_argument("-a", type=str, default=1)
    p.add_argument("--tag", default=0)
    for argv in ([], ["-a", "3", "--tag", "x"], ["-a", "3"]):
        p.parse_args(argv)
    df = Index(tmp_path / "exman").info()
    assert [type(v) for v in df["a"]] == [str] * 3 and df["a"].tolist() == ["1", "3", "3"]  # as declared
    assert [type(v) for v in df["tag"]] == [str] * 3 and df["tag"].tolist() == ["0", "x", "0"]


# 3 ---------------------------------------------------------------------------------------
TEAM = """
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__), automark=["user"], default_config_files=["local.cfg"])
parser.add_argument("--user", default="nobody")
parser.add_argument("--host", default="gpu1")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
with args.safe_experiment as run:
    run.log(acc=0.5 + args.seed)
"""


def test_team_recipe_user_from_local_cfg(tmp_path):
    """0.1.9's README: automark=["user"], --user in local.cfg, index.info("user/alice")."""
    script = Script(tmp_path, TEAM)
    (tmp_path / "local.cfg").write_text("user: alice\n")
    script.run("--seed", "1", "--name", "first")
    script.run("--seed", "2")
    script.run("--seed", "3", "--user", "bob")
    index = Index(script.root)
    mine = index.info("user/alice")
    assert mine["id"].tolist() == [1, 2]
    df = index.info()
    assert df[df.user == "alice"]["seed"].tolist() == [1, 2]
    assert df["host"].tolist() == ["gpu1"] * 3 and df["name"].tolist()[0] == "first"
    assert pd.isna(df["name"].tolist()[1])
    # the run metadata moved out of the way, and says where
    assert meta_column(df, "user") == "exman_user" and meta_column(df, "host") == "exman_host"
    assert set(df["exman_user"]) == {getpass.getuser()} and set(df["exman_host"]) == {os.uname().nodename}
    assert meta_column(df, "status") == "status" and df["status"].tolist() == ["completed"] * 3
    # readers find the metadata through attrs["meta"]
    summary = index.summary("acc", by="user", over="seed")
    assert summary["user"].tolist() == ["alice", "bob"] and summary["acc_count"].tolist() == [2, 1]
    ls = CliRunner().invoke(make_cli(), ["--root", str(script.root), "ls", "--format", "json"])
    assert ls.exit_code == 0, ls.output
    rows = json.loads(ls.output)
    assert [r["status"] for r in rows] == ["completed"] * 3 and rows[0]["name"] == "first"


# 4 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "answer, passes", [(True, True), (None, True), ("lr too big", False), (1, False), (False, False), (0, False)]
)
def test_validator_passes_only_on_true_or_none(tmp_path, answer, passes):
    p = exman.ExParser(root=tmp_path / "exman")
    p.add_argument("--lr", type=float, default=0.1)
    p.register_validator(lambda ns: answer, "refused: lr={lr}")
    if passes:
        assert p.parse_args([]).lr == 0.1
    else:
        with pytest.raises(argparse.ArgumentError, match="refused: lr=0.1"):
            p.parse_args([])
        assert not (tmp_path / "exman" / "runs").exists() or not list((tmp_path / "exman" / "runs").iterdir())


# 5 ---------------------------------------------------------------------------------------
def _make_019_run(root, number, folder="runs"):
    """What 0.1.9 does under its lock: max over runs/tmp/fails + 1, mkdir, params.yaml, index link."""
    name = f"{number:06d}-2019-03-01-12-00-00"
    run = root / folder / name
    run.mkdir()
    (run / "params.yaml").write_text(
        f"lr: 0.1\nname: null\ntmp: false\ngit_dirty: false\nroot: {folder}/{name}\n"
        f"time: '2019-03-01T12:00:00'\nid: {number}\n"
    )
    if folder == "runs":
        (root / "index" / f"{name}.yaml").symlink_to(f"../runs/{name}/params.yaml")


@pytest.mark.parametrize("folder", ["runs", "tmp", "fails"])
def test_ids_stay_unique_when_0_1_9_writes_to_the_same_root(tmp_path, folder):
    script = Script(tmp_path)
    script.run()
    _make_019_run(script.root, 2, folder)  # .exman/ids/ exists: the hint alone would say 2
    script.run()
    numbers = sorted(int(p.name[:6]) for f in ("runs", "tmp", "fails") for p in (script.root / f).iterdir())
    assert numbers == [1, 2, 3]


def test_a_run_waits_for_0_1_9s_lock(tmp_path):
    """0.1.9 holds root/lock (a flock) while it numbers and makes a folder: exman waits for it."""
    script = Script(tmp_path)
    script.run()
    fd = os.open(script.root / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        child = subprocess.Popen(
            [sys.executable, str(script.path)],
            cwd=tmp_path,
            env=env_for_subprocess(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        assert child.poll() is None and len(list((script.root / "runs").iterdir())) == 1
        _make_019_run(script.root, 2)
    finally:
        os.close(fd)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert sorted(p.name[:6] for p in (script.root / "runs").iterdir()) == ["000001", "000002", "000003"]


# 6 ---------------------------------------------------------------------------------------
def test_cached_info_on_a_0_1_9_root_types_as_uncached_after_cli_edits(tmp_path):
    root = make_0_1_9_root(
        tmp_path / "old",
        [
            {"lr": 0.1, "epochs": 2, "flag": True},
            {"lr": 0.2, "epochs": 3, "flag": False},
            {"lr": 0.3, "epochs": 4, "flag": True},
        ],
    )
    age(root)
    Index(root).info()
    cli = make_cli()

    def same(step):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cached, cold = Index(root).info(), Index(root, cache=False).info()
        pd.testing.assert_frame_equal(cached, cold, obj=step)
        assert cached["epochs"].dtype == "int64" and cached["flag"].dtype == bool, step

    for step in (["mark", "best", "2"], ["delete", "3"]):
        r = CliRunner().invoke(cli, ["--root", str(root), *step])
        assert r.exit_code == 0, r.output
        time.sleep(RACY_SECONDS + 0.1)  # past the racy window: the cache patches its last answer
        same(" ".join(step))


# 7 ---------------------------------------------------------------------------------------
def test_config_restores_name(tmp_path):
    script = Script(tmp_path)
    script.run("--name", "baseline", "--lr", "0.5", "--epochs", "3")
    (first,) = (script.root / "runs").iterdir()
    script.run("--config", first / "params.yaml", "--epochs", "4")
    second = sorted((script.root / "runs").iterdir())[-1]
    assert second.name.endswith("-baseline")
    assert (params_of(second)["lr"], params_of(second)["epochs"]) == (0.5, 4)
    df = Index(script.root).info()
    assert df["name"].tolist() == ["baseline", "baseline"]


def test_config_restores_tmp_and_fills_config_file(tmp_path):
    script = Script(tmp_path, OPTIONS_SCRIPT)
    script.run("--tmp", "--name", "dbg")
    (first,) = (script.root / "tmp").iterdir()
    ns = namespace_of(script.run("--config", first / "params.yaml"))
    assert ns["tmp"] is True and ns["name"] == "dbg" and ns["config_file"] == str(first / "params.yaml")
    assert len(list((script.root / "tmp").iterdir())) == 2 and not list((script.root / "runs").iterdir())


# load_params ----------------------------------------------------------------------------
def test_show_and_doctor_read_params_through_the_storage_plugin(tmp_path):
    from plugins import json_params

    p = exman.ExParser(root=tmp_path / "exman", plugins=[json_params])
    p.add_argument("--lr", type=float, default=0.1)
    args = p.parse_args(["--lr", "0.25"])
    assert (args.root / "params.json").is_file() and not (args.root / "params.yaml").exists()
    cli = make_cli(get_plugin_manager(cli=True, plugins=[json_params]))
    r = CliRunner().invoke(cli, ["--root", str(p.root), "show", "1", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["params"] == {"lr": 0.25}
    for link in (p.root / "index").iterdir():
        link.unlink()
    r = CliRunner().invoke(cli, ["--root", str(p.root), "doctor", "--fix", "--reindex"])
    assert [link.name for link in (p.root / "index").iterdir()] == [args.root.name + ".json"]


# essential plugins -----------------------------------------------------------------------
@pytest.mark.parametrize("plugin", ["ids", "naming", "tmp"])
def test_blocking_an_essential_default_plugin_is_refused_in_one_line(tmp_path, plugin):
    script = Script(tmp_path)
    proc = script.run(check=False, env={"EXMAN_DISABLE_PLUGINS": plugin})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and lines[-1].startswith("main.py: error: plugin ")
    assert repr(plugin) in lines[-1] and "blocked" in lines[-1]
    assert not (script.root / "runs").exists() or not list((script.root / "runs").iterdir())


@pytest.mark.parametrize(
    "plugin",
    ["params_yaml", "metadata", "index_links", "automark", "validators", "failures", "git", "logcapture", "metrics"],
)
def test_blocking_any_other_default_plugin_still_records_the_run(tmp_path, plugin):
    script = Script(tmp_path)
    proc = script.run(check=False, env={"EXMAN_DISABLE_PLUGINS": plugin})
    assert proc.returncode == 0, proc.stderr
    assert len(list((script.root / "runs").iterdir())) == 1


def test_config_restores_arguments_named_commit_and_dirty(tmp_path):
    """Without git=, commit and dirty are the script's own arguments: --config brings them back."""
    p = exman.ExParser(root=tmp_path / "exman")
    p.add_argument("--commit", default="abc123")
    p.add_argument("--dirty", type=bool, default=False)
    first = p.parse_args(["--commit", "def456", "--dirty", "true"])
    again = p.parse_args(["--config", str(first.root / "params.yaml")])
    assert (again.commit, again.dirty) == ("def456", True)
    assert params_of(again.root)["commit"] == "def456"
    df = Index(tmp_path / "exman").info()
    assert df["commit"].tolist() == ["def456", "def456"] and df["dirty"].tolist() == [True, True]


SETTER = """
import exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--width", type=int, default=2)
parser.register_setter(lambda ns: setattr(ns, "size", ns.width * 2))
args = parser.parse_args()
print("NS=" + str(args.size))
"""


def test_config_ignores_keys_the_script_does_not_define_with_a_warning(tmp_path):
    """A setter's value (size) is recorded; rerunning from that file works, as in 0.1.9."""
    script = Script(tmp_path, SETTER)
    script.run("--width", "3")
    (first,) = (script.root / "runs").iterdir()
    proc = script.run("--config", first / "params.yaml")
    assert proc.stdout.splitlines()[-1] == "NS=6"
    assert proc.stderr.strip().splitlines() == [
        f"main.py: warning: --config {first / 'params.yaml'}: ignoring keys this script does not define: size"
    ]
    assert len(list((script.root / "runs").iterdir())) == 2


def test_the_parser_keeps_0_1_9s_attributes(tmp_path):
    # 0.1.9 kept its keywords on the parser; scripts read them (parser.zfill to name files alike).
    parser = exman.ExParser(root=tmp_path / "exman", zfill=4, automark=["lr"], git_assert_clean=False)
    assert (parser.zfill, parser.automark, parser.git_assert_clean) == (4, ["lr"], False)
    assert parser.root == tmp_path / "exman"
    with pytest.raises(AttributeError):
        parser.zfill = 3  # settings are read-only: plugins read them, nobody rewrites them
