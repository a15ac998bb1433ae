"""The on-disk format has one owner: no module but ``exman/layout.py`` spells a layout name.

A folder or file name of a root (``runs``, ``index``, ``.exman``, ``run.json``, ...) written
out as a string where a path is built or chosen (an operand of ``/`` or ``+``, an argument of
a file-system call, a default after ``or``, a comparison with a variable, a module constant)
is a second copy of the format that can drift from the first. Names as words in messages and
table columns are not paths and are not flagged.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from exman import layout

ROOT = Path(__file__).resolve().parents[1]
NAMES = {
    *layout.FOLDERS,
    layout.STATE,
    layout.SWEEPS,
    layout.IDS,
    layout.LAST_ID,
    layout.LOCK,
    layout.FOLDERS_SEEN,
    layout.PARAMS_FILE,
    layout.RUN_FILE,
    layout.METRICS_FILE,
    layout.LOG_FILE,
    layout.TRACEBACK_FILE,
    layout.DIFF_FILE,
}
PATH_CALLS = {
    "join",
    "joinpath",
    "Path",
    "PurePath",
    "scandir",
    "listdir",
    "walk",
    "open",
    "mkdir",
    "makedirs",
    "exists",
    "isdir",
    "isfile",
    "islink",
    "lexists",
    "stat",
    "lstat",
    "glob",
    "rglob",
    "read_text",
    "read_bytes",
    "write_text",
    "atomic_write",
    "tail",
    "unlink",
    "rmtree",
    "relative_symlink",
    "utime",
    "with_name",
    "open_regular",
    "read_regular",
    "try_stat",
}

# (module, literal): why it is not a spelling of the layout.
ALLOWED = {
    ("exman/analysis/inference.py", "runs"): "a table column, the number of runs in a cell",
    ("exman_plugins/commands/compare.py", "runs"): "the word in a message: a CI 'over runs'",
}


def _spelled(text: str) -> bool:
    return text.strip("/") in NAMES


def _func_name(func) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def spellings(source: str) -> list[tuple[int, str]]:
    """``(line, literal)`` of every layout name ``source`` spells where a path is made or chosen."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        expr, parent = node, parents.get(node)
        if isinstance(parent, ast.JoinedStr):  # f"{rel}/run.json": a path component after a /
            if "/" not in node.value or not any(_spelled(p) for p in node.value.split("/")[1:]):
                continue
            expr, parent = parent, parents.get(parent)
        elif not _spelled(node.value):
            continue
        if (
            (isinstance(parent, ast.BinOp) and isinstance(parent.op, (ast.Div, ast.Add)))
            or (isinstance(parent, ast.Call) and expr in parent.args and _func_name(parent.func) in PATH_CALLS)
            or (isinstance(parent, ast.BoolOp) and isinstance(parent.op, ast.Or))
            or (isinstance(parent, (ast.Assign, ast.AnnAssign)) and parent.value is expr)
            or (
                isinstance(parent, ast.Compare)
                and any(isinstance(x, (ast.Name, ast.Attribute)) for x in [parent.left, *parent.comparators])
            )
        ):
            found.append((node.lineno, node.value))
    return found


@pytest.mark.parametrize(
    "source",
    [
        'p = root / "runs" / name',
        'p = os.path.join(folder, "run.json")',
        'p = folder + "/metrics.jsonl"',
        'p = os.path.join(root, f"{rel}/params.yaml")',
        'name = meta.get("params_file") or "params.yaml"',
        'if folder != "fails": pass',
        'SPEC_FOLDER = "sweeps"',
        'entries = os.scandir(".exman")',
    ],
)
def test_the_check_finds_a_spelled_path(source):
    assert spellings(source)


@pytest.mark.parametrize(
    "source",
    [
        'df["runs"] = n',
        'memo = {"index": [], "folders": {}}',
        'click.echo("no run.json: recorded by exman 0.1.9?")',
        "p = root / layout.RUNS / name",
        'p = folder + "/" + layout.RUN_FILE',
    ],
)
def test_the_check_leaves_words_and_layout_names_alone(source):
    assert not spellings(source)


def test_only_layout_spells_the_on_disk_format():
    found, used = [], set()
    for path in sorted([*ROOT.glob("exman/**/*.py"), *ROOT.glob("exman_plugins/**/*.py")]):
        module = path.relative_to(ROOT).as_posix()
        if module == "exman/layout.py":
            continue
        for line, literal in spellings(path.read_text(encoding="utf-8")):
            if (module, literal) in ALLOWED:
                used.add((module, literal))
            else:
                found.append(f"{module}:{line}: {literal!r} (use exman.layout's name)")
    assert not found, "\n".join(found)
    assert used == set(ALLOWED), f"allow-list entries no longer needed: {set(ALLOWED) - used}"
