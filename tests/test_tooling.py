"""The linter, the formatter and the type checker, as CI runs them: `ruff check` and
`ruff format --check` on the tree, `mypy` on exman/.

Their versions are pinned in pyproject.toml's `lint` extra, so a verdict only changes when the
code does; the settings live in pyproject.toml too.
"""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def _run(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing():
    proc = _run(
        "ruff", "check", "--output-format", "concise", "exman", "exman_plugins", "tests", "benchmarks", "examples"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_changes_nothing():
    proc = _run("ruff", "format", "--check", "exman", "exman_plugins", "tests", "benchmarks", "examples")
    assert proc.returncode == 0, (
        proc.stdout + proc.stderr + "\nrun: ruff format exman exman_plugins tests benchmarks examples"
    )


def test_mypy_finds_nothing():
    if sys.version_info < (3, 10):
        # Measured: numpy 1.x's stubs (all Python 3.9 can have) give mypy other verdicts than
        # numpy 2's; the code is type-checked against the newest dependencies, on 3.10+.
        import pytest

        pytest.skip("type-checked on Python 3.10+ against the newest dependencies' stubs")
    proc = _run("mypy", "--no-incremental")
    assert proc.returncode == 0, proc.stdout + proc.stderr
