"""Two roots merged by hand (``cp -a A/runs/. B/runs/``): ids stay unique from then on,
and a number that names two runs is refused instead of picking one (lower item)."""

from __future__ import annotations

import json
import subprocess

from conftest import Script


def test_merged_roots_keep_ids_unique_and_unambiguous(tmp_path, exman_cmd):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = Script(tmp_path / "a"), Script(tmp_path / "b")
    for _ in range(5):
        a.run("--name", "from-a")
    for _ in range(3):
        b.run("--name", "from-b")
    subprocess.run(["cp", "-a", f"{a.root / 'runs'}/.", str(b.root / "runs")], check=True)
    ids = sorted(int(p.name[:6]) for p in (b.root / "runs").iterdir())
    assert ids == [1, 1, 2, 2, 3, 3, 4, 5]

    b.run()  # a new run after the merge
    newest = max((b.root / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    assert json.loads((newest / "run.json").read_text())["id"] == 6, "a new run reused a merged id"

    proc = exman_cmd("--root", b.root, "delete", "--all", "--yes", "2", check=False)
    assert proc.returncode == 1 and "names several runs" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(int(p.name[:6]) for p in (b.root / "runs").iterdir()).count(2) == 2  # nothing deleted
    twin = sorted(p.name for p in (b.root / "runs").iterdir() if p.name.startswith("000002-"))[1]
    exman_cmd("--root", b.root, "delete", "--all", "--yes", twin)  # by name: exactly that one
    assert not (b.root / "runs" / twin).exists()
    assert sorted(int(p.name[:6]) for p in (b.root / "runs").iterdir()).count(2) == 1
