"""Files that are not files: FIFOs and a link to /dev/zero inside a root (M8).

A FIFO blocks whoever opens it (reader or writer) until the other end comes;
/dev/zero never ends. Planted at every file exman reads, they must be refused
as "not a regular file" by every reader, in bounded time, with no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import exman_command

from .tools import env

READ_INFO = (
    "import sys, warnings; warnings.simplefilter('ignore'); from exman import Index; "
    "print(len(Index(sys.argv[1]).info(include_failed=True)))"
)


def _exman(*args, cwd=None):
    return subprocess.run(
        [*exman_command(), *map(str, args)], capture_output=True, text=True, env=env(), cwd=cwd, timeout=30
    )


@pytest.fixture
def planted(script):
    for _ in range(5):
        script.run()
    subprocess.run([sys.executable, "-c", READ_INFO, str(script.root)], env=env(), check=True, timeout=60)
    runs = sorted((script.root / "runs").iterdir())
    for number, name in [(1, "run.json"), (1, "metrics.jsonl"), (1, "log.txt"), (2, "params.yaml")]:
        (runs[number] / name).unlink()
        os.mkfifo(runs[number] / name)
    for number, name in [(3, "metrics.jsonl"), (3, "log.txt"), (4, "run.json")]:
        (runs[number] / name).unlink()
        os.symlink("/dev/zero", runs[number] / name)
    caches = [p for p in (script.root / ".exman").iterdir() if p.is_file()]
    assert any(p.name == "last_id" for p in caches) and any(p.suffix == ".pickle" for p in caches)
    for path in caches:
        path.unlink()
        os.mkfifo(path)
    return script


def test_fifos_and_devices_are_refused_not_waited_for(planted):
    root = planted.root
    calls = [
        ("ls", "--sort", "loss"),
        ("doctor",),
        ("diff", "2", "3"),
        ("diff", "4", "5"),
        *[("show", str(i)) for i in range(2, 6)],
    ]
    for args in calls:
        try:
            proc = _exman("--root", root, *args)
        except subprocess.TimeoutExpired:
            pytest.fail(f"exman {' '.join(args)} hangs on a FIFO or /dev/zero")
        assert "Traceback" not in proc.stderr, (args, proc.stderr[-2000:])
        assert proc.returncode in (0, 1), (args, proc.returncode, proc.stderr[-500:])
    try:
        proc = subprocess.run(
            [sys.executable, "-c", READ_INFO, str(root)], capture_output=True, text=True, env=env(), timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail("Index.info() hangs on a FIFO or /dev/zero")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout) >= 3  # the runs whose own record is readable are all there
    try:
        proc = planted.run(check=False, timeout=60)  # a FIFO at .exman/last_id
    except subprocess.TimeoutExpired:
        pytest.fail("a new run hangs on a FIFO at .exman/last_id")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (root / "runs").joinpath(sorted(os.listdir(root / "runs"))[-1], "run.json").is_file()


def test_a_fifo_at_log_txt_does_not_block_the_run(script):
    script.run()
    run = next((script.root / "runs").iterdir())
    # The same run folder cannot be reused, so plant the FIFO where the next run's log goes:
    # a plugin-free way is a run that opens its block after the FIFO appears.
    source = script.path.read_text().replace(
        "with args.safe_experiment as run:",
        "import os\nos.mkfifo(args.root / 'log.txt')\nwith args.safe_experiment as run:",
    )
    script.path.write_text(source)
    try:
        proc = script.run(check=False, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("a FIFO at log.txt blocks the run")
    assert proc.returncode == 0, proc.stderr
    assert "not capturing output" in proc.stderr
    assert run.is_dir()
