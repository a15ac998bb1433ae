"""ExParser: the 0.1.9 contract and what is new, on real folders."""

from __future__ import annotations

import argparse
import json
import os
import pathlib

import pytest
import yaml

import exman


def make(tmp_path, **kw):
    return exman.ExParser(root=tmp_path / "exman", **kw)


def test_simpleroot_is_folder_of_file(tmp_path):
    assert exman.simpleroot(str(tmp_path / "main.py")) == tmp_path / "exman"


def test_root_spelled_through_a_symlinked_folder_is_where_the_os_puts_it(tmp_path):
    # A script in bin/ often spells its root "<dir of the script>/../exman"; with bin/ a symlink the
    # OS follows the link before "..": the runs belong beside the link's target, as 0.1.9 put them.
    (tmp_path / "tools" / "bin").mkdir(parents=True)
    (tmp_path / "bin").symlink_to("tools/bin")
    spelled = os.path.join(str(tmp_path / "bin"), "..", "exman")
    args = exman.ExParser(root=spelled).parse_args([])
    assert str(args.root).startswith(spelled + os.sep)  # the spelling is kept, as 0.1.9 kept it
    assert (tmp_path / "tools" / "exman" / "runs" / args.root.name / "params.yaml").is_file()
    assert not (tmp_path / "exman").exists()


def test_absolute_root_works_from_a_deleted_working_folder(tmp_path, monkeypatch):
    # A long job's shell may sit in a folder someone removed meanwhile; an absolute root needs no cwd.
    (tmp_path / "gone").mkdir()
    monkeypatch.chdir(tmp_path / "gone")
    (tmp_path / "gone").rmdir()
    args = exman.ExParser(root=str(tmp_path / "exman")).parse_args([])
    assert (tmp_path / "exman" / "runs" / args.root.name / "params.yaml").is_file()


def test_layout_run_folder_params_and_index_link(tmp_path, capsys):
    p = make(tmp_path)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--layers", type=int, nargs="+", default=[1, 2])
    args = p.parse_args(["--lr", "0.5"])
    for name in ("runs", "index", "marked", "tmp", "fails"):
        assert (p.root / name).is_dir()
    assert args.root.parent == p.runs
    assert args.root.name.startswith("000001-")
    params = yaml.safe_load((args.root / "params.yaml").read_text())
    assert params["lr"] == 0.5 and params["layers"] == [1, 2]
    assert params["id"] == 1 and params["root"] == f"runs/{args.root.name}"
    assert len(params["time"]) == 19
    assert "lr: 0.5" in capsys.readouterr().out  # printed, like 0.1.9
    link = p.index / f"{args.root.name}.yaml"
    assert link.is_symlink() and os.readlink(link) == f"../runs/{args.root.name}/params.yaml"
    assert link.resolve() == (args.root / "params.yaml").resolve()
    assert p.num_ex() == 1 and p.next_ex() == 2


def test_numbers_count_runs_tmp_and_fails(tmp_path):
    p = make(tmp_path, zfill=3)
    a = p.parse_args([])
    b = p.parse_args(["--tmp"])
    assert b.root.parent == p.tmp and b.root.name.startswith("002-")
    assert any(p.index.iterdir()) is not False and len(list(p.index.iterdir())) == 1
    with pytest.raises(RuntimeError):
        with p.parse_args([]).safe_experiment:
            raise RuntimeError("x")
    assert p.next_ex() == 4 and p.num_ex() == 1
    assert a.root.name.startswith("001-")


def test_name_suffix_and_unsafe_names_refused(tmp_path, capsys):
    p = make(tmp_path)
    assert p.parse_args(["--name", "baseline"]).root.name.endswith("-baseline")
    for bad in ("../x", "a/b", "/abs", "..", "x" * 300):
        with pytest.raises(SystemExit):
            p.parse_args(["--name", bad])
        assert "--name" in capsys.readouterr().err
    assert len(list(p.runs.iterdir())) == 1


def test_bool_type_accepts_words(tmp_path):
    p = make(tmp_path)
    p.add_argument("--flag", type=bool, default=False)
    for word, value in [("yes", True), ("OFF", False), ("T", True), ("0", False), ("On", True), ("n", False)]:
        assert p.parse_args(["--flag", word]).flag is value
    with pytest.raises(SystemExit):
        p.parse_args(["--flag", "maybe"])


def test_optional_type(tmp_path):
    p = make(tmp_path)
    p.add_argument("--k", type=exman.optional(int), default=3)
    assert p.parse_args(["--k", "none"]).k is None
    assert p.parse_args(["--k", "NULL"]).k is None
    assert p.parse_args(["--k", "7"]).k == 7
    assert exman.ArgumentError is argparse.ArgumentError


def test_validator_refuses_and_leaves_nothing(tmp_path):
    p = make(tmp_path)
    p.add_argument("--a", type=int, default=1)
    p.add_argument("--b", type=int, default=2)
    p.register_validator(lambda ns: ns.a < ns.b, "a={a} must be below b={b}")
    p.register_validator(lambda ns: 1 / ns.a > 0, "a must not be zero")
    with pytest.raises(argparse.ArgumentError, match="a=5 must be below b=2"):
        p.parse_args(["--a", "5"])
    with pytest.raises(argparse.ArgumentError, match="a must not be zero"):
        p.parse_args(["--a", "0"])
    assert not p.root.exists()  # a refused run leaves nothing, not even the layout
    p.parse_args([])
    assert len(list(p.runs.iterdir())) == 1


def test_refusals_exit_status_in_a_real_process(script):
    # A usage error is argparse's (exit 2); a validator's refusal is an exception a calling program
    # can catch, so uncaught it ends the process as any exception does (exit 1): one line either way.
    script.path.write_text(
        "import exman\np = exman.ExParser(root=exman.simpleroot(__file__))\n"
        "p.add_argument('--a', type=int, default=1)\n"
        "p.register_validator(lambda ns: ns.a < 3, 'a={a} must be below 3')\n"
        "p.parse_args()\n"
    )
    for argv, code, line in [
        (["--a", "x"], 2, "main.py: error: argument --a"),
        (["--a", "5"], 1, "main.py: error: a=5 must be below 3"),
    ]:
        proc = script.run(*argv, check=False)
        assert proc.returncode == code, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(line) and "Traceback" not in proc.stderr, proc.stderr
    assert not script.root.exists()


def test_setter_runs_before_validators_and_is_recorded(tmp_path):
    p = make(tmp_path)
    p.add_argument("--a", type=int, default=1)
    p.add_argument("--b", type=int, default=None)

    def fill(ns):
        ns.b = ns.b if ns.b is not None else ns.a * 10

    p.register_setter(fill)
    p.register_validator(lambda ns: ns.b == 30, "b is {b}")
    args = p.parse_args(["--a", "3"])
    assert yaml.safe_load((args.root / "params.yaml").read_text())["b"] == 30


def test_config_restores_overrides_and_skips_volatile(tmp_path):
    p = make(tmp_path)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("a"))
    p.add_argument("--tags", nargs="*", default=[])
    p.add_argument("--job", default="local", volatile=True)
    p.add_argument("--batch", dest="batch_size", type=int, default=8)
    p.add_argument("--req", required=True)
    first = p.parse_args(
        ["--lr", "0.3", "--out", "b/c", "--tags", "x", "y", "--job", "j1", "--batch", "64", "--req", "r"]
    )
    cfg = p.index / f"{first.root.name}.yaml"
    again = p.parse_args(["--config", str(cfg), "--lr", "0.4"])
    assert again.lr == 0.4
    assert again.out == pathlib.Path("b/c") and isinstance(again.out, pathlib.Path)
    assert again.tags == ["x", "y"] and again.batch_size == 64 and again.req == "r"
    assert again.job == "local"  # volatile: not restored
    assert again.id if hasattr(again, "id") else True
    rec = yaml.safe_load((again.root / "params.yaml").read_text())
    assert rec["id"] == 2 and rec["root"].endswith(again.root.name)


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", "mapping"),
        ("lr: [unclosed", "not valid YAML"),
        ("!!python/object/apply:os.system ['echo pwned']", "not valid YAML"),
    ],
)
def test_config_bad_files_give_one_line_errors(tmp_path, capsys, content, message):
    p = make(tmp_path)
    p.add_argument("--lr", type=float, default=0.1)
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    with pytest.raises(SystemExit) as exc:
        p.parse_args(["--config", str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (p.runs.exists() and list(p.runs.iterdir()))


def test_local_config_overrides_code_defaults_and_cli_overrides_both(tmp_path):
    cfg = tmp_path / "local.cfg"
    cfg.write_text("user: alice\nlr: 0.5\n")
    p = make(tmp_path, default_config_files=[str(cfg)])
    p.add_argument("--user", default="nobody")
    p.add_argument("--lr", type=float, default=0.1)
    args = p.parse_args(["--lr", "0.7"])
    assert args.user == "alice" and args.lr == 0.7
    # --config outranks the local config file
    p.add_argument("--other", default="o")
    old = p.parse_args(["--user", "bob"])
    again = p.parse_args(["--config", str(old.root / "params.yaml")])
    assert again.user == "bob" and again.lr == 0.5


def test_automark_links(tmp_path):
    p = make(tmp_path, automark=["opt", "constant"])
    p.add_argument("--opt", default="adam")
    args = p.parse_args(["--opt", "sgd/../x"])
    marks = list((p.marked).rglob(args.root.name))
    assert len(marks) == 1
    link = marks[0]
    assert link.parent.relative_to(p.marked).parts == ("opt", "sgd_.._x", "constant")
    assert link.is_symlink() and not os.readlink(link).startswith("/")
    assert link.resolve() == args.root.resolve()
    tmp = p.parse_args(["--tmp"])
    assert not list(p.marked.rglob(tmp.root.name))


def test_any_value_type_is_recorded(tmp_path):
    class Weird:
        def __str__(self):
            return "weird!"

    p = make(tmp_path)
    p.add_argument("--w", type=lambda s: Weird(), default=Weird())
    p.add_argument("--c", type=complex, default=1j)
    args = p.parse_args([])
    rec = yaml.safe_load((args.root / "params.yaml").read_text())
    assert rec["w"] == "weird!" and rec["c"] == "1j"


def test_safe_experiment_success_failure_interrupt(tmp_path):
    p = make(tmp_path)
    ok = p.parse_args([])
    with ok.safe_experiment as run:
        print("to the log")
        run.log(loss=0.5)
        run.log(loss=0.25, step=10)
    meta = json.loads((ok.root / "run.json").read_text())
    assert meta["status"] == "completed" and meta["end"] and meta["duration"] >= 0
    assert "to the log" in (ok.root / "log.txt").read_text()
    rows = [json.loads(line) for line in (ok.root / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["loss"]) for r in rows] == [(0, 0.5), (10, 0.25)]

    bad = p.parse_args([])
    with pytest.raises(ZeroDivisionError):
        with bad.safe_experiment:
            1 / 0  # noqa: B018 (raises on purpose)
    moved = p.fails / bad.root.name
    assert moved.is_dir() and not bad.root.exists()
    assert "ZeroDivisionError" in (moved / "traceback.txt").read_text()
    assert json.loads((moved / "run.json").read_text())["status"] == "failed"
    assert not (p.index / f"{bad.root.name}.yaml").exists()

    stop = p.parse_args([])
    with stop.safe_experiment:
        raise KeyboardInterrupt
    assert stop.root.is_dir() and (stop.root / "traceback.txt").exists()
    assert json.loads((stop.root / "run.json").read_text())["status"] == "interrupted"
    # the callable form (0.1.9) never prompts without a terminal
    again = p.parse_args([])
    with again.safe_experiment(prompt=True, default=True):
        raise KeyboardInterrupt
    assert (p.fails / again.root.name).is_dir()


def test_failed_run_loses_its_automarks(tmp_path):
    p = make(tmp_path, automark=["k"])
    p.add_argument("--k", default="v")
    args = p.parse_args([])
    with pytest.raises(ValueError):
        with args.safe_experiment:
            raise ValueError
    assert not list(p.marked.rglob(args.root.name))


def test_run_log_refuses_param_names_and_non_scalars(tmp_path):
    p = make(tmp_path)
    p.add_argument("--lr", type=float, default=0.1)
    args = p.parse_args([])
    with args.safe_experiment as run:
        with pytest.raises(ValueError, match="lr"):
            run.log(lr=1.0)
        with pytest.raises(TypeError):
            run.log(loss=[1, 2])


def test_run_metadata_and_schema(tmp_path):
    p = make(tmp_path)
    p.add_argument("--opt", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--k", type=exman.optional(int), default=None)
    p.add_argument("--flag", action="store_true")
    p.add_argument("--path", type=pathlib.Path, default=None)
    args = p.parse_args(["--name", "m"])
    meta = json.loads((args.root / "run.json").read_text())
    for key in ("status", "start", "argv", "host", "user", "pid", "python", "exman"):
        assert key in meta
    assert meta["status"] == "running" and meta["pid"] == os.getpid() and meta["name"] == args.root.name
    assert meta["schema"]["opt"]["choices"] == ["sgd", "adam"]
    assert meta["schema"]["k"] == {"type": "int", "list": False, "nargs": None, "choices": None, "nullable": True}
    assert meta["schema"]["flag"]["type"] == "bool" and meta["schema"]["path"]["type"] == "path"
    assert "name" not in meta["params"] and "tmp" not in meta["params"]
    # params.yaml also holds exman's own options under 0.1.9's keys
    assert set(yaml.safe_load((args.root / "params.yaml").read_text())) == {
        "opt",
        "k",
        "flag",
        "path",
        "tmp",
        "git_dirty",
        "name",
        "config_file",
        "root",
        "time",
        "id",
    }


def test_exman_options_never_take_the_scripts_names(tmp_path):
    p = make(tmp_path)
    p.add_argument("--name", default="model-a")
    p.add_argument("--tmp", type=int, default=3)
    args = p.parse_args(["--name", "resnet", "--tmp", "4"])
    assert args.name == "resnet" and args.tmp == 4
    assert args.root.parent == p.runs and args.root.name.count("-") == 6
    # and --config gives the script's own --name and --tmp back
    again = p.parse_args(["--config", str(args.root / "params.yaml")])
    assert again.name == "resnet" and again.tmp == 4


def test_config_of_a_0_1_9_run_skips_its_option_keys(tmp_path):
    old = tmp_path / "params.yaml"
    old.write_text("lr: 0.5\ntmp: false\ngit_dirty: false\nroot: runs/000001-x\ntime: '2019-01-01T00:00:00'\nid: 1\n")
    p = make(tmp_path)
    p.add_argument("--lr", type=float, default=0.1)
    assert p.parse_args(["--config", str(old)]).lr == 0.5


def test_atomic_write_leaves_no_temp_files(tmp_path):
    p = make(tmp_path)
    args = p.parse_args([])
    with args.safe_experiment as run:
        run.log(x=1)
    assert not [f for f in args.root.iterdir() if f.name.startswith(".")]


def test_without_safe_experiment_the_run_completes_at_exit(script):
    script.path.write_text(
        "import exman\np = exman.ExParser(root=exman.simpleroot(__file__))\np.add_argument('--x', type=int, default=1)\n"
        "a = p.parse_args()\nprint('done')\n"
    )
    script.run()
    (run,) = (script.root / "runs").iterdir()
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    script.path.write_text(script.path.read_text() + "raise ValueError('bad')\n")
    proc = script.run("--x", "3", check=False)
    assert proc.returncode == 1 and "ValueError" in proc.stderr
    run = sorted((script.root / "runs").iterdir())[-1]
    assert json.loads((run / "run.json").read_text())["status"] == "failed"


def test_sigterm_inside_safe_experiment_is_interrupted(script):
    import signal
    import subprocess
    import sys

    script.path.write_text(
        "import exman, time\np = exman.ExParser(root=exman.simpleroot(__file__))\na = p.parse_args()\n"
        "with a.safe_experiment:\n    print('ready', flush=True)\n    time.sleep(30)\n"
    )
    from conftest import env_for_subprocess

    proc = subprocess.Popen(
        [sys.executable, str(script.path)], stdout=subprocess.PIPE, text=True, env=env_for_subprocess()
    )
    for line in proc.stdout:
        if "ready" in line:
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 143
    (run,) = (script.root / "runs").iterdir()
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert "Terminated" in (run / "traceback.txt").read_text()


def test_import_exman_is_cheap():
    import subprocess
    import sys

    code = "import sys, exman; print(sorted(m for m in ('pandas', 'click', 'rich', 'matplotlib', 'dask', 'git', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
