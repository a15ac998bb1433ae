"""The README's demo runs end to end: a sweep, a failure set aside, the table, a summary, a plot;
then ``exman ls`` of its root fits an 80-column terminal."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, env_for_subprocess, on_terminal


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    for name in ("demo.py", "train.py"):
        shutil.copy(REPO / "examples" / name, folder / name)
    proc = subprocess.run(
        [sys.executable, str(folder / "demo.py")], capture_output=True, text=True, env=env_for_subprocess(), timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    return folder, proc.stdout


def test_demo_records_the_grid_and_prints_the_table(demo):
    folder, out = demo
    assert "36 runs recorded" in out and "failed as expected: 1 run" in out
    assert "hedges_g" in out and "partial_eta_sq" in out and "C(optimizer):np.log10(lr)" in out
    assert "acc_ci_low" in out and (folder / "exman" / "demo-plot.png").stat().st_size > 10_000
    root = folder / "exman"
    assert len(list((root / "runs").iterdir())) == 36 and len(list((root / "fails").iterdir())) == 1


@pytest.mark.parametrize("columns", [80, 160])
def test_demo_ls_fits_the_terminal(demo, exman_cmd, columns):
    root = demo[0] / "exman"
    p = exman_cmd("--root", root, "ls", env={"COLUMNS": str(columns)})
    lines = p.stdout.splitlines()
    assert p.stderr == "" and len(lines) == 37 and max(map(len, lines)) <= 80  # nothing left out, even at 80
    assert lines[0].split() == ["id", "status", "start", "duration", "lr", "optimizer", "seed", "loss", "acc"]
    # The rich table on a real terminal of that size: no line (the rule under the header included) wraps.
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", on_terminal(["--root", root, "ls"], columns=columns))
    drawn = [line for line in drawn.replace("\r", "").splitlines() if line.strip()]
    assert len(drawn) == 38 and set(drawn[1]) == {"─"}, drawn[:3]
    assert max(map(len, drawn)) <= 80 and drawn[0].split() == lines[0].split()


def _tokens(line):
    """A printed table row as numbers (approximate: the last digit may differ by platform) and words."""
    out = []
    for token in line.split():
        try:
            out.append(pytest.approx(float(token), abs=2e-4, rel=1e-3, nan_ok=True))
        except ValueError:
            out.append(token)
    return out


def test_readme_tables_are_what_the_demo_gives(demo):
    """The README's `>>>` examples (compare, fit) print what they say on the demo's runs."""
    import warnings

    import exman

    index = exman.Index(demo[0] / "exman")
    readme = (REPO / "README.md").read_text()
    examples = re.findall(r"^>>> (.+)\n((?:(?!>>>|```).+\n)+)", readme, re.M)
    assert len(examples) == 2
    for code, expected in examples:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the failed run left out: said on stderr, not part of the table
            got = str(eval(code, {"index": index}))
        assert [_tokens(line) for line in got.splitlines()] == [_tokens(line) for line in expected.splitlines()], got


def _session(text):
    """{command: printed lines} of the first console block of docs/cli.md."""
    block = re.search(r"```console\n(.*?)```", text, re.S).group(1)
    commands, current = {}, None
    for line in block.splitlines():
        if line.startswith("$ "):
            current = commands.setdefault(line[2:].split("  #")[0].strip(), [])
        elif current is not None and line.strip():
            current.append(line)
    return commands


def test_cli_docs_session_lists_the_demos_runs(demo, exman_cmd):
    """Each `exman ls` of docs/cli.md's session printed in full (no `...`) lists the demo's runs;
    ids and times are left out: two runs at a time take their numbers in either order."""
    import shlex

    checked = 0
    for command, printed in _session((REPO / "docs" / "cli.md").read_text()).items():
        args = shlex.split(command)[1:]
        if args[0] != "ls" or "--mark" in args or any(line.strip() == "..." for line in printed):
            continue
        p = exman_cmd(*args, check=False, cwd=demo[0], env={"COLUMNS": "80"})
        if printed[0].startswith("Error:"):
            assert p.returncode == 1 and p.stderr.strip() == printed[0], command
            continue
        lines = p.stdout.splitlines()
        assert p.returncode == 0 and lines[0].split() == printed[0].split(), command
        keep = [i for i, c in enumerate(printed[0].split()) if c not in ("id", "start", "duration")]

        def rows(table, keep=keep):
            fields = [re.sub(r"\d\d-\d\d \d\d:\d\d", "<time>", row).split() for row in table[1:]]
            return sorted(" ".join(f[i] for i in keep) for f in fields)

        assert rows(lines) == rows(printed), command
        checked += 1
    assert checked >= 2


def test_notebook_opened_from_the_demos_folder(demo):
    """examples/analysis.ipynb as a user meets it: a real kernel in the demo's folder, no EXMAN_ROOT."""
    nbformat = pytest.importorskip("nbformat", reason="the notebook test needs nbformat (pip install -e '.[test]')")
    nbclient = pytest.importorskip("nbclient", reason="the notebook test needs nbclient (pip install -e '.[test]')")
    pytest.importorskip("ipykernel", reason="the notebook test needs ipykernel (pip install -e '.[test]')")
    folder = demo[0]
    nb = nbformat.read(REPO / "examples" / "analysis.ipynb", as_version=4)
    env = env_for_subprocess()
    env.pop("EXMAN_ROOT", None)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute(env=env)  # raises CellExecutionError on any error
    results = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "execute_result"]
    texts = [o.data["text/plain"] for o in results]
    assert len(results) == 6 and sum("image/png" in o.data for o in results) == 2
    runs, summary, compare = texts[0], texts[1], texts[4]
    assert len(runs.splitlines()) == 1 + 37 and "failed" in runs  # 36 runs and the diverged one
    assert re.search(r"\n12\s+100\.0+\s+sgd\s+0\s+0\s+1\s+True", summary)  # its cell: no run, 1 excluded
    assert len(compare.splitlines()) >= 7 and compare.count("paired t") == 6
