"""Adaptive sweeps: add seeds where the interval is still wide, race away clearly worse cells.

An adaptive sweep runs in rounds. The first launches ``--repeat`` seeds of every
grid cell; after each round, ``look`` reads the runs from disk and decides, per
cell (the params without the repeat key): ``done`` (its CI is as narrow as the
target), ``raced`` (significantly worse than the best cell), ``max`` (it has
the maximum number of seeds), ``rounds`` (no round left) or ``more`` (new seeds
for the next round). Decisions are saved in the spec (``rounds``) and are
final, so ``--resume`` reaches the same ones. Each round is an ordinary launch,
so every launcher works. ``decide`` is the pure rule; tests and benchmarks call
it directly to simulate many sweeps. pandas, scipy and statsmodels load inside
functions only.
"""

from __future__ import annotations

import json
import math
import re

from exman.errors import SweepError

FINAL = ("done", "raced", "max", "rounds")
_UNTIL = re.compile(r"^\s*ci\(\s*([A-Za-z_][\w.-]*)\s*\)\s*<=?\s*([0-9.eE+-]+)\s*$")
_RACE = re.compile(r"^\s*(max|min)\(\s*([A-Za-z_][\w.-]*)\s*\)\s*$")


def scipy_stats():
    from exman.analysis.summaries import scipy_stats as stats

    try:
        return stats()
    except ImportError as exc:
        raise SweepError(str(exc)) from None


# ---------------------------------------------------------------------------
# the settings, as saved in the spec
# ---------------------------------------------------------------------------


def parse_until(text: str) -> tuple[str, float]:
    """``"ci(acc) <= 0.01"`` -> ("acc", 0.01): stop a cell once its CI (high - low) is that narrow."""
    m = _UNTIL.match(str(text))
    if not m:
        raise SweepError(f"--until {text!r}: expected 'ci(INTEREST) <= WIDTH', e.g. 'ci(acc) <= 0.01'")
    try:
        width = float(m.group(2))
    except ValueError:
        raise SweepError(f"--until {text!r}: {m.group(2)!r} is not a number") from None
    if not width > 0:
        raise SweepError(f"--until {text!r}: the width must be positive")
    return m.group(1), width


def parse_race(text: str) -> tuple[str, str]:
    """``"max(acc)"`` -> ("max", "acc"): the direction that is better, and the interest."""
    m = _RACE.match(str(text))
    if not m:
        raise SweepError(f"--race {text!r}: expected 'max(INTEREST)' or 'min(INTEREST)', e.g. 'max(acc)'")
    return m.group(1), m.group(2)


def settings(repeat, until=None, max_repeat=None, race=None, alpha=0.05, max_rounds=4, level=0.95) -> dict | None:
    """The ``adaptive`` entry of a spec, checked; None when neither ``until`` nor ``race`` is given."""
    if until is None and race is None:
        if max_repeat is not None:
            raise SweepError("--max-repeat needs --until or --race")
        return None
    count, key = _repeat(repeat)
    if count < 2:
        raise SweepError("--until and --race need --repeat N (N >= 2): the seeds every cell starts with")
    interest = target = direction = None
    if until is not None:
        interest, target = parse_until(until)
    if race is not None:
        direction, raced = parse_race(race)
        if interest is not None and raced != interest:
            raise SweepError(f"--until names {interest!r} but --race names {raced!r}: one interest per sweep")
        interest = raced
    if max_repeat is None:
        raise SweepError("--until and --race need --max-repeat N: the most seeds a cell may get")
    if not isinstance(max_repeat, int) or isinstance(max_repeat, bool) or max_repeat < count:
        raise SweepError(f"--max-repeat must be an integer >= --repeat ({count}), got {max_repeat!r}")
    if not isinstance(max_rounds, int) or isinstance(max_rounds, bool) or max_rounds < 1:
        raise SweepError(f"--max-rounds must be a positive integer, got {max_rounds!r}")
    if direction is not None and max_rounds < 2:
        raise SweepError("--race needs --max-rounds 2 or more: a race drops cells between rounds")
    if not 0 < float(alpha) < 1:
        raise SweepError(f"--alpha must be between 0 and 1, got {alpha!r}")
    return {
        "interest": interest,
        "key": key,
        "min": count,
        "max": int(max_repeat),
        "target": target,
        "race": direction,
        "alpha": float(alpha),
        "rounds": int(max_rounds),
        "level": float(level),
    }


def _repeat(repeat) -> tuple[int, str]:
    if isinstance(repeat, dict):
        return int(repeat.get("count") or 0), repeat.get("key", "seed")
    return int(repeat or 0), "seed"


# ---------------------------------------------------------------------------
# the rule
# ---------------------------------------------------------------------------


def decide(values: list, seeds: list, previous: list, rule: dict, look: int) -> list[dict]:
    """One look: a decision per cell.

    ``values[g]`` maps seed -> interest value for the completed runs of cell
    ``g``; ``seeds[g]`` counts the seeds it has been given; ``previous[g]`` is
    its last state (a final one is kept); ``look`` counts from 1. Returns per
    cell ``state``, ``n`` (replicates), ``mean``, ``ci_low``, ``ci_high``,
    ``width``, ``add`` (seeds for the next round), and for a raced cell ``vs``
    (the best cell), ``p`` and ``p_adj``.
    """
    table = _summaries(values, rule)
    out = []
    for g, row in enumerate(table):
        state = previous[g] if previous[g] in FINAL else "more"
        if state == "more":
            if rule.get("target") is not None and row["width"] <= rule["target"]:
                state = "done"
            elif seeds[g] >= rule["max"]:
                state = "max"
        out.append(dict(row, state=state, add=0))
    left = rule["rounds"] - look
    if rule.get("race") and left > 0:
        # Only a look that can still launch runs races: the last one would save nothing.
        _race(values, out, rule)
    for g, row in enumerate(out):
        if row["state"] != "more":
            continue
        if left <= 0:
            row["state"] = "rounds"
            continue
        row["add"] = _more(row, seeds[g], rule, left)
    return out


def _frame(values: list, rule: dict):
    """The cells' replicates as an ``Index.info()``-like table: ``__cell``, the repeat key, the interest, status."""
    import pandas as pd

    rows = [(g, seed, float(v)) for g, cell in enumerate(values) for seed, v in sorted(cell.items())]
    df = pd.DataFrame(rows, columns=["__cell", rule["key"], rule["interest"]])
    df["__cell"] = df["__cell"].astype("int64")
    df["status"] = "completed"
    df.attrs["params"] = ["__cell", rule["key"]]
    return df


def _summaries(values: list, rule: dict) -> list[dict]:
    """n, mean and CI per cell: ``exman.analysis.summaries``'s replicate rule and interval."""
    from exman.analysis.summaries import summary

    name = rule["interest"]
    by_cell = {}
    df = _frame(values, rule)
    if len(df):
        try:
            table = summary(df, name, by="__cell", over=rule["key"], ci=rule.get("level", 0.95), warn=False)
        except ImportError as exc:
            raise SweepError(str(exc)) from None
        by_cell = {int(r["__cell"]): r for r in table.to_dict("records")}
    out = []
    for g in range(len(values)):
        r = by_cell.get(g)
        n = int(r[f"{name}_count"]) if r is not None else 0
        mean = float(r[f"{name}_mean"]) if r is not None else math.nan
        low = float(r[f"{name}_ci_low"]) if r is not None else math.nan
        high = float(r[f"{name}_ci_high"]) if r is not None else math.nan
        std = float(r[f"{name}_std"]) if r is not None else math.nan
        width = high - low if n >= 2 else math.inf
        out.append(
            {
                "n": n,
                "mean": mean,
                "std": std,
                "ci_low": low,
                "ci_high": high,
                "width": width if math.isfinite(width) else math.inf,
            }
        )
    return out


def _race(values: list, out: list, rule: dict) -> None:
    """Mark ``raced`` the growing cells significantly worse than the best one.

    Every growing cell with at least the minimum replicates is tested against
    the best cell (best mean among those not raced), the p-values Holm-adjusted
    together; each of the ``rounds - 1`` looks that launch runs may spend
    ``alpha / (rounds - 1)`` (Bonferroni over looks).
    """
    alive = [g for g, r in enumerate(out) if r["state"] != "raced" and r["n"] >= 2 and math.isfinite(r["mean"])]
    if not alive:
        return
    sign = 1.0 if rule["race"] == "max" else -1.0
    best = max(alive, key=lambda g: (sign * out[g]["mean"], -g))
    rivals = [g for g in alive if g != best and out[g]["state"] == "more" and out[g]["n"] >= rule["min"]]
    if not rivals:
        return
    for g, p, p_adj in _tests(values, best, rivals, rule):
        out[g].update(vs=best, p=p, p_adj=p_adj)
        worse = sign * (out[g]["mean"] - out[best]["mean"]) < 0
        if worse and p_adj < per_look(rule):
            out[g]["state"] = "raced"


def per_look(rule: dict) -> float:
    """The error rate one look may spend: alpha split evenly over the looks that can race."""
    return rule["alpha"] / max(1, rule["rounds"] - 1)


def _tests(values: list, best: int, rivals: list, rule: dict) -> list[tuple]:
    """(cell, p, Holm-adjusted p) of each rival against the best, by ``Index.compare``'s tests.

    One ``within`` block per rival holds it and the best cell, so compare's
    rule picks the test (paired t on shared seeds, else Welch) and its Holm
    correction runs over exactly these comparisons.
    """
    import pandas as pd

    from exman.analysis.inference import compare

    key, name = rule["key"], rule["interest"]
    rows = []
    for g in rivals:
        for side, cell in (("best", best), ("rival", g)):
            rows += [(g, side, seed, v) for seed, v in sorted(values[cell].items())]
    df = pd.DataFrame(rows, columns=["race", "side", key, name])
    df["status"] = "completed"
    df.attrs["params"] = ["race", "side", key]
    try:
        table = compare(
            df,
            name,
            between="side",
            within="race",
            over=key,
            level=rule.get("level", 0.95),
            correction="holm",
            warn=False,
        )
    except ImportError as exc:
        raise SweepError(str(exc)) from None
    out = []
    for race, p, p_adj in zip(table["race"].tolist(), table["p"].tolist(), table["p_adj"].tolist()):
        # A NaN p (no spread on either side) is no evidence.
        out.append((int(race), float(p), float(p_adj) if math.isfinite(p_adj) else 1.0))
    return out


def _more(row: dict, seeds: int, rule: dict, left: int) -> int:
    """Seeds to add: what the current spread says the target needs; on the last round, the maximum."""
    room = rule["max"] - seeds
    if left == 1 or rule.get("target") is None:
        # Without a target the cell walks to the maximum in even steps, one look per step.
        return room if left == 1 else max(1, math.ceil(room / left))
    want = needed(row["std"], rule["target"], rule.get("level", 0.95), rule["max"])
    return max(1, min(room, want - seeds))


def simulate(means, stds, rule: dict, rng) -> tuple[list[dict], list[int]]:
    """An adaptive sweep of cells whose interest is ``normal(means[g], stds[g])``, in memory.

    Runs ``decide`` look after look exactly as a sweep does; ``rng`` is a numpy
    Generator. Returns (the last look's decisions, seeds each cell got): what a
    rule costs and how often it errs, before spending a single run.
    """
    values: list[dict] = [{} for _ in means]
    seeds = [0] * len(means)

    def draw(g: int, count: int) -> None:
        for seed in range(seeds[g], seeds[g] + count):
            values[g][seed] = float(rng.normal(means[g], stds[g]))
        seeds[g] += count

    for g in range(len(means)):
        draw(g, rule["min"])
    previous: list = [None] * len(means)
    look = 0
    while True:
        look += 1
        decisions = decide(values, seeds, previous, rule, look)
        previous = [d["state"] for d in decisions]
        if not any(d["add"] for d in decisions):
            return decisions, seeds
        for g, d in enumerate(decisions):
            draw(g, d["add"])


def needed(std: float, width: float, level: float, most: int) -> int:
    """The fewest replicates whose CI (``Index.summary``'s: ``2 t s / sqrt(n)``) is at most ``width``, capped at ``most``."""
    import numpy as np

    from exman.analysis.summaries import half_width

    if not math.isfinite(std):
        return most
    n = np.arange(2, max(most, 2) + 1)
    fits = np.flatnonzero(2.0 * half_width(np.full(len(n), std), n, level, stats=scipy_stats()) <= width)
    return int(n[fits[0]]) if len(fits) else most


# ---------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------


def replicates_for(diff: float, std: float, *, power: float = 0.8, alpha: float = 0.05) -> int:
    """Replicates per cell for a two-sided two-sample t-test to detect ``diff`` at ``power``.

    statsmodels' ``TTestIndPower`` with effect size ``diff / std``, rounded up;
    at least 2, the fewest a t-test can use.
    """
    if not diff > 0 or not std > 0 or not math.isfinite(std) or not math.isfinite(diff):
        raise ValueError(f"planning needs a positive, finite difference and std, got diff={diff!r}, std={std!r}")
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise ValueError(f"power and alpha must be between 0 and 1, got power={power!r}, alpha={alpha!r}")
    try:
        # Imported before the filter below: its import sets ConvergenceWarning to "always", ahead of ours.
        import statsmodels.tools.sm_exceptions  # noqa: F401
        from statsmodels.stats.power import TTestIndPower
    except ImportError:
        from exman.analysis.summaries import STATS_EXTRA

        raise ImportError(f"planning needs statsmodels, the optional extra exman[stats]: {STATS_EXTRA}") from None
    import warnings

    analysis = TTestIndPower()
    effect = diff / std
    if not math.isfinite(effect):  # --diff 1e308 --std 1e-308
        raise ValueError(f"cannot solve for the replicates of effect size {effect:.3g} at power {power:g}")
    if analysis.power(effect_size=effect, nobs1=2, alpha=alpha, ratio=1.0, alternative="two-sided") >= power:
        return 2  # the solver looks for n above 2 and fails to converge below it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a failed solve comes back as NaN, said below
        n = float(
            analysis.solve_power(effect_size=effect, alpha=alpha, power=power, ratio=1.0, alternative="two-sided")
        )
    needed = max(2, int(math.ceil(n - 1e-9))) if math.isfinite(n) else None
    # statsmodels 0.14.0 returns its starting point (10) when the solve fails, not NaN: check the answer.
    if needed is None or analysis.power(effect_size=effect, nobs1=needed, alpha=alpha, ratio=1.0) < power - 1e-3:
        raise ValueError(f"cannot solve for the replicates of effect size {effect:.3g} at power {power:g}")
    return needed


def pooled_std(table, interest: str) -> tuple[float, int, int]:
    """(pooled within-cell std, cells, replicates) from an ``Index.summary`` table with ``std`` and ``count``.

    The seed-to-seed spread a planned cell will have: each cell's variance
    weighted by its degrees of freedom, so cells' differing means do not count.
    """
    std = table[f"{interest}_std"].to_numpy(dtype=float)
    n = table[f"{interest}_count"].to_numpy(dtype=float)
    ok = (n >= 2) & [math.isfinite(v) for v in std]
    dof = float((n[ok] - 1).sum())
    if dof <= 0:
        raise ValueError(f"no cell has two replicates of {interest!r} to estimate the spread; give --std")
    return math.sqrt(float(((n[ok] - 1) * std[ok] ** 2).sum()) / dof), int(ok.sum()), int(n[ok].sum())


# ---------------------------------------------------------------------------
# the sweep's side: cells, values on disk, the saved looks
# ---------------------------------------------------------------------------


def group_of(params: dict, key: str) -> str:
    """A cell's identity without its seed, as text (params may hold lists)."""
    return json.dumps({k: v for k, v in params.items() if k != key}, sort_keys=True, default=str)


def groups(spec: dict) -> tuple[list[dict], dict[str, int], list[int]]:
    """(params of each grid cell in first-seen order, group text -> index, group index of each spec cell)."""
    key = spec["adaptive"]["key"]
    params: list[dict] = []
    index: dict[str, int] = {}
    of_cell: list[int] = []
    for cell in spec["cells"]:
        text = group_of(cell, key)
        if text not in index:
            index[text] = len(params)
            params.append({k: v for k, v in cell.items() if k != key})
        of_cell.append(index[text])
    return params, index, of_cell


def observe(root, spec: dict) -> tuple[list[dict], list[int]]:
    """(seed -> value of each completed run, seeds given) per grid cell, read with ``Index.info``."""
    from exman.index import Index, meta_column

    rule = spec["adaptive"]
    params, _, of_cell = groups(spec)
    values: list[dict] = [{} for _ in params]
    seeds = [0] * len(params)
    for g in of_cell:
        seeds[g] += 1
    df = Index(root).info(include_failed=True)
    sweep = meta_column(df, "sweep")
    if not len(df) or sweep not in df.columns:
        return values, seeds
    df = df[(df[sweep] == spec["id"]) & (df[meta_column(df, "status")] == "completed")]
    name = rule["interest"]
    if len(df) and name not in df.columns:
        raise SweepError(
            f"the sweep's runs log no metric {name!r}; metrics are: "
            f"{', '.join(df.attrs.get('metrics', [])) or '(none logged)'}"
        )
    cell_col = meta_column(df, "sweep_cell")
    runs: dict = {}
    for cell, value in zip(df[cell_col].tolist(), df[name].tolist() if len(df) else []):
        try:
            cell = int(cell)
            value = float(value)
        except (TypeError, ValueError):
            continue
        if 0 <= cell < len(of_cell) and math.isfinite(value):
            runs.setdefault((of_cell[cell], spec["cells"][cell][rule["key"]]), []).append(value)
    for (g, seed), found in runs.items():
        # A seed run twice (a rerun) is one replicate, the mean of its runs, as in Index.summary.
        values[g][seed] = sum(found) / len(found)
    return values, seeds


def states(spec: dict) -> list:
    """Each grid cell's state at the last look (None before the first)."""
    params, _, _ = groups(spec)
    looks = spec["adaptive"].get("looks") or []
    if not looks:
        return [None] * len(params)
    last = looks[-1]["cells"]
    return [last[g]["state"] if g < len(last) else None for g in range(len(params))]


def next_round(root, spec: dict) -> list[int]:
    """Look at the runs, save the decisions with the new seeds' cells in the spec; the new cells' indices.

    Call only when every cell of the spec has a completed run: a look always
    sees whole rounds, which is what makes a resumed sweep decide as an
    uninterrupted one.
    """
    rule = spec["adaptive"]
    values, seeds = observe(root, spec)
    params, _, _ = groups(spec)
    looks = rule.setdefault("looks", [])
    decisions = decide(values, seeds, states(spec), rule, len(looks) + 1)
    if looks:
        for g, before in enumerate(looks[-1]["cells"]):
            if before["state"] in FINAL:
                decisions[g] = dict(before)  # final: kept as it was decided, with its test
    for d in decisions:
        d.setdefault("look", len(looks) + 1)
    cells = []
    for g, d in enumerate(decisions):
        for seed in range(seeds[g], seeds[g] + d["add"]):
            cells.append(dict(params[g], **{rule["key"]: seed}))
    first = len(spec["cells"])
    spec["cells"].extend(cells)
    looks.append({"look": len(looks) + 1, "cells": [_plain(d) for d in decisions]})
    return list(range(first, len(spec["cells"])))


def _plain(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, float):
            v = None if not math.isfinite(v) else float(format(v, ".6g"))
        out[k] = v
    return out


def describe_look(spec: dict, changes: bool = True) -> list[str]:
    """The last look in words: a line per cell that reached a final state (at this look, or ever
    with ``changes=False``), then the count of cells per state."""
    from exman.sweeps.grid import describe

    rule = spec["adaptive"]
    looks = rule.get("looks") or []
    if not looks:
        return []
    params, _, _ = groups(spec)
    now = looks[-1]["cells"]
    before = looks[-2]["cells"] if changes and len(looks) > 1 else [{} for _ in now]
    lines = []
    for g, d in enumerate(now):
        if d["state"] == "more" or d["state"] == before[g].get("state"):
            continue
        if d["state"] == "done":
            why = f"CI width {_fmt(d['width'])} <= {rule['target']:g}"
        elif d["state"] == "raced":
            why = f"worse than {describe(params[d['vs']])}, Holm p {_fmt(d.get('p_adj'))} < {per_look(rule):.3g}"
        else:
            why = f"{rule['max']} seeds" if d["state"] == "max" else f"{rule['rounds']} rounds"
        lines.append(f"  {d['state']}: {describe(params[g])}  n={d['n']} mean={_fmt(d['mean'])}  {why}")
    count = {s: sum(d["state"] == s for d in now) for s in ("more", *FINAL)}
    adding = sum(d["add"] for d in now)
    lines.append(
        f"look {looks[-1]['look']} of at most {rule['rounds']}: "
        + ", ".join(f"{v} {k}" for k, v in count.items() if v)
        + (f"; {adding} new seed run(s)" if adding else "; finished")
    )
    return lines


def _fmt(v) -> str:
    return "nan" if v is None or not math.isfinite(v) else f"{v:.4g}"


def table(root, spec: dict):
    """``--status`` of an adaptive sweep: per grid cell, its replicates, mean, CI and state (pandas)."""
    import pandas as pd

    rule = spec["adaptive"]
    params, _, _ = groups(spec)
    values, seeds = observe(root, spec)
    rows = _summaries(values, rule)
    last = states(spec)
    out = []
    for g, p in enumerate(params):
        r = rows[g]
        out.append(
            {
                **p,
                "seeds": seeds[g],
                "replicates": r["n"],
                "mean": r["mean"],
                "ci_low": r["ci_low"],
                "ci_high": r["ci_high"],
                "state": last[g] or "first round",
            }
        )
    df = pd.DataFrame(out)
    df.attrs.update(
        interest=rule["interest"],
        looks=len(rule.get("looks") or []),
        rule={k: v for k, v in rule.items() if k != "looks"},
    )
    return df


__all__ = [
    "decide",
    "simulate",
    "replicates_for",
    "pooled_std",
    "settings",
    "parse_until",
    "parse_race",
    "needed",
    "observe",
    "next_round",
    "table",
    "describe_look",
    "groups",
    "FINAL",
]
