"""The plugin system: swapping, blocking, entry points, order, documentation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO, Script, env_for_subprocess
from plugins import json_params, plain_names

import exman
from exman import hookspecs
from exman.plugins import DEFAULT_PLUGINS, PluginError, get_plugin_manager


def test_naming_plugin_swaps_folder_names(tmp_path):
    p = exman.ExParser(root=tmp_path / "exman", plugins=[plain_names])
    a = p.parse_args([])
    b = p.parse_args(["--name", "x"])
    assert a.root.name == "run-1" and b.root.name == "run-2-x"
    assert (p.index / "run-1.yaml").resolve() == (a.root / "params.yaml").resolve()


def test_storage_plugin_swaps_params_format(tmp_path):
    p = exman.ExParser(root=tmp_path / "exman", plugins=[json_params])
    p.add_argument("--lr", type=float, default=0.1)
    a = p.parse_args(["--lr", "0.3"])
    assert not (a.root / "params.yaml").exists()
    assert json.loads((a.root / "params.json").read_text())["lr"] == 0.3
    link = p.index / f"{a.root.name}.json"
    assert link.is_symlink()
    b = p.parse_args(["--config", str(link)])
    assert b.lr == 0.3


def test_blocking_a_default_plugin_by_name(tmp_path, monkeypatch):
    p = exman.ExParser(root=tmp_path / "a", automark=["k"], disable_plugins=["automark"])
    p.add_argument("--k", default="v")
    p.parse_args([])
    assert not list(p.marked.iterdir())
    monkeypatch.setenv("EXMAN_DISABLE_PLUGINS", "index_links, metadata")
    q = exman.ExParser(root=tmp_path / "b")
    r = q.parse_args([])
    assert not list(q.index.iterdir()) and not (r.root / "run.json").exists()
    assert (r.root / "params.yaml").exists()


def test_blocking_a_plugin_given_as_an_object_by_its_name(tmp_path, monkeypatch, capsys):
    """EXMAN_DISABLE_PLUGINS blocks a plugins=[obj] object by its name: no warning that the name is unknown."""
    from plugins import greeting

    monkeypatch.setenv("EXMAN_DISABLE_PLUGINS", greeting.__name__)
    a = exman.ExParser(root=tmp_path, plugins=[greeting]).parse_args([])
    assert not (a.root / "greeting.txt").exists()
    assert "names no plugin" not in capsys.readouterr().err


def test_unknown_hook_is_rejected():
    class Typo:
        @exman.hookimpl
        def on_run_strat(self, run):
            pass

    with pytest.raises(PluginError, match="on_run_strat"):
        get_plugin_manager(plugins=[Typo()])


def test_hook_call_order_for_one_run(tmp_path):
    calls = []

    class Recorder:
        def __getattr__(self, item):
            raise AttributeError(item)

    def recorder(name):
        # No parameters: pluggy hands an implementation only the hook arguments it names,
        # so this records the call whatever the hook passes.
        return exman.hookimpl(tryfirst=True)(lambda: calls.append(name))

    order = [
        "add_arguments",
        "on_parse",
        "collect_params",
        "claim_id",
        "naming",
        "storage",
        "on_run_start",
        "on_experiment_enter",
        "on_log",
        "on_run_end",
        "on_fail",
    ]  # the order the core calls them in, for a run that fails
    for name in order:
        setattr(Recorder, name, staticmethod(recorder(name)))

    p = exman.ExParser(root=tmp_path / "exman", plugins=[Recorder()])
    args = p.parse_args([])
    with pytest.raises(RuntimeError):
        with args.safe_experiment as run:
            run.log(x=1)
            raise RuntimeError
    assert calls == order


def test_every_hook_is_documented_with_its_signature():
    import inspect

    doc = (REPO / "CONTRIBUTING.md").read_text()
    specs = [n for n in dir(hookspecs) if not n.startswith("_") and hasattr(getattr(hookspecs, n), "exman_spec")]
    assert len(specs) >= 12
    for name in specs:
        args = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"{name}({args})" in doc, f"CONTRIBUTING.md lacks {name}({args})"


def test_trace_variable_prints_hook_calls(script):
    proc = script.run(env={"EXMAN_TRACE_PLUGINS": "1"})
    assert "claim_id" in proc.stderr and "on_run_start" in proc.stderr


def test_installed_distribution_is_discovered(tmp_path):
    src = tmp_path / "src"
    (src / "exman_hello").mkdir(parents=True)
    (src / "exman_hello" / "__init__.py").write_text(
        textwrap.dedent("""
        from exman import hookimpl

        @hookimpl
        def on_run_start(run):
            (run.path / "hello.txt").write_text(f"hello from run {run.id}")
    """)
    )
    (src / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "exman-hello"
        version = "1.2.3"

        [project.entry-points.exman]
        hello = "exman_hello"
    """)
    )
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    env = env_for_subprocess(XDG_CACHE_HOME=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join([str(target), env["PYTHONPATH"]])
    script = Script(tmp_path, "import exman\nexman.ExParser(root=exman.simpleroot(__file__)).parse_args()\n")
    for _ in range(2):  # second time through the entry-point cache
        script.run(env=env)
    runs = sorted((script.root / "runs").iterdir())
    assert [(r / "hello.txt").read_text() for r in runs] == ["hello from run 1", "hello from run 2"]
    # blocked by name, it does nothing
    script.run(env={**env, "EXMAN_DISABLE_PLUGINS": "hello"})
    assert not (sorted((script.root / "runs").iterdir())[-1] / "hello.txt").exists()
    listed = subprocess.run(
        [sys.executable, "-m", "exman", "plugins", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    row = next(r for r in json.loads(listed) if r["name"] == "hello")
    assert row["origin"] == "exman-hello 1.2.3" and row["hooks"] == ["on_run_start"]


def test_default_plugins_are_all_importable_and_named():
    pm = get_plugin_manager()
    for name in DEFAULT_PLUGINS:
        assert pm.get_plugin(name) is not None, name
