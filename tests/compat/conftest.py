"""The real exman 0.1.9 in a virtual environment of its own, built once and cached.

The environment is keyed by ``LEGACY_VERSION`` and the interpreter's version:
change either and the next session rebuilds it. It lives under
``$EXMAN_COMPAT_CACHE`` (default: pytest's cache folder, else the system temp
folder), is built under a file lock (two sessions never build it at once) and
counts as built only once ``ready.json`` is written, last.

Only wheels are installed (``--only-binary :all:``). strconv, a dependency of
0.1.9, is published as a source archive only: its wheel is built once into the
cache's ``wheels/`` folder and installed from there. pip's own cache keeps a
rebuild fast.

Without a usable Python or without the package index the compat tests skip
with the reason, unless ``EXMAN_REQUIRE_COMPAT=1`` (CI), where they fail.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# What 0.1.9 ran with in this suite. pandas 2.3 is the last line 0.1.9's own tests pass on
# (38/38; on pandas 3 two dtype tests fail); configargparse is pinned to the release ours uses
# too, so a difference in parsing is exman's and not the library's.
LEGACY_REQUIREMENTS = (
    "exman==0.1.9",
    "pandas==2.3.3",
    "configargparse==1.9.0",
    "pyyaml==6.0.3",
    "strconv==0.4.2",
)
LEGACY_VERSION = "legacy-1 " + " ".join(LEGACY_REQUIREMENTS)
SOURCE_ONLY = ("strconv==0.4.2",)  # no wheel on the index: built once into the cache
SUPPORTED = ((3, 9), (3, 13))  # Pythons pandas 2.3.3 ships wheels for and 0.1.9 runs on
PIP_NET = ("--retries", "1", "--timeout", "30", "--disable-pip-version-check")


def _required() -> bool:
    return os.environ.get("EXMAN_REQUIRE_COMPAT", "").strip().lower() in ("1", "yes", "true", "on")


def unavailable(reason: str):
    """Skip, or fail when the suite is required (``EXMAN_REQUIRE_COMPAT=1``)."""
    message = f"exman 0.1.9 compat suite unavailable: {reason}"
    if _required():
        pytest.fail(message + " (EXMAN_REQUIRE_COMPAT=1)", pytrace=False)
    pytest.skip(message)


def _version_of(python: str):
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    parts = tuple(int(p) for p in out.stdout.strip().split("."))
    return parts if SUPPORTED[0] <= parts[:2] <= SUPPORTED[1] else None


def find_python():
    """``(path, version)`` of a Python 0.1.9 and pandas 2.3 run on, or ``(None, reason)``."""
    candidates = []
    if os.environ.get("EXMAN_COMPAT_PYTHON"):
        candidates.append(os.environ["EXMAN_COMPAT_PYTHON"])
    candidates.append(getattr(sys, "_base_executable", None) or sys.executable)
    for minor in range(SUPPORTED[1][1], SUPPORTED[0][1] - 1, -1):
        found = shutil.which(f"python3.{minor}")
        if found:
            candidates.append(found)
        candidates.extend(sorted(Path("/root/.pyenv/versions").glob(f"3.{minor}.*/bin/python"), reverse=True))
    for python in candidates:
        if python and Path(python).exists():
            version = _version_of(str(python))
            if version:
                return str(python), version
    (a, b), (c, d) = SUPPORTED[0], SUPPORTED[1]
    return None, f"no Python {a}.{b}-{c}.{d} found (set EXMAN_COMPAT_PYTHON)"


def cache_dir(config) -> Path:
    if os.environ.get("EXMAN_COMPAT_CACHE"):
        path = Path(os.environ["EXMAN_COMPAT_CACHE"])
    else:
        try:
            path = Path(config.cache.mkdir("exman-compat"))
        except (AttributeError, OSError):
            path = Path(tempfile.gettempdir()) / f"exman-compat-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


class LegacyEnv:
    """The built environment: its python, its ``exman`` script, what it holds."""

    def __init__(self, folder: Path, info: dict):
        self.folder = folder
        self.python = str(folder / "bin" / "python")
        self.exman_script = str(folder / "bin" / "exman")
        self.info = info
        self.key = info["key"]


def _run(cmd, what: str, timeout: int = 600):
    # 0.1.9's venv has its own pins: constraints meant for ours (CI's oldest-dependencies run
    # exports PIP_CONSTRAINT) must not reach its pip.
    env = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return f"{what}: timed out after {timeout} s"
    except OSError as exc:
        return f"{what}: {exc}"
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        hint = " (is the package index reachable?)" if "pip" in cmd else ""
        return f"{what} failed ({proc.returncode}){hint}: " + " | ".join(tail)
    return None


def build_legacy(base: Path, python: str, version, say=print) -> LegacyEnv:
    key = f"{LEGACY_VERSION} python{'.'.join(map(str, version))}"
    folder = base / ("legacy-" + hashlib.sha256(key.encode()).hexdigest()[:12])
    ready = folder / "ready.json"
    with open(base / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            info = json.loads(ready.read_text())
            if info.get("key") == key and Path(folder / "bin" / "python").exists():
                return LegacyEnv(folder, info)
        say(f"tests/compat: building a venv with exman 0.1.9 from the package index, once, in {folder}")
        shutil.rmtree(folder, ignore_errors=True)
        error = _run([python, "-m", "venv", str(folder)], "creating the venv", timeout=300)
        if error:
            unavailable(error)
        pip = [str(folder / "bin" / "python"), "-m", "pip"]
        wheels = base / "wheels"
        wheels.mkdir(exist_ok=True)
        for requirement in SOURCE_ONLY:
            name = requirement.split("==")[0]
            if not any(w.name.lower().startswith(name.lower() + "-") for w in wheels.glob("*.whl")):
                # --use-pep517: build in isolation with a current setuptools; an old venv's pip
                # (Python 3.9) would call setup.py bdist_wheel without the wheel package.
                error = _run(
                    [*pip, "wheel", "-q", *PIP_NET, "--use-pep517", "--no-deps", "-w", str(wheels), requirement],
                    f"building a wheel of {requirement}",
                )
                if error:
                    unavailable(error)
        error = _run(
            [
                *pip,
                "install",
                "-q",
                *PIP_NET,
                "--only-binary",
                ":all:",
                "--find-links",
                str(wheels),
                *LEGACY_REQUIREMENTS,
            ],
            "installing exman 0.1.9 from the package index",
        )
        if error:
            unavailable(error)
        freeze = subprocess.run([*pip, "freeze"], capture_output=True, text=True).stdout.split()
        info = {"key": key, "python": python, "packages": freeze}
        ready.write_text(json.dumps(info, indent=1))
        return LegacyEnv(folder, info)


@pytest.fixture(scope="session")
def legacy(request) -> LegacyEnv:
    """exman 0.1.9 from the package index, in its own venv (built on first use)."""
    python, version = find_python()
    if python is None:
        unavailable(version)
    return build_legacy(cache_dir(request.config), python, version, say=lambda text: tell(request.config, text))


def tell(config, text: str) -> None:
    """A line on the terminal while output is captured: a step that takes minutes says so."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    capture = config.pluginmanager.getplugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        if getattr(getattr(reporter, "_tw", None), "width_of_current_line", 0):  # -q: a line of dots
            reporter.write("\n")
        reporter.write_line(text)


@pytest.fixture(scope="session")
def compat_cache(request) -> Path:
    return cache_dir(request.config)
