"""Adaptive sweeps: real sweeps of a script whose interest is drawn from known distributions per cell."""

from __future__ import annotations

import math
import os
import shlex
import sys

import pytest
import yaml
from conftest import Script

pytest.importorskip("scipy")
try:
    import statsmodels  # noqa: F401
except ImportError:
    statsmodels = None
# Racing corrects its tests with statsmodels (the exman[stats] extra).
needs_statsmodels = pytest.mark.skipif(statsmodels is None, reason="racing needs statsmodels")

# Each cell's interest is normal(mean, std), drawn from a generator seeded by (cell, seed): a seed
# always gives the same value, and cells do not share their noise.
SYNTH = """
import pathlib, random, time
import exman

CELLS = {CELLS!r}
parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--arm", default="a")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
with args.safe_experiment as run:
    if args.seed >= 3 and pathlib.Path("broken").exists():
        raise RuntimeError("broken on purpose")
    if args.seed >= 3 and pathlib.Path("slow").exists():
        time.sleep(30)  # the second round is still running when the test stops the sweep
    mean, std = CELLS[args.arm]
    run.log(acc=random.Random(f"{{args.arm}}-{{args.seed}}").gauss(mean, std))
"""

# tight: done at the minimum; medium: grows until the target; wide: grows to the maximum.
ADAPT = {"tight": (0.90, 0.002), "medium": (0.80, 0.012), "wide": (0.70, 0.2)}
ADAPT_ARGS = ["--repeat", "3", "--max-repeat", "8", "--until", "ci(acc) <= 0.03"]
# far is raced out after the minimum; best must stay.
RACE = {"best": (0.90, 0.02), "close": (0.88, 0.02), "far": (0.50, 0.02)}
RACE_ARGS = ["--repeat", "3", "--max-repeat", "6", "--max-rounds", "3", "--race", "max(acc)"]


def synth(folder, cells) -> Script:
    folder.mkdir(exist_ok=True)
    return Script(folder, SYNTH.format(CELLS=cells))


def run_sweep(exman_cmd, script, cells, args, check=True):
    return exman_cmd(
        "--root",
        script.root,
        "sweep",
        "-p",
        "arm=" + ",".join(cells),
        "-j",
        "2",
        *args,
        "--",
        sys.executable,
        script.path,
        check=check,
        cwd=script.folder,
    )


def spec_of(root):
    (path,) = (root / "sweeps").glob("*.yaml")
    return yaml.safe_load(path.read_text())


def final(spec) -> dict:
    """Grid cell name -> its last decision."""
    return {cell["arm"]: d for cell, d in zip(_grid(spec), spec["adaptive"]["looks"][-1]["cells"])}


def _grid(spec):
    seen = []
    for cell in spec["cells"]:
        params = {k: v for k, v in cell.items() if k != "seed"}
        if params not in seen:
            seen.append(params)
    return seen


@pytest.fixture(scope="module")
def adaptive_sweep(tmp_path_factory, exman_cmd_module):
    script = synth(tmp_path_factory.mktemp("adapt"), ADAPT)
    proc = run_sweep(exman_cmd_module, script, ADAPT, ADAPT_ARGS)
    return script, proc


@pytest.fixture(scope="module")
def exman_cmd_module():
    import subprocess
    from pathlib import Path

    from conftest import env_for_subprocess

    script = Path(sys.executable).parent / "exman"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "exman"]

    def run(*args, check=True, cwd=None):
        proc = subprocess.run(
            [*command, *map(str, args)], capture_output=True, text=True, env=env_for_subprocess(), cwd=cwd
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"exman {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


def test_cells_stop_at_the_minimum_grow_to_the_target_or_to_the_maximum(adaptive_sweep):
    script, proc = adaptive_sweep
    spec = spec_of(script.root)
    last = final(spec)
    assert last["tight"]["state"] == "done" and last["tight"]["n"] == 3
    assert last["medium"]["state"] == "done" and 3 < last["medium"]["n"] < 8
    assert last["medium"]["width"] <= 0.03
    assert last["wide"]["state"] == "max" and last["wide"]["n"] == 8
    # Every seed is a new value of --seed, and each ran once.
    seeds = {}
    for cell in spec["cells"]:
        seeds.setdefault(cell["arm"], []).append(cell["seed"])
    assert seeds == {"tight": [0, 1, 2], "medium": list(range(last["medium"]["n"])), "wide": list(range(8))}
    assert "done: arm=tight  n=3" in proc.stdout and "max: arm=wide  n=8" in proc.stdout


def test_the_decision_uses_the_interval_of_index_summary(adaptive_sweep):
    import exman
    from exman.sweeps import decisions

    script, _ = adaptive_sweep
    spec = spec_of(script.root)
    table = decisions(script.root, spec["id"]).set_index("arm")
    reference = exman.Index(script.root).summary("acc", by="arm").set_index("arm")
    for cell in ADAPT:
        assert table.loc[cell, "ci_low"] == pytest.approx(reference.loc[cell, "acc_ci_low"], rel=1e-12)
        assert table.loc[cell, "ci_high"] == pytest.approx(reference.loc[cell, "acc_ci_high"], rel=1e-12)
        assert table.loc[cell, "replicates"] == reference.loc[cell, "acc_count"]
    # The saved width at the last look is the width of that interval.
    for cell, d in final(spec).items():
        assert d["width"] == pytest.approx(table.loc[cell, "ci_high"] - table.loc[cell, "ci_low"], rel=1e-5)


def test_status_shows_each_grid_cell(adaptive_sweep, exman_cmd_module):
    script, _ = adaptive_sweep
    spec = spec_of(script.root)
    out = exman_cmd_module("--root", script.root, "sweep", "--status", spec["id"]).stdout
    lines = {line.split()[0]: line.split() for line in out.splitlines()[-3:]}
    assert lines["tight"][1:3] == ["3", "3"] and lines["tight"][-1] == "done"
    assert lines["wide"][1:3] == ["8", "8"] and lines["wide"][-1] == "max"


def test_a_stopped_and_resumed_sweep_reaches_the_same_decisions(adaptive_sweep, exman_cmd_module, tmp_path):
    reference, _ = adaptive_sweep
    script = synth(tmp_path / "resumed", ADAPT)
    (script.folder / "broken").write_text("")  # the second round fails: the sweep stops after its first look
    proc = run_sweep(exman_cmd_module, script, ADAPT, ADAPT_ARGS, check=False)
    assert proc.returncode == 1
    spec = spec_of(script.root)
    assert len(spec["adaptive"]["looks"]) == 1
    assert f"sweep --resume {spec['id']}" in proc.stdout
    (script.folder / "broken").unlink()
    exman_cmd_module("--root", script.root, "sweep", "--resume", spec["id"])
    resumed, uninterrupted = spec_of(script.root), spec_of(reference.root)
    assert resumed["cells"] == uninterrupted["cells"]
    assert resumed["adaptive"]["looks"] == uninterrupted["adaptive"]["looks"]
    # Resuming a finished sweep takes no new look.
    again = exman_cmd_module("--root", script.root, "sweep", "--resume", spec["id"])
    assert spec_of(script.root)["adaptive"]["looks"] == uninterrupted["adaptive"]["looks"]
    assert "nothing to do" in again.stderr


@needs_statsmodels
def test_a_sweep_stopped_by_a_signal_mid_round_resumes_to_the_same_decisions(adaptive_sweep, tmp_path):
    import signal
    import subprocess
    import time
    from pathlib import Path

    from conftest import env_for_subprocess

    reference, _ = adaptive_sweep
    script = synth(tmp_path / "stopped", ADAPT)
    (script.folder / "slow").write_text("")
    exe = Path(sys.executable).parent / "exman"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "exman"]
    proc = subprocess.Popen(
        [
            *command,
            "--root",
            str(script.root),
            "sweep",
            "-p",
            "arm=" + ",".join(ADAPT),
            "-j",
            "2",
            *ADAPT_ARGS,
            "--",
            sys.executable,
            str(script.path),
        ],
        cwd=script.folder,
        env=env_for_subprocess(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    # Stop once the first look is saved and the second round has started.
    while time.monotonic() < deadline:
        specs = list((script.root / "sweeps").glob("*.yaml")) if (script.root / "sweeps").exists() else []
        if (
            specs
            and "looks" in specs[0].read_text()
            and list((script.root / "runs").glob("*"))
            and len(list((script.root / "sweeps").glob("*/cell-*.log"))) > 9
        ):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, err
    spec = spec_of(script.root)
    assert len(spec["adaptive"]["looks"]) == 1
    (script.folder / "slow").unlink()
    subprocess.run(
        [*command, "--root", str(script.root), "sweep", "--resume", spec["id"]],
        cwd=script.folder,
        env=env_for_subprocess(),
        check=True,
        capture_output=True,
    )
    resumed, uninterrupted = spec_of(script.root), spec_of(reference.root)
    assert resumed["cells"] == uninterrupted["cells"]
    assert resumed["adaptive"]["looks"] == uninterrupted["adaptive"]["looks"]


@needs_statsmodels
def test_a_far_worse_cell_is_raced_out_after_the_minimum(exman_cmd_module, tmp_path):
    import exman

    script = synth(tmp_path / "race", RACE)
    proc = run_sweep(exman_cmd_module, script, RACE, RACE_ARGS)
    spec = spec_of(script.root)
    first = dict(zip([c["arm"] for c in _grid(spec)], spec["adaptive"]["looks"][0]["cells"]))
    assert first["far"]["state"] == "raced" and first["far"]["n"] == 3
    last = final(spec)
    assert last["best"]["state"] == "max" and last["best"]["n"] == 6
    assert last["far"]["state"] == "raced" and last["far"]["n"] == 3
    assert "raced: arm=far  n=3" in proc.stdout and "worse than arm=best" in proc.stdout
    # Its test: paired t on the shared seeds 0..2 against the best cell, Holm over the two rivals.
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    df = exman.Index(script.root).info()
    df = df[df["seed"] < 3].sort_values("seed")
    acc = {c: df.loc[df["arm"] == c, "acc"].to_numpy() for c in RACE}
    p = [stats.ttest_rel(acc[c], acc["best"]).pvalue for c in ("close", "far")]
    assert first["far"]["p_adj"] == pytest.approx(multipletests(p, method="holm")[1][1], rel=1e-5)


@needs_statsmodels
def test_the_true_best_cell_is_never_raced_out():
    """50 simulated sweeps through the same decision code; the rate is reported by benchmarks/bench_adaptive.py."""
    import numpy as np

    from exman.sweeps.adaptive import settings, simulate

    rule = settings(3, until="ci(acc) <= 0.02", max_repeat=10, race="max(acc)")
    means, stds = [0.90, 0.88, 0.85, 0.60], [0.02, 0.02, 0.02, 0.02]
    trials = int(os.environ.get("EXMAN_ADAPTIVE_TRIALS", "50"))
    states = [simulate(means, stds, rule, np.random.default_rng(trial))[0] for trial in range(trials)]
    assert sum(s[0]["state"] == "raced" for s in states) == 0
    # The race has power too: the far worse cell is dropped in most sweeps (by the first look in the
    # others, with only 3 paired replicates, the corrected test may not reach the bar).
    assert sum(s[3]["state"] == "raced" for s in states) >= 0.8 * trials


@needs_statsmodels
@pytest.mark.skipif(not os.environ.get("EXMAN_SLOW"), reason="EXMAN_SLOW=1: 400 simulated sweeps")
def test_a_cell_as_good_as_the_best_is_raced_out_at_most_alpha_of_the_time():
    """The worst case for the race: two equally good cells. The error rate stays under alpha."""
    import numpy as np

    from exman.sweeps.adaptive import settings, simulate

    rule = settings(3, max_repeat=10, race="max(acc)", alpha=0.05)
    wrong = sum(
        simulate([0.9, 0.9, 0.5], [0.02, 0.02, 0.02], rule, np.random.default_rng(t))[0][1]["state"] == "raced"
        for t in range(400)
    )
    assert wrong / 400 <= 0.05


def test_shuffled_order_is_seeded_and_keeps_every_cell(exman_cmd_module, tmp_path):
    script = synth(tmp_path / "shuffle", ADAPT)
    base = ["sweep", "-p", "arm=tight,medium,wide", "--repeat", "3", "--dry-run"]
    plain = exman_cmd_module(*base, "--", "python", "x.py").stdout.splitlines()
    once = exman_cmd_module(*base, "--shuffle", "7", "--", "python", "x.py").stdout.splitlines()
    twice = exman_cmd_module(*base, "--shuffle", "7", "--", "python", "x.py").stdout.splitlines()
    assert once == twice and once != plain and sorted(once) == sorted(plain)
    exman_cmd_module(
        "--root",
        script.root,
        "sweep",
        "-p",
        "arm=tight,medium,wide",
        "--repeat",
        "3",
        "-j",
        "1",
        "--shuffle",
        "7",
        "-q",
        "--",
        sys.executable,
        script.path,
        cwd=script.folder,
    )
    import exman

    df = exman.Index(script.root).info().sort_values("id")
    ran = [f"--arm {c} --seed {s}" for c, s in zip(df["arm"], df["seed"])]
    assert ran == [" ".join(shlex.split(line)[-4:]) for line in once]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--repeat", "3", "--until", "acc < 1"], "expected 'ci(INTEREST) <= WIDTH'"),
        (["--repeat", "3", "--until", "ci(acc) <= 0.1"], "--max-repeat"),
        (["--until", "ci(acc) <= 0.1", "--max-repeat", "5"], "--repeat N (N >= 2)"),
        (["--repeat", "3", "--max-repeat", "5", "--race", "best(acc)"], "'max(INTEREST)' or 'min(INTEREST)'"),
        (["--repeat", "3", "--max-repeat", "5", "--race", "max(acc)", "--until", "ci(loss) <= 1"], "one interest"),
        (["--repeat", "3", "--max-repeat", "5"], "--max-repeat needs --until or --race"),
    ],
)
def test_bad_adaptive_options_are_one_line(exman_cmd_module, tmp_path, args, message):
    proc = exman_cmd_module(
        "--root", tmp_path / "r", "sweep", "-p", "cell=a", *args, "--", "python", "x.py", check=False
    )
    assert proc.returncode != 0 and message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@needs_statsmodels
def test_python_api_takes_the_same_options(tmp_path):
    import exman

    script = synth(tmp_path / "api", RACE)
    result = exman.sweep(
        [sys.executable, str(script.path)],
        {"arm": list(RACE)},
        repeat=3,
        max_repeat=4,
        race="max(acc)",
        max_rounds=2,
        root=script.root,
        cwd=script.folder,
        quiet=True,
        jobs=2,
    )
    assert result.ok and any("raced: arm=far" in line for line in result.decisions)
    states = dict(zip(RACE, (d["state"] for d in spec_of(script.root)["adaptive"]["looks"][-1]["cells"])))
    assert states == {"best": "max", "close": "max", "far": "raced"}
    assert math.isclose(spec_of(script.root)["adaptive"]["alpha"], 0.05)


@needs_statsmodels
def test_plan_gives_the_replicates_of_statsmodels_power_analysis(adaptive_sweep, exman_cmd_module):
    import numpy as np
    from statsmodels.stats.power import TTestIndPower

    import exman

    script, _ = adaptive_sweep
    power = TTestIndPower()
    out = exman_cmd_module("--root", script.root, "plan", "acc", "--diff", "0.01", "--std", "0.02").stdout
    expected = math.ceil(power.solve_power(effect_size=0.5, alpha=0.05, power=0.8))
    assert f"needs {expected} replicates" in out
    # From the recorded runs: the seed-to-seed spread pooled over the cells.
    df = exman.Index(script.root).info()
    var, n = df.groupby("arm")["acc"].var(ddof=1), df.groupby("arm")["acc"].count()
    std = math.sqrt(float(((n - 1) * var).sum() / (n - 1).sum()))
    out = exman_cmd_module("--root", script.root, "plan", "acc", "--diff", "0.1", "--power", "0.9").stdout
    expected = math.ceil(power.solve_power(effect_size=0.1 / std, alpha=0.05, power=0.9))
    assert f"pooled std {std:.4g} over 3 cell(s)" in out and f"needs {expected} replicates" in out
    assert power.power(0.1 / std, expected, 0.05) >= 0.9 > power.power(0.1 / std, expected - 1, 0.05)
    bad = exman_cmd_module("--root", script.root, "plan", "nope", "--diff", "0.1", check=False)
    assert bad.returncode == 1 and "no column(s) nope" in bad.stderr and "Traceback" not in bad.stderr
    assert np.isfinite(std)


@needs_statsmodels
@pytest.mark.skipif(not os.environ.get("EXMAN_SLOW"), reason="EXMAN_SLOW=1: dask and submitit clusters")
@pytest.mark.parametrize(
    "launcher", [["--launcher", "dask"], ["--launcher", "submitit", "-o", "cluster=local"]], ids=["dask", "submitit"]
)
def test_every_launcher_runs_the_same_rounds(exman_cmd_module, tmp_path, launcher):
    pytest.importorskip("distributed" if "dask" in launcher else "submitit")
    args = ["--repeat", "3", "--max-repeat", "4", "--max-rounds", "2", "--race", "max(acc)"]
    local = synth(tmp_path / "local", RACE)
    run_sweep(exman_cmd_module, local, RACE, args)
    other = synth(tmp_path / "other", RACE)
    run_sweep(exman_cmd_module, other, RACE, [*args, *launcher])
    assert spec_of(other.root)["adaptive"]["looks"] == spec_of(local.root)["adaptive"]["looks"]
    assert spec_of(other.root)["cells"] == spec_of(local.root)["cells"]
