"""The ``exman`` command line on real roots made by ExParser.

Each command runs at least once through the installed script in a
subprocess (``exman_cmd``); the many small cases use click's CliRunner on a
fresh ``make_cli()`` group to keep the suite fast. Roots come from one
template built per module and copied (links and all) into each test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Script, env_for_subprocess, on_terminal

from exman.cli import make_cli
from exman.cli import resolve_runs as resolve

# -- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """Runs 1-3 in runs/ (lr 0.1, 0.2, 0.3; run 3 has seed 1), 4 in fails/, 5 in tmp/."""
    s = Script(tmp_path_factory.mktemp("template"))
    s.run("--lr", "0.1")
    s.run("--lr", "0.2")
    s.run("--lr", "0.3", "--seed", "1", "--name", "third")
    s.run("--fail", "true", check=False)
    s.run("--tmp")
    return s.folder


@pytest.fixture
def proj(template, tmp_path) -> Script:
    dst = tmp_path / "proj"
    shutil.copytree(template, dst, symlinks=True)
    return Script(dst, source=(template / "main.py").read_text())


def name_of(root: Path, number: int) -> str:
    for folder in ("runs", "tmp", "fails"):
        for p in (root / folder).iterdir():
            if p.name.startswith(f"{number:06d}-"):
                return p.name
    raise KeyError(number)


def tree(path: Path) -> list[str]:
    """Every path under ``path`` (links not followed), to check that nothing changed."""
    out = []
    for folder, dirs, files in os.walk(path):
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(folder, n), path))
    return sorted(out)


class Result:
    def __init__(self, r):
        self.code = r.exit_code
        self.out = r.stdout
        self.err = r.stderr
        self.exception = r.exception


def cli(root, *args, input=None, env=None) -> Result:
    runner = CliRunner()
    result = runner.invoke(make_cli(), ["--root", str(root), *map(str, args)], input=input, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Result(result)


def assert_error(r: Result, *words):
    assert r.code != 0
    assert "Traceback" not in r.err
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error: "), r.err
    for word in words:
        assert word in lines[-1], (word, r.err)


# -- ids -------------------------------------------------------------------------


def test_ids_numbers_ranges_names_paths(proj):
    root = proj.root
    third = name_of(root, 3)
    runs, unknown = resolve(root, ["0001", "2-3", third, f"exman/runs/{third}/", f"index/{third}.yaml", "77", "x"])
    assert [r.id for r in runs] == [1, 2, 3]
    assert unknown == ["77", "x"]
    runs, unknown = resolve(root, ["1-100"], ("runs",))
    assert [r.id for r in runs] == [1, 2, 3] and not unknown
    runs, _ = resolve(root, ["4", "5"])
    assert [(r.id, r.folder) for r in runs] == [(4, "fails"), (5, "tmp")]


def test_backwards_range_is_an_error(proj):
    assert_error(cli(proj.root, "mark", "best", "3-1"), "3-1")


# -- mark / unmark -------------------------------------------------------------------


def test_mark_subprocess_makes_relative_links(proj, exman_cmd):
    p = exman_cmd("--root", proj.root, "mark", "paper/table1", "1", "3")
    assert "marked paper/table1" in p.stdout
    folder = proj.root / "marked" / "paper" / "table1"
    links = sorted(folder.iterdir())
    assert [link.name for link in links] == [name_of(proj.root, 1), name_of(proj.root, 3)]
    for link in links:
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))
        assert link.resolve() == (proj.root / "runs" / link.name).resolve()
    # The root still works after moving it: links are relative.
    moved = proj.folder.parent / "moved"
    proj.folder.rename(moved)
    assert (moved / "exman" / "marked" / "paper" / "table1" / links[0].name / "params.yaml").is_file()


def test_mark_unknown_ids_warn_and_known_are_marked(proj):
    r = cli(proj.root, "mark", "best", "2", "99", "nope")
    assert r.code == 0
    assert "99" in r.err and "nope" in r.err
    assert (proj.root / "marked" / "best" / name_of(proj.root, 2)).is_symlink()
    assert len(list((proj.root / "marked" / "best").iterdir())) == 1


def test_mark_only_unknown_ids_fails(proj):
    before = tree(proj.root)
    assert_error(cli(proj.root, "mark", "best", "99"), "nothing to mark")
    assert tree(proj.root) == before


def test_mark_twice_and_by_name(proj):
    third = name_of(proj.root, 3)
    assert cli(proj.root, "mark", "best", third).code == 0
    r = cli(proj.root, "mark", "best", "3")
    assert r.code == 0 and "already marked" in r.out


def test_mark_run_outside_runs_is_unknown(proj):
    r = cli(proj.root, "mark", "best", "4", "5", "1")
    assert r.code == 0 and "4, 5" in r.err
    assert [p.name for p in (proj.root / "marked" / "best").iterdir()] == [name_of(proj.root, 1)]


@pytest.mark.parametrize("key", ["/etc/evil", "../evil", "a/../../evil", "a/./b", "", "a/\0b"])
def test_mark_refuses_unsafe_keys(proj, key):
    before = tree(proj.folder)
    r = cli(proj.root, "mark", key, "1")
    assert_error(r, "mark key")
    assert tree(proj.folder) == before


def test_mark_refuses_key_through_planted_symlink(proj, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, proj.root / "marked" / "evil")
    assert_error(cli(proj.root, "mark", "evil/deeper", "1"), "symlink")
    assert_error(cli(proj.root, "mark", "evil", "1"), "symlink")
    assert list(outside.iterdir()) == []


def test_unmark_removes_links_and_empty_key_folders(proj, exman_cmd):
    assert cli(proj.root, "mark", "a/b", "1", "2").code == 0
    p = exman_cmd("--root", proj.root, "unmark", "a/b", "1")
    assert "unmarked a/b" in p.stdout
    assert [x.name for x in (proj.root / "marked" / "a" / "b").iterdir()] == [name_of(proj.root, 2)]
    assert cli(proj.root, "unmark", "a/b", "2").code == 0
    assert not (proj.root / "marked" / "a").exists()
    assert (proj.root / "runs" / name_of(proj.root, 2) / "params.yaml").is_file()


def test_unmark_errors(proj):
    assert_error(cli(proj.root, "unmark", "nosuch", "1"), "no mark 'nosuch'")
    assert cli(proj.root, "mark", "best", "1").code == 0
    r = cli(proj.root, "unmark", "best", "2")
    assert_error(r, "nothing unmarked")
    assert "not marked" in r.err
    assert_error(cli(proj.root, "unmark", "../x", "1"), "mark key")


# -- delete ------------------------------------------------------------------------


def test_delete_index_only_subprocess(proj, exman_cmd):
    first = name_of(proj.root, 1)
    cli(proj.root, "mark", "best", "1")
    p = exman_cmd("--root", proj.root, "delete", "1", "42")
    assert "42" in p.stderr
    assert not os.path.lexists(proj.root / "index" / f"{first}.yaml")
    assert (proj.root / "runs" / first / "params.yaml").is_file()
    assert (proj.root / "marked" / "best" / first).is_symlink()
    assert os.path.lexists(proj.root / "index" / f"{name_of(proj.root, 2)}.yaml")


def test_delete_all_subprocess_removes_folder_links_and_marks(proj, exman_cmd):
    first = name_of(proj.root, 1)
    cli(proj.root, "mark", "best", "1", "2")
    cli(proj.root, "mark", "x/y", "1")
    p = exman_cmd("--root", proj.root, "delete", "--all", "1", "4", input="")  # stdin not a terminal: no prompt
    assert f"deleted runs/{first}" in p.stdout and "deleted fails/" in p.stdout
    assert not (proj.root / "runs" / first).exists()
    assert not os.path.lexists(proj.root / "index" / f"{first}.yaml")
    assert not os.path.lexists(proj.root / "marked" / "best" / first)
    assert not os.path.lexists(proj.root / "marked" / "x" / "y" / first)
    assert (proj.root / "marked" / "best" / name_of(proj.root, 2)).is_symlink()
    assert list((proj.root / "fails").iterdir()) == []
    # The number stays taken.
    out = proj.run("--lr", "0.5").stdout
    assert "id: 6" in out


def test_delete_dry_run_changes_nothing(proj):
    before = tree(proj.folder)
    r = cli(proj.root, "delete", "--all", "--dry-run", "1-5")
    assert r.code == 0 and r.out.count("would remove") >= 5
    r = cli(proj.root, "delete", "-n", "2")
    assert "would remove index/" in r.out
    assert tree(proj.folder) == before


def test_delete_without_all_only_sees_runs(proj):
    before = tree(proj.folder)
    r = cli(proj.root, "delete", "5")
    assert_error(r, "nothing to delete")
    assert "5" in r.err
    assert tree(proj.folder) == before


def test_delete_never_leaves_the_root(proj, tmp_path):
    outside = tmp_path / "outside"
    (outside / "data").mkdir(parents=True)
    (outside / "data" / "precious.txt").write_text("keep")
    first = name_of(proj.root, 1)
    run1 = proj.root / "runs" / first
    # Planted inside a run: a link to a folder outside, and a mark folder that is a link outside.
    os.symlink(outside / "data", run1 / "data-link")
    os.symlink(outside, proj.root / "marked" / "evil")
    os.symlink(run1, outside / first)
    # A fake run folder that is itself a symlink to the outside.
    os.symlink(outside / "data", proj.root / "runs" / "000077-2026-01-01-00-00-00")
    r = cli(proj.root, "delete", "--all", "--yes", "1", "77")
    assert r.code == 0 and "77" in r.err
    assert not run1.exists()
    assert (outside / "data" / "precious.txt").read_text() == "keep"
    assert (outside / first).is_symlink()
    assert (proj.root / "runs" / "000077-2026-01-01-00-00-00").is_symlink()


def test_delete_refuses_runs_folder_that_leaves_the_root(proj, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(proj.root / "tmp"), elsewhere)
    os.symlink(elsewhere, proj.root / "tmp")
    r = cli(proj.root, "delete", "--all", "--yes", "5")
    assert_error(r, "outside")
    assert (elsewhere / name_of(proj.root, 5)).is_dir()


def _with_terminal(exman_args, answer: str):
    """Run exman with a pseudo-terminal on stdin and type ``answer``."""
    import pty

    master, slave = pty.openpty()
    try:
        os.write(master, answer.encode())
        cmd = Path(sys.executable).parent / "exman"
        command = [str(cmd)] if cmd.exists() else [sys.executable, "-m", "exman"]
        proc = subprocess.run(
            [*command, *map(str, exman_args)],
            stdin=slave,
            capture_output=True,
            text=True,
            env=env_for_subprocess(),
            timeout=60,
        )
    finally:
        os.close(master)
        os.close(slave)
    return proc


def test_delete_all_asks_on_a_terminal(proj):
    first = proj.root / "runs" / name_of(proj.root, 1)
    proc = _with_terminal(["--root", proj.root, "delete", "--all", "1"], "n\n")
    assert proc.returncode != 0 and "delete them?" in proc.stderr and "aborted" in proc.stderr
    assert first.is_dir()
    proc = _with_terminal(["--root", proj.root, "delete", "--all", "1"], "y\n")
    assert proc.returncode == 0, proc.stderr
    assert not first.exists()
    proc = _with_terminal(["--root", proj.root, "delete", "--all", "--yes", "2"], "")
    assert proc.returncode == 0 and "delete them?" not in proc.stderr


# -- show / diff -----------------------------------------------------------------------


def test_show_subprocess(proj, exman_cmd):
    p = exman_cmd("--root", proj.root, "show", "3")
    out = p.stdout
    assert name_of(proj.root, 3) in out
    assert "completed" in out and "lr" in out and "0.3" in out and "seed" in out
    assert "metrics" in out and "acc" in out and "(step 1)" in out
    assert "params.yaml" in out and "run.json" in out and "metrics.jsonl" in out


def test_show_counts_logged_rows_in_words(proj):
    proj.run("--epochs", "1")
    assert "metrics (last values, 2 rows logged)" in cli(proj.root, "show", "3").out
    assert "metrics (last values, 1 row logged)" in cli(proj.root, "show", "6").out


def test_runs_found_by_their_name(proj, exman_cmd):
    assert cli(proj.root, "show", "third").out.startswith(f"run 3  runs/{name_of(proj.root, 3)}")
    proj.run("--name", "third")
    assert_error(cli(proj.root, "show", "third"), "'third' names 2 runs (3, 6); give a single id")
    assert cli(proj.root, "mark", "named", "third").code == 0
    assert sorted(os.listdir(proj.root / "marked" / "named")) == [name_of(proj.root, 3), name_of(proj.root, 6)]


def test_params_printing_switch_and_unknown_disabled_plugin(proj, exman_cmd):
    assert "lr: 0.7" in proj.run("--lr", "0.7").stdout  # printed by default, as in exman 0.1.9
    quiet = proj.run("--lr", "0.8", env={"EXMAN_PRINT_PARAMS": "0"})
    assert (
        "lr:" not in quiet.stdout
        and "lr: 0.8" in (proj.root / "runs" / name_of(proj.root, 7) / "params.yaml").read_text()
    )
    p = exman_cmd("--root", proj.root, "ls", "--format", "json", env={"EXMAN_DISABLE_PLUGINS": "nonsense,git"})
    assert len(json.loads(p.stdout)) == 5
    assert p.stderr.startswith("exman: warning: EXMAN_DISABLE_PLUGINS names no plugin: nonsense (plugins: ")
    assert "git" in p.stderr.split("(plugins: ")[1] and p.stderr.count("\n") == 1


def test_show_failed_run_has_traceback_and_log(proj):
    r = cli(proj.root, "show", "4")
    assert r.code == 0
    assert "failed" in r.out and "traceback.txt" in r.out and "failing on purpose" in r.out


def test_show_log_tail(tmp_path):
    s = Script(
        tmp_path,
        source=textwrap.dedent("""
        import exman
        p = exman.ExParser(root=exman.simpleroot(__file__))
        args = p.parse_args()
        with args.safe_experiment:
            for i in range(50):
                print("line", i)
    """),
    )
    s.run()
    r = cli(s.root, "show", "1", "-n", "3")
    assert "line 49" in r.out and "line 47" in r.out and "line 46" not in r.out
    data = json.loads(cli(s.root, "show", "1", "--format", "json").out)
    assert data["id"] == 1 and data["status"] == "completed" and data["log_tail"][-1] == "line 49"


def test_show_unknown_id(proj):
    assert_error(cli(proj.root, "show", "42"), "no run '42'")


def test_diff_subprocess_shows_only_differences(proj, exman_cmd):
    p = exman_cmd("--root", proj.root, "diff", "1", "3")
    lines = p.stdout.splitlines()
    keys = [line.split()[1] for line in lines[1:]]
    assert set(keys) == {"lr", "seed", "loss", "acc"}
    assert "epochs" not in p.stdout and "optimizer" not in p.stdout
    data = json.loads(cli(proj.root, "diff", "1", "4", "--format", "json").out)
    by_key = {d["key"]: d for d in data}
    assert by_key["status"]["a"] == "completed" and by_key["status"]["b"] == "failed"
    assert by_key["fail"] == {"section": "params", "key": "fail", "a": False, "b": True}


def test_diff_identical_runs(proj):
    assert cli(proj.root, "mark", "x", "1").code == 0
    r = cli(proj.root, "diff", "1", "1")
    assert r.code == 0 and "do not differ" in r.out
    assert_error(cli(proj.root, "diff", "1", "99"), "99")


def test_diff_git_commit_and_dirty(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    s = Script(
        tmp_path,
        source=textwrap.dedent("""
        import exman
        p = exman.ExParser(root=exman.simpleroot(__file__), git=True)
        p.add_argument("--lr", type=float, default=0.1)
        args = p.parse_args()
        with args.safe_experiment:
            pass
    """),
    )
    git("init", "-q")
    (tmp_path / ".gitignore").write_text("exman/\n")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    s.run()
    (tmp_path / "main.py").write_text(s.path.read_text() + "\n# edited\n")
    s.run()
    rows = {line.split()[1]: line.split()[2:] for line in cli(s.root, "diff", "1", "2").out.splitlines()[1:]}
    assert rows["dirty"] == ["False", "True"]
    assert "commit" not in rows and "lr" not in rows


# -- rerun -----------------------------------------------------------------------------


def test_rerun_subprocess_with_overrides(proj, exman_cmd, tmp_path):
    proj.run("--epochs", "3", "--optimizer", "adam")  # run 6
    p = exman_cmd("--root", proj.root, "rerun", "6", "--", "--lr", "0.5", cwd=tmp_path)
    assert p.stdout.strip() == "7"
    assert "lr: 0.5" in p.stderr  # the script's output goes to stderr
    params = cli(proj.root, "show", "7", "--format", "json").out
    data = json.loads(params)
    assert data["params"]["lr"] == 0.5 and data["params"]["epochs"] == 3 and data["params"]["optimizer"] == "adam"
    assert data["meta"]["cwd"] == str(proj.folder)


def test_rerun_failed_run_returns_its_status(proj):
    r = cli(proj.root, "rerun", "4")
    assert r.code != 0
    assert r.out.strip() == "6"
    assert (proj.root / "fails" / name_of(proj.root, 6)).is_dir()
    ok = cli(proj.root, "rerun", "4", "--", "--fail", "false")
    assert ok.code == 0 and ok.out.strip() == "7"


def test_rerun_dry_run_and_bad_override(proj):
    r = cli(proj.root, "rerun", "2", "--dry-run", "--", "--lr", "1")
    assert r.code == 0 and "--config" in r.out and "params.yaml --lr 1" in r.out
    before = tree(proj.root / "runs")
    r = cli(proj.root, "rerun", "2", "--", "--no-such-option")
    assert_error(r, "recorded no new run")
    assert tree(proj.root / "runs") == before


def test_rerun_legacy_run_without_run_json(proj):
    os.unlink(proj.root / "runs" / name_of(proj.root, 2) / "run.json")
    assert_error(cli(proj.root, "rerun", "2"), "no recorded command line")


def test_rerun_moved_script_or_folder(proj, tmp_path):
    proj.run("--lr", "0.7")  # run 6, started in proj.folder
    (proj.folder / "main.py").rename(proj.folder / "renamed.py")
    assert_error(cli(proj.root, "rerun", "6"), "not a file")
    shutil.move(str(proj.folder), str(tmp_path / "elsewhere"))
    assert_error(cli(tmp_path / "elsewhere" / "exman", "rerun", "6"), "no longer exists")


# -- doctor --------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _set_running(run: Path, pid: int) -> None:
    meta = json.loads((run / "run.json").read_text())
    meta.update(status="running", pid=pid, end=None, duration=None)
    (run / "run.json").write_text(json.dumps(meta))


def test_doctor_clean_root(proj, exman_cmd):
    p = exman_cmd("--root", proj.root, "doctor")
    assert p.stdout.strip().endswith("ok")


def test_doctor_finds_and_fixes(proj, exman_cmd):
    root = proj.root
    cli(root, "mark", "best", "1", "2")
    shutil.rmtree(root / "runs" / name_of(root, 1))  # by hand: leaves dangling index and mark links
    cli(root, "delete", "3")  # deliberately unindexed
    run2 = root / "runs" / name_of(root, 2)
    _set_running(run2, _dead_pid())
    params_before = (run2 / "params.yaml").read_bytes()

    p = exman_cmd("--root", root, "doctor", check=False)
    assert p.returncode == 1
    assert "dangling link: index/" in p.stdout and "dangling link: marked/best/" in p.stdout
    assert "dead run: 2" in p.stdout and "run 3" in p.stdout and "not in index" in p.stdout
    assert "Traceback" not in p.stderr

    p = exman_cmd("--root", root, "doctor", "--fix")
    assert "removed dangling link index/" in p.stdout and "recorded run 2 as crashed" in p.stdout
    meta = json.loads((run2 / "run.json").read_text())
    assert meta["status"] == "crashed" and meta["end"] and meta["duration"] >= 0
    assert (run2 / "params.yaml").read_bytes() == params_before
    assert [x.name for x in (root / "marked" / "best").iterdir()] == [name_of(root, 2)]
    # Unindexed runs come back only on request.
    assert not os.path.lexists(root / "index" / f"{name_of(root, 3)}.yaml")
    cli(root, "doctor", "--fix", "--reindex")
    assert (root / "index" / f"{name_of(root, 3)}.yaml").resolve() == (
        root / "runs" / name_of(root, 3) / "params.yaml"
    ).resolve()
    r = cli(root, "doctor")
    assert r.code == 0 and "dead run" not in r.out and "not in index" not in r.out


def test_doctor_leaves_live_runs_alone(proj):
    run2 = proj.root / "runs" / name_of(proj.root, 2)
    _set_running(run2, os.getpid())
    r = cli(proj.root, "doctor", "--fix")
    assert r.code == 0 and "crashed" not in r.out
    assert json.loads((run2 / "run.json").read_text())["status"] == "running"


# -- plugins and third-party commands ------------------------------------------------------


def test_plugins_lists_defaults_subprocess(proj, exman_cmd):
    p = exman_cmd("plugins", "--format", "json")
    rows = {r["name"]: r for r in json.loads(p.stdout)}
    assert rows["mark-command"]["origin"] == "default" and rows["mark-command"]["hooks"] == ["register_commands"]
    assert rows["tmp"]["hooks"] == sorted(set(rows["tmp"]["hooks"]))
    assert "metadata" in exman_cmd("plugins").stdout


def test_third_party_command_and_plugins_listing(tmp_path, exman_cmd):
    site = tmp_path / "site"
    (site / "exman_hello-1.2.3.dist-info").mkdir(parents=True)
    (site / "exman_hello-1.2.3.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: exman-hello\nVersion: 1.2.3\n"
    )
    (site / "exman_hello-1.2.3.dist-info" / "entry_points.txt").write_text("[exman]\nhello = exman_hello\n")
    (site / "exman_hello.py").write_text(
        textwrap.dedent('''
        import click
        from exman import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command("hello")
            def hello():
                """Say hello. Example: exman hello"""
                click.echo("hello from a plugin")
    ''')
    )
    env = {
        "PYTHONPATH": os.pathsep.join([env_for_subprocess()["PYTHONPATH"], str(site)]),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    assert exman_cmd("hello", env=env).stdout.strip() == "hello from a plugin"
    rows = {r["name"]: r for r in json.loads(exman_cmd("plugins", "--format", "json", env=env).stdout)}
    assert rows["hello"]["origin"] == "exman-hello 1.2.3"
    assert rows["hello"]["distribution"] == "exman-hello" and rows["hello"]["version"] == "1.2.3"
    assert "exman-hello 1.2.3" in exman_cmd("plugins", env=env).stdout
    # Blocked by name, the command is gone.
    p = exman_cmd("hello", env={**env, "EXMAN_DISABLE_PLUGINS": "hello"}, check=False)
    assert p.returncode != 0 and "No such command" in p.stderr


# -- root finding and errors -------------------------------------------------------------


def test_no_root_is_one_clean_line(tmp_path, exman_cmd):
    env = {"EXMAN_ROOT": ""}
    p = exman_cmd("ls", check=False, cwd=tmp_path, env=env)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and "no exman root" in p.stderr
    p = exman_cmd("--root", tmp_path, "mark", "a", "1", check=False)
    assert p.returncode != 0 and "is not an exman root" in p.stderr and "Traceback" not in p.stderr


def test_root_from_env_cwd_and_dot_exman(proj, exman_cmd):
    assert "ok" in exman_cmd("doctor", env={"EXMAN_ROOT": str(proj.root)}, cwd=proj.folder.parent).stdout
    assert "ok" in exman_cmd("doctor", cwd=proj.root, env={"EXMAN_ROOT": ""}).stdout
    assert "ok" in exman_cmd("doctor", cwd=proj.folder, env={"EXMAN_ROOT": ""}).stdout


@pytest.mark.parametrize("command", ["mark", "unmark", "delete", "ls", "show", "diff", "rerun", "doctor", "plugins"])
def test_every_command_has_help_with_an_example(command):
    r = CliRunner().invoke(make_cli(), [command, "--help"])
    assert r.exit_code == 0 and "Example:" in r.output and "exman " in r.output.split("Example:")[1]


# -- terminal output -----------------------------------------------------------------------


def test_tables_on_a_terminal_with_and_without_rich(proj, tmp_path):
    drawn = on_terminal(["--root", proj.root, "diff", "1", "3"])
    assert "run 1" in drawn and "0.3" in drawn and "seed" in drawn
    assert "\x1b[1m" in drawn  # rich draws the header in bold
    # Without rich installed (an import that fails), the same table in plain text.
    fake = tmp_path / "norich"
    (fake / "rich").mkdir(parents=True)
    (fake / "rich" / "__init__.py").write_text("raise ImportError('rich is not installed')\n")
    pythonpath = os.pathsep.join([str(fake), env_for_subprocess()["PYTHONPATH"]])
    plain = on_terminal(["--root", proj.root, "diff", "1", "3"], env={"PYTHONPATH": pythonpath})
    lines = [line.rstrip() for line in plain.replace("\r", "").splitlines() if line.strip()]
    assert lines[0].split() == ["run", "1", "run", "3"]
    assert lines[1].split()[:2] == ["params", "lr"]
    assert "\x1b[" not in plain


# -- ls (through exman.Index) --------------------------------------------------------------


def test_ls_subprocess_table_shows_varying_params_and_metrics(proj, exman_cmd):
    p = exman_cmd("--root", proj.root, "ls")
    lines = p.stdout.splitlines()
    header = lines[0].split()
    assert header[:5] == ["id", "name", "status", "start", "duration"]
    assert "lr" in header and "seed" in header and "loss" in header and "acc" in header
    assert "epochs" not in header and "optimizer" not in header  # the same in every run
    assert [line.split()[0] for line in lines[1:]] == ["1", "2", "3"]
    assert lines[3].split()[:3] == ["3", "third", "completed"]  # the run's --name
    # Nobody named a run: no name column.
    assert exman_cmd("--root", proj.root, "ls", "--where", "id < 3").stdout.split()[:3] == ["id", "status", "start"]


WIDE_SCRIPT = """
import exman
p = exman.ExParser(root=exman.simpleroot(__file__))
for name, default in [("lr", 0.1), ("weight_decay", 0.0), ("dropout", 0.1), ("momentum", 0.9)]:
    p.add_argument("--" + name, type=float, default=default)
p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
p.add_argument("--activation", default="relu")
p.add_argument("--dataset", default="a-dataset-with-a-rather-long-name")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
with args.safe_experiment as run:
    run.log(train_loss=args.lr / 2, val_accuracy=0.9, test_accuracy=0.88)
"""


def test_ls_fits_the_width_it_is_given(tmp_path, exman_cmd):
    s = Script(tmp_path, source=WIDE_SCRIPT)
    s.run("--lr", "0.01", "--name", "baseline")
    s.run("--lr", "0.02", "--dropout", "0.3", "--hidden", "32", "32", "--activation", "gelu", "--dataset", "mnist")
    s.run("--seed", "1", "--weight_decay", "1e-4", "--momentum", "0.8")
    for columns in (80, 160):
        p = exman_cmd("--root", s.root, "ls", env={"COLUMNS": str(columns)})
        lines = p.stdout.splitlines()
        assert len(lines) == 4 and max(map(len, lines)) <= columns, p.stdout
        header = lines[0].split()
        assert header[:3] == ["id", "name", "status"] and header[-1] == "test_accuracy"
        assert lines[1].split()[:3] == ["1", "baseline", "completed"]
        left_out = [c for c in ("start", "duration", "dataset", "seed", "hidden") if c not in header]
        assert left_out and p.stderr.startswith(f"exman: left out to fit {columns} columns: ")
        assert all(c in p.stderr for c in left_out)
    # 160 columns: every param, a long text value shortened rather than a column lost.
    assert (
        "dataset" in header and "a-dataset-with-a-rather-long-name" not in p.stdout and "a-dataset-with-…" in p.stdout
    )
    wide = exman_cmd("--root", s.root, "ls", "--wide", env={"COLUMNS": "80"})
    assert wide.stderr == "" and "a-dataset-with-a-rather-long-name" in wide.stdout and "[32, 32]" in wide.stdout
    # Piped without $COLUMNS: no width to fit, nothing left out (awk/cut read it).
    env = env_for_subprocess()
    env.pop("COLUMNS", None)
    command = [str(Path(sys.executable).parent / "exman")]
    piped = subprocess.run([*command, "--root", str(s.root), "ls"], capture_output=True, text=True, env=env)
    assert piped.stdout == wide.stdout and piped.stderr == ""
    # The rich table on a real 80-column terminal: no line wider than the terminal.
    drawn = on_terminal(["--root", s.root, "ls"], columns=80)
    assert "\x1b[1m" in drawn
    assert _widest(drawn) <= 80 and "test_accuracy" in drawn and "baseline" in drawn


def _widest(drawn: str) -> int:
    import re
    import unicodedata

    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn).replace("\r", "")
    return max(
        sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)
        for line in text.splitlines()
        if not line.startswith("exman: ")
    )


def test_ls_shows_the_same_params_whatever_the_filter(proj):
    keys = lambda r: list(json.loads(r.out)[0])  # noqa: E731
    everything = keys(cli(proj.root, "ls", "--format", "json"))
    assert everything == ["id", "name", "status", "start", "duration", "lr", "seed", "loss", "acc"]
    cli(proj.root, "mark", "best", "1", "2")
    # Runs 1 and 2 differ only in lr, yet seed stays: the rule looks at every run of runs/.
    assert keys(cli(proj.root, "ls", "--mark", "best", "--format", "json")) == everything
    assert keys(cli(proj.root, "ls", "--where", "lr == 0.2", "--format", "json")) == everything
    assert keys(cli(proj.root, "ls", "-n", "1", "--format", "json")) == everything
    table = cli(proj.root, "ls", "--mark", "best", env={"COLUMNS": "200"}).out.splitlines()[0].split()
    assert "lr" in table and "seed" in table
    # A filter on a param that never varies shows it: what was filtered on is on screen.
    assert "epochs" in keys(cli(proj.root, "ls", "--where", "epochs == 2", "--format", "json"))
    assert "epochs" in cli(proj.root, "ls", "--sort", "epochs").out.splitlines()[0].split()
    # The failed run differs from runs/ in --fail: the value that caused the failure is shown.
    fails = json.loads(cli(proj.root, "ls", "--fails", "--format", "json").out)
    assert fails[0]["fail"] is True and fails[0]["id"] == 4
    assert "fail" in cli(proj.root, "ls", "--fails").out.splitlines()[0].split()


@pytest.mark.parametrize(
    "where, hint",
    [
        ('optimizer = "sgd"', "'=' assigns; compare with '==', e.g. 'optimizer == \"sgd\"'"),
        ("optimizer == sgd", "no column 'sgd'; quote text values: optimizer == 'sgd'"),
        ("LR > 0.1", "no column 'LR'; did you mean 'lr'?"),
        ("nosuch > 1", "no column 'nosuch'; columns: id, "),
        ("lr >> 0.1", "unsupported operator; use ==, !=,"),
        ("lr >>> 1", "not a valid expression"),
    ],
)
def test_ls_where_mistakes_get_a_hint(proj, where, hint):
    r = cli(proj.root, "ls", "--where", where)
    assert_error(r, f"bad --where expression {where!r}: ", hint)
    assert "Pandas" not in r.err and "visit_" not in r.err and "target object" not in r.err


def test_root_option_after_the_command_and_found_from_below(proj, exman_cmd):
    ids = lambda p: [row["id"] for row in json.loads(p.stdout)]  # noqa: E731
    assert ids(exman_cmd("ls", "--root", proj.root, "--format", "json", env={"EXMAN_ROOT": ""})) == [1, 2, 3]
    # After the command, --root wins over the one before it and over $EXMAN_ROOT.
    assert ids(exman_cmd("--root", proj.folder.parent, "ls", "--format", "json", "--root", proj.root)) == [1, 2, 3]
    # The project folder means its exman/; a folder inside the root means the root.
    assert ids(exman_cmd("--root", proj.folder, "ls", "--format", "json")) == [1, 2, 3]
    below = proj.root / "runs" / name_of(proj.root, 2)
    assert ids(exman_cmd("ls", "--format", "json", cwd=below, env={"EXMAN_ROOT": ""})) == [1, 2, 3]
    p = exman_cmd("--root", proj.folder.parent, "ls", check=False)
    assert p.returncode == 1 and "is not an exman root" in p.stderr and "exman/" in p.stderr
    # A sweep's script keeps a --root after its command for itself.
    p = exman_cmd("sweep", "--root", proj.root, "--dry-run", "-p", "lr=1,2", "--", "python", "main.py", "--root", "x")
    assert p.stdout.count("--root x") == 2


def test_ls_json_has_real_types(proj):
    rows = json.loads(cli(proj.root, "ls", "--format", "json").out)
    assert [r["id"] for r in rows] == [1, 2, 3]
    first = rows[0]
    assert first["lr"] == 0.1 and isinstance(first["seed"], int) and first["status"] == "completed"
    assert isinstance(first["duration"], float) and isinstance(first["start"], str) and first["start"][:4].isdigit()
    assert isinstance(first["acc"], float)
    everything = json.loads(cli(proj.root, "ls", "--format", "json", "--columns", "id,epochs,optimizer,fail").out)
    assert everything[0] == {"id": 1, "epochs": 2, "optimizer": "sgd", "fail": False}


def test_ls_csv(proj):
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(cli(proj.root, "ls", "--format", "csv", "--columns", "id,lr").out)))
    assert rows == [{"id": "1", "lr": "0.1"}, {"id": "2", "lr": "0.2"}, {"id": "3", "lr": "0.3"}]


def test_ls_where_sort_last_columns(proj):
    ids = lambda r: [row["id"] for row in json.loads(r.out)]  # noqa: E731
    assert ids(cli(proj.root, "ls", "--format", "json", "--where", "lr > 0.15 and status == 'completed'")) == [2, 3]
    assert ids(cli(proj.root, "ls", "--format", "json", "--sort", "acc", "-r")) == [3, 2, 1]
    assert ids(cli(proj.root, "ls", "--format", "json", "--sort", "lr", "--reverse", "--last", "2")) == [3, 2]
    assert ids(cli(proj.root, "ls", "--format", "json", "--last", "1")) == [3]
    r = cli(proj.root, "ls", "--columns", "id,lr")
    assert r.out.splitlines()[0].split() == ["id", "lr"]


def test_ls_errors_are_one_line(proj):
    assert_error(cli(proj.root, "ls", "--where", "lr >>> 1"), "bad --where")
    assert_error(cli(proj.root, "ls", "--where", "nosuchcolumn > 1"), "bad --where")
    assert_error(cli(proj.root, "ls", "--sort", "nope"), "no column 'nope'")
    assert_error(cli(proj.root, "ls", "--columns", "id,nope"), "nope")
    assert_error(cli(proj.root, "ls", "--mark", "nosuch"), "no mark 'nosuch'")
    assert_error(cli(proj.root, "ls", "--mark", "../up"), "mark key")


def test_ls_mark_tmp_fails(proj):
    cli(proj.root, "mark", "best", "1", "3")
    assert [r["id"] for r in json.loads(cli(proj.root, "ls", "--mark", "best", "--format", "json").out)] == [1, 3]
    assert [r["id"] for r in json.loads(cli(proj.root, "ls", "--tmp", "--format", "json").out)] == [5]
    fails = json.loads(cli(proj.root, "ls", "--fails", "--format", "json").out)
    assert [r["id"] for r in fails] == [4] and fails[0]["status"] == "failed"


def test_ls_after_delete_and_empty(proj):
    cli(proj.root, "delete", "2")
    assert [r["id"] for r in json.loads(cli(proj.root, "ls", "--format", "json").out)] == [1, 3]
    r = cli(proj.root, "ls", "--where", "lr > 5")
    assert r.code == 0 and r.out == "" and "no run matches --where 'lr > 5' (2 runs in runs/)" in r.err


def test_quick_commands_do_not_import_pandas(proj):
    code = textwrap.dedent(f"""
        import sys
        from exman.cli import make_cli
        for args in (["show", "1"], ["mark", "m", "1"], ["diff", "1", "2"], ["doctor"], ["delete", "2"]):
            make_cli().main(["--root", {str(proj.root)!r}, *args], standalone_mode=False)
        print("heavy:", sorted(m for m in ("pandas", "rich", "numpy") if m in sys.modules))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env_for_subprocess(), check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "heavy: []"


def test_delete_all_refuses_a_live_run_without_force(proj):
    run2 = proj.root / "runs" / name_of(proj.root, 2)
    _set_running(run2, os.getpid())
    assert_error(cli(proj.root, "delete", "--all", "--yes", "2"), "still running")
    assert run2.is_dir()
    assert cli(proj.root, "delete", "--all", "--yes", "--force", "2").code == 0
    assert not run2.exists()


@pytest.fixture
def legacy(tmp_path) -> Path:
    """An exman 0.1.9 root: params.yaml only (sorted keys, tmp, git_dirty), no run.json."""
    root = tmp_path / "exman"
    for folder in ("runs", "index", "marked", "tmp", "fails"):
        (root / folder).mkdir(parents=True)
    for number, lr in ((1, 0.1), (2, 0.5)):
        name = f"{number:06d}-2019-05-01-10-00-0{number}"
        (root / "runs" / name).mkdir()
        (root / "runs" / name / "params.yaml").write_text(
            f"git_dirty: false\nid: {number}\nlr: {lr}\nroot: {root / 'runs' / name}\n"
            f"time: '2019-05-01T10:00:0{number}'\ntmp: false\n"
        )
        os.symlink(f"../runs/{name}/params.yaml", root / "index" / f"{name}.yaml")
    return root


def test_legacy_root_show_mark_diff_delete(legacy, exman_cmd):
    r = cli(legacy, "show", "1")
    assert r.code == 0 and "0.1" in r.out and "no run.json" in r.out
    assert cli(legacy, "mark", "old", "1-2").code == 0
    rows = {line.split()[1]: line.split()[2:] for line in cli(legacy, "diff", "1", "2").out.splitlines()[1:]}
    assert rows == {"lr": ["0.1", "0.5"]}
    assert_error(cli(legacy, "rerun", "1"), "no recorded command line")
    assert "ok" in cli(legacy, "doctor").out
    assert cli(legacy, "delete", "--all", "2").code == 0
    assert not (legacy / "runs").joinpath("000002-2019-05-01-10-00-02").exists()
    p = exman_cmd("--root", legacy, "ls", "--format", "json")
    assert [(r["id"], r["lr"]) for r in json.loads(p.stdout)] == [(1, 0.1)]


def test_index_include_tmp(proj):
    import exman

    index = exman.Index(proj.root)
    assert index.info(include_tmp=True)["id"].tolist() == [1, 2, 3, 5]
    assert index.info()["id"].tolist() == [1, 2, 3]
    both = index.info(include_failed=True, include_tmp=True)
    assert both["id"].tolist() == [1, 2, 3, 4, 5]
    assert both.set_index("id").loc[[4, 5], "status"].tolist() == ["failed", "completed"]
    assert exman.Index(proj.root, cache=False).info(include_tmp=True)["id"].tolist() == [1, 2, 3, 5]


def test_shell_completion_of_ids_and_marks(proj, exman_cmd):
    cli(proj.root, "mark", "paper/fig1", "1")

    def complete(words: str) -> list[str]:
        env = {"_EXMAN_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
        return [line.split(",", 1)[1] for line in exman_cmd(env=env).stdout.splitlines()]

    assert complete(f"exman --root {proj.root} show ") == ["1", "2", "3", "4", "5"]
    assert complete(f"exman --root {proj.root} diff 1 {name_of(proj.root, 3)[:9]}") == [name_of(proj.root, 3)]
    assert complete(f"exman --root {proj.root} ls --mark pa") == ["paper", "paper/fig1"]


def test_file_system_errors_are_one_line(proj):
    key = "/".join(["k" * 200] * 25)  # every part is legal; the whole path is too long for the OS
    assert_error(cli(proj.root, "mark", key, "1"), "too long")


# -- the toolkit for command plugins -------------------------------------------------------


def test_the_documented_command_plugin_works_with_the_toolkit(proj):
    from plugins import metric_command

    from exman.plugins import get_plugin_manager

    source = (Path(__file__).parent / "plugins" / "metric_command.py").read_text()
    assert source.split('"""', 2)[2].strip() in (Path(__file__).parents[1] / "docs" / "plugins.md").read_text(), (
        "docs/plugins.md shows tests/plugins/metric_command.py"
    )
    cli = make_cli(get_plugin_manager(cli=True, plugins=[metric_command]))
    r = CliRunner().invoke(cli, ["--root", str(proj.root), "metric", "loss", "1-2", "third", "99"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["id", "status", "loss"]
    # loss = lr / epochs at the last of two epochs: what each run logged, as ls writes it
    assert [line.split() for line in lines[1:]] == [
        ["1", "completed", "0.05"],
        ["2", "completed", "0.1"],
        ["3", "completed", "0.15"],
    ]
    assert "no such run in runs/: 99" in r.stderr
    r = CliRunner().invoke(cli, ["--root", str(proj.root), "metric", "loss", "98"])
    assert r.exit_code == 1 and "no such runs" in r.stderr
