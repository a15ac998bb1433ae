"""Shared fixtures: real scripts, real roots, real subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The scripts the tests start must meet SIGHUP as a terminal would give it: exman rightly leaves an
# ignored SIGHUP alone (a run under nohup), so a suite started under nohup would test nothing there.
signal.signal(signal.SIGHUP, signal.SIG_DFL)
# Likewise SIGINT: bash starts a background job of a script (`.ci/run`'s two environments) with SIGINT
# ignored. A handler, unlike SIG_IGN, is not inherited: the scripts get the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _separate_stderr_in_old_click() -> None:
    """click >= 8.2 keeps a CliRunner's stderr apart from stdout; 8.1 (the oldest we allow, and the
    newest on Python 3.9) mixes them unless told not to. Make every CliRunner in the tests behave
    the same on both, so ``result.stderr`` is what the command wrote to stderr."""
    import inspect

    from click.testing import CliRunner

    init = CliRunner.__init__
    if "mix_stderr" not in inspect.signature(init).parameters:
        return

    def __init__(self, *args, mix_stderr=False, **kwargs):
        init(self, *args, mix_stderr=mix_stderr, **kwargs)

    CliRunner.__init__ = __init__


_separate_stderr_in_old_click()

SCRIPT = """
import pathlib, sys
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
parser.add_argument("--fail", type=bool, default=False)
args = parser.parse_args()
with args.safe_experiment as run:
    for epoch in range(args.epochs):
        run.log(loss=args.lr / (epoch + 1), acc=0.5 + 0.1 * epoch + args.seed * 0.01)
    if args.fail:
        raise RuntimeError("failing on purpose")
"""


def env_for_subprocess(**extra) -> dict:
    """The test's environment with this checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


class Script:
    """A training-style script in its own folder; its root is ``<folder>/exman``."""

    def __init__(self, folder: Path, source: str = SCRIPT):
        self.folder = folder
        self.path = folder / "main.py"
        self.path.write_text(textwrap.dedent(source))
        self.root = folder / "exman"

    def run(self, *args, check=True, env=None, **kwargs) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, str(self.path), *map(str, args)],
            capture_output=True,
            text=True,
            env=env_for_subprocess(**(env or {})),
            cwd=self.folder,
            **kwargs,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"script failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc


@pytest.fixture
def script(tmp_path) -> Script:
    return Script(tmp_path)


def exman_command() -> list:
    """The installed ``exman`` console script, or ``python -m exman`` without one."""
    script = Path(sys.executable).parent / "exman"
    return [str(script)] if script.exists() else [sys.executable, "-m", "exman"]


@pytest.fixture
def exman_cmd():
    """Run the installed ``exman`` console script (falling back to ``python -m exman``)."""

    command = exman_command()

    def run(*args, check=True, input=None, env=None, cwd=None):
        proc = subprocess.run(
            [*command, *map(str, args)],
            capture_output=True,
            text=True,
            input=input,
            env=env_for_subprocess(**(env or {})),
            cwd=cwd,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"exman {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


def on_terminal(args, env=None, columns: int = 120) -> str:
    """Run the installed exman with stdout on a pseudo-terminal ``columns`` wide; what it drew."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    command = exman_command()
    env = env_for_subprocess(**(env or {}))
    env.pop("COLUMNS", None)  # the terminal's own size, as a shell would leave it
    proc = subprocess.Popen([*command, *map(str, args)], stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    return b"".join(chunks).decode()


def count_calls(monkeypatch, module, name: str) -> dict:
    """Wrap ``module.name`` so each call is counted in the returned ``{"n": ...}``; it still runs."""
    count = {"n": 0}
    real = getattr(module, name)

    def counting(*args, **kwargs):
        count["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return count
