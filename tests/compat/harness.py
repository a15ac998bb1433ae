"""Playing a scenario under one exman, normalising what was seen, and diffing two sides.

A scenario (``scenarios.py``) is a few files and a list of steps, each run as a
real process in a fresh folder:

- ``Run``: ``python <script> <args>``; records the exit code, the class of
  stderr's last line, whether stdout holds a traceback, and every namespace
  (or note) the script passed to ``show``/``note``;
- ``Cli``: the ``exman`` command in the root's folder; exit code, stderr class
  and stderr's last line (the warnings scripts may grep for);
- ``Observe``: ``observe.py`` on the root (tree, params.yaml, Index.info());
- ``Pause``: wait, so that files age past ours' Index cache's racy window.

A step runs under "the side" (0.1.9 or ours, whichever is played) unless it
says ``impl="legacy"``: then it always runs under 0.1.9 (a root shared by
both versions). Differences are reported as paths, ``<step label>/...``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCRIPTS = HERE / "scripts"
OBSERVER = HERE / "observe.py"
DOC = REPO / "docs" / "compat.md"
OS_USER = "exman-compat-user"  # the account name the runs see (LOGNAME/USER), so it can be recognised
HOST = os.uname().nodename
MISSING = "<missing>"


@dataclasses.dataclass
class Run:
    label: str
    script: str
    args: tuple = ()
    impl: str = "side"
    env: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Cli:
    label: str
    args: tuple
    impl: str = "side"


@dataclasses.dataclass
class Observe:
    label: str
    marks: tuple = (None,)
    impl: str = "side"
    uncached: bool = False  # EXMAN_INDEX_CACHE=0 (ours' switch; 0.1.9 has no cache)


@dataclasses.dataclass
class Pause:
    """Let the files written so far age past ours' 2 s "racy" window, as they have by the time a
    person opens a notebook: without it whether Index.info() may answer from its cache next time
    would depend on how fast this machine is."""

    label: str
    seconds: float = 2.5


@dataclasses.dataclass
class Scenario:
    name: str
    about: str
    scripts: tuple  # script file names from scripts/, copied beside each other
    steps: tuple
    files: dict = dataclasses.field(default_factory=dict)  # extra files: relative path -> text
    links: dict = dataclasses.field(default_factory=dict)  # symlinks: relative path -> target
    root: str = "exman"  # where the scripts' root is, relative to the work folder

    def fingerprint(self) -> str:
        sources = {name: (SCRIPTS / name).read_text() for name in (*self.scripts, "_show.py")}
        return json.dumps([dataclasses.asdict(self), sources], sort_keys=True, default=repr)


class Side:
    """One exman: the interpreter that runs scripts and the observer, and its ``exman`` command."""

    def __init__(self, name: str, python: str, exman_cmd: list, pythonpath: str | None = None):
        self.name = name
        self.python = python
        self.exman_cmd = exman_cmd
        self.pythonpath = pythonpath

    def env(self, extra=None) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("EXMAN_", "PYTHON", "PYTEST")) and k not in ("VIRTUAL_ENV", "COV_CORE_SOURCE")
        }
        env.update(LOGNAME=OS_USER, USER=OS_USER, PYTHONNOUSERSITE="1", EXMAN_HEARTBEAT="3600")
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        env.update(extra or {})
        return env


def ours_side() -> Side:
    script = Path(sys.executable).parent / "exman"
    cmd = [sys.executable, str(script)] if script.exists() else [sys.executable, "-m", "exman"]
    return Side("ours", sys.executable, cmd, pythonpath=str(REPO))


def legacy_side(env) -> Side:
    return Side("0.1.9", env.python, [env.python, env.exman_script])


# -- playing ------------------------------------------------------------------
def stderr_class(text: str) -> dict:
    """What a user notices on stderr: nothing, a traceback (and its exception), or a message line."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return {"stderr": "none"}
    last = lines[-1]
    if "Traceback (most recent call last)" in text:
        match = re.match(r"^([A-Za-z_][\w.]*)(:|$)", last)
        return {"stderr": "traceback", "exception": match.group(1).rsplit(".", 1)[-1] if match else last}
    if "error" in last.lower():
        return {"stderr": "error"}
    if "warning" in last.lower():
        return {"stderr": "warning"}
    return {"stderr": "other"}


def _resolve(arg: str, work: Path, root: Path) -> str:
    """``{index:N}`` (the index link of run N) and ``{params:N}`` (its runs/ params file), relative
    to the work folder as a user would type them."""

    def sub(match):
        what, number = match.group(1), int(match.group(2))
        pattern = ("index", f"{number:06d}-*.yaml") if what == "index" else ("runs", f"{number:06d}-*/params.yaml")
        found = sorted((root / pattern[0]).glob(pattern[1]))
        return os.path.relpath(found[0], work) if found else f"missing-{what}-{number}"

    return re.sub(r"\{(index|params):(\d+)\}", sub, arg)


def _call(cmd, side: Side, cwd: Path, extra_env=None, timeout=120):
    return subprocess.run(
        cmd, cwd=cwd, env=side.env(extra_env), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def play(scenario: Scenario, side: Side, legacy: Side, work: Path) -> dict:
    """Run every step in a fresh ``work`` folder; ``{label: record}``, normalised."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in (*scenario.scripts, "_show.py"):
        shutil.copy(SCRIPTS / name, work / name)
    for rel, text in scenario.files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    for rel, target in scenario.links.items():
        os.symlink(target, work / rel)
    root = work / scenario.root
    out = {}
    for i, step in enumerate(scenario.steps):
        if isinstance(step, Pause):
            time.sleep(step.seconds)
            continue
        who = legacy if step.impl == "legacy" else side
        if isinstance(step, Run):
            shown = work / f".show-{i}.jsonl"
            args = [_resolve(a, work, root) for a in step.args]
            proc = _call(
                [who.python, str(work / step.script), *args],
                who,
                work,
                {"EXMAN_COMPAT_SHOW": str(shown), "EXMAN_COMPAT_CLI": json.dumps(who.exman_cmd), **step.env},
            )
            record = {
                "exit": proc.returncode,
                **stderr_class(proc.stderr),
                # 0.1.9 printed a failed or interrupted run's traceback on stdout too
                "traceback on stdout": "Traceback (most recent call last)" in proc.stdout,
            }
            if shown.exists():
                lines = shown.read_text().splitlines()
                record["shown"] = {str(n): json.loads(line) for n, line in enumerate(lines)}
            out[step.label] = record
        elif isinstance(step, Cli):
            cwd = root if root.is_dir() else work
            proc = _call([*who.exman_cmd, *[_resolve(a, work, root) for a in step.args]], who, cwd)
            lines = proc.stderr.strip().splitlines()
            out[step.label] = {
                "exit": proc.returncode,
                **stderr_class(proc.stderr),
                "stderr last line": lines[-1] if lines else "",
            }
        else:
            spec = json.dumps({"root": str(root), "marks": list(step.marks)})
            proc = _call(
                [who.python, str(OBSERVER), spec], who, work, {"EXMAN_INDEX_CACHE": "0"} if step.uncached else None
            )
            if proc.returncode != 0:
                raise RuntimeError(f"observer failed under {who.name} in {scenario.name}/{step.label}:\n{proc.stderr}")
            out[step.label] = json.loads(proc.stdout.strip().splitlines()[-1])
    return normalise(out, work)


# -- normalising ---------------------------------------------------------------
_RUN_FOLDER = re.compile(r"\b(\d+)-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}")
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def _text(value: str, work: Path) -> str:
    for base in {str(work.resolve()), str(work)}:
        value = value.replace(base, "<W>")
    value = _RUN_FOLDER.sub(r"\1-<t>", value)
    value = _ISO_TIME.sub("<time>", value)
    value = _ADDRESS.sub("0x?", value)
    if value == repr(HOST):
        value = "'<host>'"
    return value


def normalise(obj, work: Path):
    """Paths, run-folder times, ISO times, addresses and the host name made comparable."""
    if isinstance(obj, dict):
        return {_text(str(k), work): normalise(v, work) for k, v in obj.items()}
    if isinstance(obj, list):
        return [normalise(v, work) for v in obj]
    if isinstance(obj, str):
        return _text(obj, work)
    return obj


# -- comparing -----------------------------------------------------------------
def canonical_dtype(name: str) -> str:
    """pandas 3 names pandas 2's object string columns ``str`` and keeps datetimes in [us]:
    the 0.1.9 venv runs pandas 2.3, ours whatever the project installs."""
    if name == "str":
        return "object"
    if name.startswith("datetime64["):
        return "datetime64"
    return name


def _prepare(a: dict, b: dict) -> None:
    """In place: canonical dtypes; column order compared over the columns both sides have."""
    for label in set(a) & set(b):
        for side, other in ((a[label], b[label]), (b[label], a[label])):
            side.pop("_meta", None)
            for sel, frame in (side.get("info") or {}).items():
                for column in frame.get("columns", {}).values():
                    column["dtype"] = canonical_dtype(column["dtype"])
                theirs = (other.get("info") or {}).get(sel, {})
                if "order" in frame:
                    shared = set(theirs.get("columns", frame["columns"]))
                    frame["order"] = [c for c in frame["order"] if c in shared]


def diff(a, b, path: str = ""):
    """``[(path, value in a, value in b)]``; a key on one side only is one difference at that key."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}/{key}" if path else str(key)
            if key not in b:
                out.append((sub, a[key], MISSING))
            elif key not in a:
                out.append((sub, MISSING, b[key]))
            else:
                out.extend(diff(a[key], b[key], sub))
        return out
    return [] if a == b else [(path, a, b)]


def compare(legacy_obs: dict, ours_obs: dict):
    a, b = json.loads(json.dumps(legacy_obs)), json.loads(json.dumps(ours_obs))
    _prepare(a, b)
    return diff(a, b)


# -- the list of intended differences ---------------------------------------------
@dataclasses.dataclass
class Entry:
    id: str
    kind: str
    scenarios: tuple
    where: tuple
    what: str
    reason: str
    extra: dict  # the other fields: issue, and cause and fix for a bug

    def covers(self, scenario: str, path: str) -> bool:
        if "*" not in self.scenarios and scenario not in self.scenarios:
            return False
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in self.where)


def load_entries(doc: Path = DOC) -> list:
    """The YAML block after ``<!-- differences -->`` in docs/compat.md."""
    text = doc.read_text()
    marker = text.index("<!-- differences -->")
    block = re.search(r"```yaml\n(.*?)```", text[marker:], re.S)
    raw = yaml.safe_load(block.group(1))
    entries = []
    for item in raw:
        scenarios = item["scenario"]
        where = item["where"]
        entries.append(
            Entry(
                id=item["id"],
                kind=item["kind"],
                scenarios=tuple(scenarios if isinstance(scenarios, list) else [scenarios]),
                where=tuple(where if isinstance(where, list) else [where]),
                what=item["what"],
                reason=item["reason"],
                extra={k: v for k, v in item.items() if k not in ("id", "kind", "scenario", "where", "what", "reason")},
            )
        )
    return entries


def show_value(value) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) < 300 else text[:300] + "..."
