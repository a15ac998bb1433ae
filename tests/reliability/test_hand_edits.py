"""Run files edited by hand into something hostile (M7, and a dict-valued argument, M10)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest
from conftest import exman_command

from .tools import env

# 9 aliases of 9: 9**9 (387 million) values from a few hundred bytes.
BOMB = "lr: 0.1\nbomb: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
)
LIMIT = 1 << 30  # 1 GB of address space above what the process had: the bomb needs far more


def _limited():
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT * 3, hard))


def _run(args, timeout=120):
    return subprocess.run(args, capture_output=True, text=True, env=env(), timeout=timeout, preexec_fn=_limited)


def test_alias_bomb_in_a_runs_params_yaml(script):
    script.run()
    script.run()
    run = sorted((script.root / "runs").iterdir())[1]
    (run / "params.yaml").write_text(BOMB)
    for args in (["ls"], ["show", "2"], ["diff", "1", "2"]):
        try:
            proc = _run([*exman_command(), "--root", str(script.root), *args])
        except subprocess.TimeoutExpired:
            pytest.fail(f"exman {args[0]} does not finish on an alias bomb")
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr, (
            args,
            proc.stderr[-2000:],
        )
    proc = _run(
        [
            sys.executable,
            "-c",
            "import sys, warnings; from exman import Index\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    df = Index(sys.argv[1]).info()\n"
            "print(len(df), any('aliases' in str(x.message) for x in w))",
            str(script.root),
        ]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["2", "True"]  # the run stays listed from run.json; the file is named


def test_key_given_twice_in_a_runs_params_yaml(script, exman_cmd):
    """Which lr did run 2 have? Readers name the file instead of silently taking the last."""
    script.run()
    script.run()
    run = sorted((script.root / "runs").iterdir())[1]
    (run / "params.yaml").write_text("lr: 0.1\nepochs: 2\nlr: 0.5\n")
    proc = exman_cmd("--root", script.root, "ls", "--format", "json")
    assert "'lr' is given twice" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    listed = {row["id"]: row for row in json.loads(proc.stdout)}
    assert sorted(listed) == [1, 2] and listed[2].get("lr") != 0.5  # listed from run.json, lr unknown
    assert "Traceback" not in exman_cmd("--root", script.root, "show", "2").stderr


DICT_ARG = """
import json, exman
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--opt", type=json.loads, default={"lr": 0.1})
parser.add_argument("--dims", type=int, nargs="+", default=[1])
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
with args.safe_experiment as run:
    for step in range(2):
        run.log(acc=0.5 + args.seed * 0.01 + step * 0.1)
"""


def test_dict_and_list_valued_arguments_group(script, exman_cmd, tmp_path):
    import warnings

    from exman import Index

    script.path.write_text(DICT_ARG)
    for seed in (0, 1):
        for opt, dims in (('{"lr": 0.1}', "1"), ('{"lr": 0.2, "m": [1, 2]}', "2")):
            script.run("--seed", seed, "--opt", opt, "--dims", dims)
    ix = Index(script.root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = ix.summary("acc")
        assert sorted(out["acc_count"].tolist()) == [2, 2]
        assert len(out) == 2
        pytest.importorskip("matplotlib")
        ix.plot("acc", x="seed", hue="opt")
        ix.plot_metric("acc", by="opt")
    proc = exman_cmd("--root", script.root, "report", "--out", tmp_path / "r.html")
    assert (tmp_path / "r.html").is_file() and "Traceback" not in proc.stderr
