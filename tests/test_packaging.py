"""What we claim about versions is what CI tests.

``.ci/run`` installs the test extras twice: with today's newest releases, and with
``.ci/constraints-oldest.txt``, which must pin every lower bound in pyproject.toml and nothing
else, on the Python that ``requires-python`` names as the oldest.
"""

from __future__ import annotations

import re
import sys

from conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the oldest-dependencies run
    import tomli as tomllib

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
CONSTRAINTS = REPO / ".ci" / "constraints-oldest.txt"
CI = (REPO / ".ci" / "run").read_text()


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _version(text: str) -> tuple:
    """PEP 440 release segment without trailing zeros: 1.5 and 1.5.0 are the same version."""
    parts = [int(p) for p in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _lower_bounds() -> dict:
    """{distribution: lower bound} over the dependencies and every extra; a bound must exist."""
    project = PYPROJECT["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    bounds: dict = {}
    for requirement in requirements:
        spec = requirement.split(";")[0].strip()
        if re.fullmatch(r"exman\[[^\]]*\]", spec):
            continue  # one extra pulling in another
        # >= is the lower bound; an exact pin (==) is its own
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*[>=]=\s*([0-9][0-9A-Za-z.]*)(\s*,.*)?", spec)
        assert match, f"pyproject.toml: {requirement!r} needs a lower bound (>=) that CI can test"
        name, bound = _name(match.group(1)), _version(match.group(2))
        assert bounds.get(name, bound) == bound, f"two lower bounds for {name}: {bounds[name]} and {bound}"
        bounds[name] = bound
    return bounds


def _pins() -> dict:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{CONSTRAINTS.name}: {line!r} is not NAME==VERSION"
            pins[_name(name)] = _version(version.strip())
    return pins


def test_constraints_pin_exactly_the_lower_bounds():
    bounds = _lower_bounds()
    pins = _pins()
    assert pins == bounds


def test_ci_tests_the_python_versions_we_claim():
    oldest = re.search(r"^OLDEST_PYTHON=(\d+\.\d+)$", CI, re.M).group(1)
    newest = re.search(r"^NEWEST_PYTHON=(\d+\.\d+)$", CI, re.M).group(1)
    assert PYPROJECT["project"]["requires-python"] == f">={oldest}"
    classifiers = PYPROJECT["project"]["classifiers"]
    claimed = {c.rsplit(" ", 1)[1] for c in classifiers if re.search(r":: 3\.\d+$", c)}
    assert claimed == {oldest, newest}
    readme = (REPO / "README.md").read_text()
    assert f"Python {oldest}" in readme and f"{newest}" in readme
    # The README's test command is what .ci/run runs in both environments.
    command = 'python -m pip install -e ".[test]" --config-settings editable_mode=compat && python -m pytest'
    assert command in readme and command in CI
