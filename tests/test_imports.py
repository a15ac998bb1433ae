"""The import graph of exman/ and exman_plugins/: no circle, and the few rules of direction.

Every ``import`` counts, the lazy ones inside functions too (a lazy import hides a
circle from Python, not from the reader); imports under ``if TYPE_CHECKING:`` do not.
A package's ``__init__`` running before its submodules is Python's business, not an
edge: ``from exman.index import read`` depends on ``exman.index.read`` only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("exman", "exman_plugins")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST):
    for node in ast.iter_child_nodes(tree):
        if _type_checking_only(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def _known(name: str) -> str | None:
    # the longest prefix of a dotted name that is one of our modules
    parts = name.split(".")
    while parts:
        if ".".join(parts) in MODULES:
            return ".".join(parts)
        parts.pop()
    return None


def _targets(module: str, node) -> set[str]:
    out = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            out.add(_known(alias.name))
        return out - {None}
    base = node.module or ""
    if node.level:  # relative import
        package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    for alias in node.names:
        # `from exman.index import read` names a submodule; `from exman import hookimpl` a name in a module
        out.add(_known(f"{base}.{alias.name}") if f"{base}.{alias.name}" in MODULES else _known(base))
    return out - {None}


def graph() -> dict[str, set[str]]:
    edges = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = set()
        for node in _imports(tree):
            targets |= _targets(module, node)
        edges[module] = targets - {module}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _path(edges, start, goal):
    # one chain of imports from start to goal, to name in a failure
    seen, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        if v == goal:
            chain = [v]
            while seen[chain[-1]] is not None:
                chain.append(seen[chain[-1]])
            return " -> ".join(reversed(chain))
        for w in sorted(edges.get(v, ())):
            if w not in seen:
                seen[w] = v
                queue.append(w)
    return None


def test_the_checker_finds_a_circle_and_resolves_names():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    edges = graph()
    # a submodule by name, a name inside a module, a lazy import inside a function
    assert "exman.index.read" in edges["exman.index"]
    assert "exman.markers" in edges["exman"]
    assert "exman.sweeps" in edges["exman"]


def test_no_import_circle():
    edges = graph()
    found = cycles(edges)
    detail = ["; ".join(filter(None, (_path(edges, c[0], c[1]), _path(edges, c[1], c[0])))) for c in found]
    assert not found, "import circles:\n" + "\n".join(f"{c}: {d}" for c, d in zip(found, detail))


@pytest.mark.parametrize(
    "rule, source, forbidden",
    [
        ("the core only calls hooks; it never imports a plugin", "exman", "exman_plugins"),
        ("analysis takes a DataFrame and never reads a root", "exman.analysis", "exman.index"),
    ],
)
def test_direction(rule, source, forbidden):
    edges = graph()
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in edges.items()
        if m == source or m.startswith(source + ".")
        for t in targets
        if t == forbidden or t.startswith(forbidden + ".")
    )
    assert not bad, f"{rule}: {bad}"


def test_nobody_imports_the_cli_but_its_entry_point_and_commands():
    edges = graph()
    allowed = ("exman.__main__", "exman_plugins.commands")
    bad = sorted(m for m, targets in edges.items() if "exman.cli" in targets and not m.startswith(allowed))
    assert not bad, f"modules importing exman.cli: {bad}"


def test_no_command_imports_another_command_or_the_toolkits_insides():
    # Commands share code through exman.cli's public toolkit or exman/ library modules.
    edges = graph()
    commands = "exman_plugins.commands."
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in edges.items()
        if m.startswith(commands)
        for t in targets
        if t.startswith(commands) or t.startswith("exman.cli._")
    )
    assert not bad, f"command modules importing another command or a private exman.cli module: {bad}"
    assert any("exman.cli" in edges[m] for m in edges if m.startswith(commands)), "the rule checks nothing"
