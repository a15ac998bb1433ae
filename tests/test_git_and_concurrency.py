"""git capture on real repositories, and many processes claiming ids on one root."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml
from conftest import env_for_subprocess

import exman


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    (repo / "train.py").write_text("print('v1')\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "one")
    return repo


def test_git_commit_and_dirty_recorded(repo, tmp_path):
    p = exman.ExParser(root=tmp_path / "exman", git=str(repo))
    clean = p.parse_args([])
    rec = yaml.safe_load((clean.root / "params.yaml").read_text())
    assert rec["commit"] == git(repo, "rev-parse", "HEAD").strip() and rec["dirty"] is False
    assert not (clean.root / "changes.diff").exists()
    (repo / "train.py").write_text("print('v2')\n")
    dirty = p.parse_args([])
    assert yaml.safe_load((dirty.root / "params.yaml").read_text())["dirty"] is True
    assert "+print('v2')" in (dirty.root / "changes.diff").read_text()
    # commit and dirty are exman's keys: --config ignores them
    again = p.parse_args(["--config", str(dirty.root / "params.yaml")])
    assert again.root.exists()


def test_git_assert_clean_refuses_dirty_tree(repo, tmp_path, capsys):
    (repo / "train.py").write_text("print('v3')\n")
    p = exman.ExParser(root=tmp_path / "exman", git=str(repo), git_assert_clean=True)
    with pytest.raises(SystemExit):
        p.parse_args([])
    assert "uncommitted changes" in capsys.readouterr().err
    assert not p.root.exists()
    forced = p.parse_args(["--git-dirty"])
    assert yaml.safe_load((forced.root / "params.yaml").read_text())["dirty"] is True


def test_git_outside_a_repository_is_a_clear_error(tmp_path, capsys):
    p = exman.ExParser(root=tmp_path / "exman", git=str(tmp_path))
    with pytest.raises(SystemExit):
        p.parse_args([])
    assert "not a usable git repository" in capsys.readouterr().err


def test_git_true_uses_the_working_directory(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(repo)
    p = exman.ExParser(root=tmp_path / "exman", git=True)
    assert "commit" in yaml.safe_load((p.parse_args([]).root / "params.yaml").read_text())


WRITER = """
import os, sys, time
import exman
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.001)
p = exman.ExParser(root=sys.argv[2])
p.add_argument("--k", type=int)
a = p.parse_args(sys.argv[3:])
with a.safe_experiment:
    pass
"""


def test_concurrent_starts_get_distinct_ids(tmp_path):
    n = 24
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    go = tmp_path / "go"
    root = tmp_path / "exman"
    procs = [
        subprocess.Popen(
            [sys.executable, str(writer), str(go), str(root), "--k", str(i)],
            env=env_for_subprocess(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(n)
    ]
    time.sleep(1.0)  # let every interpreter start and wait at the barrier
    go.touch()
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    runs = list((root / "runs").iterdir())
    ids = sorted(int(r.name.split("-")[0]) for r in runs)
    assert ids == list(range(1, n + 1))
    ks = sorted(yaml.safe_load((r / "params.yaml").read_text())["k"] for r in runs)
    assert ks == list(range(n))
    assert len(list((root / "index").iterdir())) == n
