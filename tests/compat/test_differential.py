"""Every scenario under the real exman 0.1.9 and under ours: what a user sees must match,
apart from the differences listed in docs/compat.md, and each listed difference must still be seen.

A ``bug`` entry is a known incompatibility, expected for now so the suite stays
green; fixing it makes its entry stale, and the stale entry fails the suite
until it is deleted. ``EXMAN_COMPAT_DUMP=file.json`` writes every difference
seen (the raw material for docs/compat.md).

0.1.9's observations depend only on the scenario, the observer, this harness
and the 0.1.9 venv: they are kept in the compat cache under a hash of those and
replayed (``EXMAN_COMPAT_FRESH=1`` plays them again). Ours are played every time.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from .conftest import tell
from .harness import DOC, OBSERVER, compare, legacy_side, load_entries, ours_side, play, show_value
from .scenarios import SCENARIOS

HARNESS = Path(__file__).with_name("harness.py")
# The first test pays for building the 0.1.9 venv (once) and playing every scenario.
pytestmark = pytest.mark.timeout(1800)
BY_NAME = {s.name: s for s in SCENARIOS}


def _legacy_key(env, scenario) -> str:
    text = "\0".join([env.key, OBSERVER.read_text(), HARNESS.read_text(), scenario.fingerprint()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _selected(session) -> list:
    """The scenarios this session's tests need (all of them for the stale-entry check)."""
    names = set()
    for item in session.items:
        name = getattr(item, "originalname", None)
        if name == "test_every_listed_difference_is_still_seen":
            return list(SCENARIOS)
        if name == "test_scenario_differs_only_as_listed":
            names.add(item.callspec.params["name"])
    return [s for s in SCENARIOS if s.name in names]


@pytest.fixture(scope="session")
def observations(request, legacy, compat_cache, tmp_path_factory):
    """``{scenario: {"0.1.9": obs or exception, "ours": obs or exception}}``, played in parallel."""
    old, ours = legacy_side(legacy), ours_side()
    base = tmp_path_factory.mktemp("compat")
    kept = compat_cache / "observations"
    kept.mkdir(exist_ok=True)
    fresh = os.environ.get("EXMAN_COMPAT_FRESH", "").strip() in ("1", "yes", "true")

    def play_legacy(scenario):
        path = kept / f"{scenario.name}-{_legacy_key(legacy, scenario)}.json"
        if path.exists() and not fresh:
            return json.loads(path.read_text())
        seen = play(scenario, old, old, base / scenario.name / "0.1.9")
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(seen))
        os.replace(tmp, path)
        for stale in kept.glob(f"{scenario.name}-*.json"):
            if stale != path and re.fullmatch(re.escape(scenario.name) + r"-[0-9a-f]{16}\.json", stale.name):
                stale.unlink(missing_ok=True)
        return seen

    def play_ours(scenario):
        return play(scenario, ours, old, base / scenario.name / "ours")

    wanted = _selected(request.session)
    results: dict = {s.name: {} for s in wanted}
    fresh_legacy = sum(fresh or not (kept / f"{s.name}-{_legacy_key(legacy, s)}.json").exists() for s in wanted)
    tell(request.config, f"tests/compat: playing {len(wanted)} scenario(s) with this exman, {fresh_legacy} with 0.1.9")
    with concurrent.futures.ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) + 1) as pool:
        futures = {}
        for scenario in wanted:
            futures[pool.submit(play_legacy, scenario)] = (scenario.name, "0.1.9")
            futures[pool.submit(play_ours, scenario)] = (scenario.name, "ours")
        for future in concurrent.futures.as_completed(futures):
            name, side = futures[future]
            try:
                results[name][side] = future.result()
            except Exception as exc:  # reported by that scenario's test
                results[name][side] = exc
    return results


def differences(observations, name):
    seen = observations[name]
    for side in ("0.1.9", "ours"):
        if isinstance(seen[side], Exception):
            raise seen[side]
    return compare(seen["0.1.9"], seen["ours"])


@pytest.fixture(scope="session")
def entries():
    return load_entries()


def test_listed_differences_are_well_formed(entries):
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids)), "duplicate ids in docs/compat.md"
    for entry in entries:
        assert entry.kind in ("intended", "bug"), f"{entry.id}: kind must be intended or bug"
        for name in entry.scenarios:
            assert name == "*" or name in BY_NAME, f"{entry.id}: no scenario {name!r}"
        assert entry.where and entry.what.strip() and entry.reason.strip(), f"{entry.id}: where, what and reason"
        if entry.kind == "bug":
            assert entry.extra.get("cause") and entry.extra.get("fix"), f"{entry.id}: a bug names its cause and fix"


@pytest.mark.parametrize("name", list(BY_NAME))
def test_scenario_differs_only_as_listed(observations, entries, name):
    found = differences(observations, name)
    unlisted = [d for d in found if not any(e.covers(name, d[0]) for e in entries)]
    assert not unlisted, f"{len(unlisted)} difference(s) from 0.1.9 not listed in {DOC.name}:\n" + "\n".join(
        f"  {path}\n      0.1.9: {show_value(a)}\n      ours:  {show_value(b)}" for path, a, b in unlisted
    )


def test_every_listed_difference_is_still_seen(observations, entries):
    found = {name: differences(observations, name) for name in BY_NAME}
    dump = os.environ.get("EXMAN_COMPAT_DUMP")
    if dump:
        Path(dump).write_text(
            json.dumps(
                {name: [{"path": p, "0.1.9": a, "ours": b} for p, a, b in diffs] for name, diffs in found.items()},
                indent=1,
            )
        )
    stale = [
        e for e in entries if not any(e.covers(name, path) for name, diffs in found.items() for path, _, _ in diffs)
    ]
    assert not stale, "listed in docs/compat.md but no longer seen (fixed? then delete the entry):\n" + "\n".join(
        f"  {e.id} ({e.kind}): {e.what.strip()}" for e in stale
    )
