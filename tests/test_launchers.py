"""Launchers come from the ``register_launchers`` hook, without the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO, env_for_subprocess
from plugins import serial_launcher
from test_sweep import SWEEP_SCRIPT, records

import exman
from exman.errors import SweepError
from exman.plugins import PluginError, get_plugin_manager
from exman.sweeps import launchers


def test_a_sweep_from_python_loads_no_command_line(tmp_path):
    (tmp_path / "main.py").write_text(SWEEP_SCRIPT)
    code = (
        "import json, sys\nimport exman\n"
        f"result = exman.sweep([sys.executable, 'main.py'], {{'lr': [0.1, 0.2]}}, root={str(tmp_path / 'exman')!r},"
        " jobs=2, quiet=True)\n"
        "print(json.dumps({'ok': result.ok, 'runs': len(result.runs),"
        " 'loaded': sorted(m for m in sys.modules if m == 'click' or m.startswith(('exman.cli', 'exman_plugins.commands')))}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env_for_subprocess(), check=True
    )
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer == {"ok": True, "runs": 2, "loaded": []}
    assert sorted(r["status"] for r in records(tmp_path / "exman")) == ["completed", "completed"]


def test_the_documented_launcher_plugin_runs_a_sweep_one_run_at_a_time(tmp_path):
    source = (REPO / "tests" / "plugins" / "serial_launcher.py").read_text()
    code = source.split('"""', 2)[2].strip()
    assert code in (REPO / "docs" / "sweeps.md").read_text(), "docs/sweeps.md shows tests/plugins/serial_launcher.py"
    (tmp_path / "main.py").write_text(SWEEP_SCRIPT)
    pm = get_plugin_manager(launchers=True, plugins=[serial_launcher])
    result = exman.sweep(
        [sys.executable, "main.py", "--sleep", "0.3"],
        {"lr": [0.1, 0.2, 0.3]},
        jobs=3,
        launcher="serial",
        root=tmp_path / "exman",
        cwd=tmp_path,
        quiet=True,
        pm=pm,
    )
    assert result.ok and [r.status for r in result.runs] == ["completed"] * 3
    runs = sorted(records(tmp_path / "exman"), key=lambda r: r["start"])
    assert len(runs) == 3
    # one after another although --jobs 3 allowed three at once
    assert all(a["end"] <= b["start"] for a, b in zip(runs, runs[1:])), [(r["start"], r["end"]) for r in runs]


def test_a_later_plugin_replaces_a_launcher_of_the_same_name_and_unknown_names_are_listed():
    class Mine:
        __name__ = "mine"

        @staticmethod
        @exman.hookimpl
        def register_launchers(register):
            register("local", Mine.launch)

        @staticmethod
        def launch(jobs, options, progress):
            return {}

    pm = get_plugin_manager(launchers=True, plugins=[Mine])
    found = launchers.collect(pm)
    assert found["local"].launch is Mine.launch
    assert {"local", "dask", "submitit"} <= set(found)
    assert found["submitit"].can_detach is not None and found["local"].can_detach is None
    with pytest.raises(SweepError, match="no launcher called 'nope' .*local"):
        launchers.get(pm, "nope")


def test_a_plugin_with_the_replaced_launcher_hooks_is_told_what_replaced_them():
    class Old:
        __name__ = "old-launcher"

        @staticmethod
        @exman.hookimpl
        def launch(name, jobs, options, progress):
            return None

    with pytest.raises(PluginError, match="unknown hook 'launch'.*register_launchers"):
        get_plugin_manager(launchers=True, plugins=[Old])


def test_a_launcher_error_names_the_root_in_its_resume_hint(tmp_path, monkeypatch):
    class Broken:
        __name__ = "broken-launcher"

        @staticmethod
        @exman.hookimpl
        def register_launchers(register):
            register("broken", Broken.launch)

        @staticmethod
        def launch(jobs, options, progress):
            raise SweepError("cannot reach the cluster")

    monkeypatch.chdir(tmp_path)  # the root is not found from here: the hint must name it
    root = tmp_path / "sub" / "root"
    pm = get_plugin_manager(launchers=True, plugins=[Broken])
    with pytest.raises(SweepError) as caught:
        exman.sweep(["true"], {"x": [1]}, launcher="broken", root=root, quiet=True, pm=pm)
    (spec,) = (root / "sweeps").glob("*.yaml")
    assert str(caught.value).endswith(f"run it later with: exman --root {root.resolve()} sweep --resume {spec.stem}")
