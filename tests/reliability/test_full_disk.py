"""A full disk, for real: a size-limited tmpfs (M3, and a disk that fills as a run ends).

Mounting needs root (or CAP_SYS_ADMIN); elsewhere these tests skip with the reason.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import exman_command

from .tools import python


@pytest.fixture
def disk(tmp_path):
    """A 1 MB tmpfs mounted at ``tmp_path/disk``."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {proc.stderr.strip() or proc.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


FILLS = """
import os, sys
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
args = parser.parse_args()
ballast = os.path.join(os.path.dirname(__file__), "ballast")
with args.safe_experiment as run:
    logged = 0
    try:
        while True:
            run.log(row=logged, text="x" * 900)
            logged += 1
    except OSError as exc:
        print("full after", logged, exc.errno, flush=True)
    os.unlink(ballast)  # space comes back
    run.log(row=logged, text="after")
    print("logged", logged + 1, flush=True)
"""


def test_short_write_on_a_full_disk_never_cuts_a_row(disk):
    (disk / "main.py").write_text(FILLS)
    (disk / "ballast").write_bytes(b"\0" * (96 << 10))
    proc = python([disk / "main.py"], cwd=disk, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    logged = int(out.split("logged ")[1].split()[0])
    run = next((disk / "exman" / "runs").iterdir())
    lines = (run / "metrics.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b""
    rows = [json.loads(line) for line in lines[:-1]]  # a cut row would not parse
    assert [r["row"] for r in rows] == list(range(logged))
    assert rows[-1]["text"] == "after"
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


FAILS_ON_FULL = """
import os
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
args = parser.parse_args()
with args.safe_experiment as run:
    run.log(loss=1.0)
    with open(os.path.join(os.path.dirname(__file__), "checkpoint"), "wb") as fh:
        try:
            while True:
                fh.write(b"\\0" * 65536)
                fh.flush()
        except OSError:
            pass  # the disk is full now
    raise ValueError("the script's own error")
"""


def test_a_disk_full_at_the_end_keeps_the_scripts_exception(disk):
    (disk / "main.py").write_text(FAILS_ON_FULL)
    proc = python([disk / "main.py"], cwd=disk, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert lines[-1] == "ValueError: the script's own error", err[-3000:]
    assert err.count("Traceback") == 1 and "exman: could not record the end of run 1" in err


def test_sweep_on_a_full_or_read_only_root_is_one_line(disk, tmp_path):
    import os

    from .test_bad_input import _can_drop_privileges, _drop_write_override
    from .tools import env

    root = disk / "exman"

    def sweep(**options):
        return subprocess.run(
            [*exman_command(), "--root", str(root), "sweep", "-p", "lr=0.1,0.2", "--", "true"],
            capture_output=True,
            text=True,
            env=env(),
            timeout=120,
            **options,
        )

    for sub in ("runs", "index"):
        (root / sub).mkdir(parents=True)
    fd = os.open(disk / "ballast", os.O_WRONLY | os.O_CREAT)  # fill the disk to the last byte
    for size in (65536, 4096, 1):
        try:
            while True:
                os.write(fd, b"\0" * size)
        except OSError:
            pass
    os.close(fd)
    proc = sweep()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: No space left on device")
    if not _can_drop_privileges():
        pytest.skip("running as root without a way to drop CAP_DAC_OVERRIDE")
    (disk / "ballast").unlink()
    for folder, _dirs, _files in os.walk(root):
        os.chmod(folder, 0o555)  # a read-only root (modes bind once CAP_DAC_OVERRIDE is dropped)
    proc = sweep(preexec_fn=_drop_write_override)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: Permission denied")
