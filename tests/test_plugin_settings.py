"""Plugin settings come from ExParser(...) keywords; plugin state stays in the plugin."""

from __future__ import annotations

import subprocess

import configargparse
import pytest
import yaml
from conftest import REPO, Script
from plugins import greeting

import exman
from exman.plugins import DEFAULT_PLUGINS, DEFAULT_SETTINGS, get_plugin_manager
from exman.run import Run

SCRIPT = """
import exman
from plugins import greeting

parser = exman.ExParser(root=exman.simpleroot(__file__), plugins=[greeting], description="d", {keywords})
parser.add_argument("--lr", type=float, default=0.1)
assert parser.description == "d"  # argparse's keywords still reach argparse
args = parser.parse_args()
"""


def _script(folder, keywords: str = "") -> Script:
    return Script(folder, SCRIPT.format(keywords=keywords))


def _only_run(root):
    (run,) = sorted((root / "runs").iterdir())
    return run


def test_a_plugin_takes_its_own_settings_in_a_real_run(tmp_path):
    env = {"PYTHONPATH": f"{REPO}:{REPO / 'tests'}"}
    for name, keywords, expected in (
        ("given", 'greeting="hi", greeting_count="3"', "hi hi hi"),
        ("defaults", "", "hello"),
    ):
        (tmp_path / name).mkdir()
        script = _script(tmp_path / name, keywords)
        proc = script.run(env=env)
        run = _only_run(script.root)
        assert (run / "greeting.txt").read_text() == expected
        assert set(yaml.safe_load((run / "params.yaml").read_text())) >= {"lr"}
        assert "greeting" not in (run / "params.yaml").read_text() and "warning" not in proc.stderr


def test_a_bad_setting_fails_when_the_parser_is_built(tmp_path):
    with pytest.raises(ValueError):
        exman.ExParser(root=tmp_path / "a", plugins=[greeting], greeting_count="many")
    with pytest.raises(ValueError):
        exman.ExParser(root=tmp_path / "b", zfill="wide")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_0_1_9_keywords_are_the_default_plugins_settings(tmp_path):
    p = exman.ExParser(root=tmp_path / "exman", zfill=3, automark=("k",))
    assert dict(p.settings) == {"zfill": 3, "automark": ["k"], "git": None, "git_assert_clean": False}
    with pytest.raises(TypeError):
        p.settings["zfill"] = 4  # read-only: a plugin keeps its state itself
    declared = {}
    pm = get_plugin_manager()
    for name in DEFAULT_PLUGINS:
        for impl in pm.hook.add_settings.get_hookimpls():
            if impl.plugin_name == name:
                impl.function(register=lambda key, *a, _name=name, **k: declared.setdefault(key, _name))
    assert declared == DEFAULT_SETTINGS


def test_git_true_with_git_blocked_says_so_in_one_line(tmp_path):
    script = Script(
        tmp_path,
        """
        import exman
        parser = exman.ExParser(root=exman.simpleroot(__file__), git=True)
        args = parser.parse_args()
    """,
    )
    proc = script.run(env={"EXMAN_DISABLE_PLUGINS": "git"})
    assert proc.stderr.count("\n") == 1 and "git=" in proc.stderr and "'git' is blocked" in proc.stderr
    assert "commit" not in yaml.safe_load((_only_run(script.root) / "params.yaml").read_text())


def test_a_blocked_plugins_keywords_are_ignored_in_one_line_each(tmp_path, capsys):
    p = exman.ExParser(root=tmp_path / "exman", git=str(tmp_path), git_assert_clean=False, disable_plugins=["git"])
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "git=" in err[0]  # git_assert_clean=False asked for nothing
    assert "git" not in p.settings
    exman.ExParser(root=tmp_path / "exman", hello_x=1, disable_plugins=["hello"])
    assert "hello_x=" in capsys.readouterr().err
    with pytest.raises(TypeError):
        exman.ExParser(root=tmp_path / "exman", hello_x=1)  # no plugin of that name: argparse refuses it


def test_runs_and_parsers_carry_no_plugin_state(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (
        ["init", "-q"],
        ["-c", "user.email=t@e", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x"],
    ):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    (repo / "untracked_but_dirty").write_text("x")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    p = exman.ExParser(root=tmp_path / "exman", git=str(repo), automark=["lr"], plugins=[greeting])
    p.add_argument("--lr", type=float, default=0.1)
    p.format_help()  # the plugins' options are added
    before = set(vars(p))
    args = p.parse_args([])
    with pytest.raises(RuntimeError):
        with args.safe_experiment as run:
            run.log(loss=1.0)
            print("captured")
            raise RuntimeError("on purpose")
    plain = configargparse.ArgumentParser()
    plain_before = set(vars(plain))
    plain.parse_args([])
    assert set(vars(p)) - before <= set(vars(plain)) - plain_before  # what configargparse itself notes
    assert not hasattr(run, "__dict__") and set(Run.__slots__) >= {"record", "params_file", "links"}
    with pytest.raises(AttributeError):
        run.meta = {}  # type: ignore[attr-defined]
    assert (run.path / "changes.diff").exists() and "captured" in (run.path / "log.txt").read_text()
    assert greeting.written[run].name == "greeting.txt" and (run.path / "greeting.txt").exists()
