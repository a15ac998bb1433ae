"""The sweep grid: ``-p``/``-z``/``--repeat`` syntax, cells in order, a cell's command line.

Pure functions on plain values; no files, no processes.
"""

from __future__ import annotations

import itertools
import math
import re

from exman.errors import SweepError  # noqa: F401 (raised here; imported from here by older code)

NAME = re.compile(r"^[A-Za-z_][\w.-]*$")


def _clean(x: float) -> float:
    # 10 ** -3 is 0.0010000000000000002; 12 significant digits is what a person typed.
    return float(format(x, ".12g"))


def _number(text: str, spec: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise SweepError(f"{spec!r}: {text!r} is not a number") from None


def parse_values(text) -> list:
    """``"a,b"`` -> ["a", "b"]; ``"[32,32],[128]"`` -> [["32", "32"], ["128"]] (list arguments);
    ``log:1e-4:1e-1:4``, ``lin:0:1:5``, ``range:0:5[:step]`` -> numbers.

    Plain values stay strings (the child parses them with its own types); a
    list or scalar (from YAML or Python) is taken as it is.
    """
    if isinstance(text, (list, tuple)):
        out = []
        for item in text:
            out.extend(parse_values(item) if isinstance(item, str) and _is_range(item) else [item])
        return out
    if not isinstance(text, str):
        return [text]
    if _is_range(text):
        kind, *parts = text.split(":")
        if kind == "range":
            if len(parts) not in (2, 3):
                raise SweepError(f"{text!r}: expected range:START:STOP[:STEP]")
            start, stop = _number(parts[0], text), _number(parts[1], text)
            step = _number(parts[2], text) if len(parts) == 3 else 1
            if step == 0:
                raise SweepError(f"{text!r}: step must not be 0")
            if all(isinstance(v, int) for v in (start, stop, step)):
                return list(range(start, stop, step))
            count = max(0, math.ceil((stop - start) / step - 1e-9))
            return [_clean(start + i * step) for i in range(count)]
        if len(parts) != 3:
            raise SweepError(f"{text!r}: expected {kind}:START:STOP:COUNT")
        start, stop, count = _number(parts[0], text), _number(parts[1], text), _number(parts[2], text)
        if not isinstance(count, int) or count < 1:
            raise SweepError(f"{text!r}: COUNT must be a positive integer")
        if kind == "log":
            if start <= 0 or stop <= 0:
                raise SweepError(f"{text!r}: log bounds must be positive")
            a, b = math.log10(start), math.log10(stop)
            return [_clean(10 ** (a + (b - a) * i / (count - 1))) if count > 1 else _clean(start) for i in range(count)]
        return [_clean(start + (stop - start) * i / (count - 1)) if count > 1 else _clean(start) for i in range(count)]
    if not any(v.startswith("[") for v in text.split(",")):
        values = text.split(",")
        if any(v == "" for v in values):
            raise SweepError(f"{text!r}: empty value (values are separated by single commas)")
        return values
    # A bracketed value is a list, for an nargs argument: "[32,32],[128]" -> --hidden 32 32 | --hidden 128.
    values = _LIST_OR_VALUE.findall(text + ",")
    if "".join(values) != text + "," or "," in values:
        raise SweepError(f"{text!r}: expected values separated by single commas, a list as [a,b] (e.g. [32,32],[128])")
    return [[w for w in v[1:-2].split(",") if w] if v.startswith("[") else v[:-1] for v in values]


# One value and its comma: a bracketed list, or text without a comma (or bracket).
_LIST_OR_VALUE = re.compile(r"\[[^\[\],]*(?:,[^\[\],]+)*\],|[^,\[\]]*,")


def _is_range(text: str) -> bool:
    return text.split(":", 1)[0] in ("log", "lin", "range") and ":" in text


def parse_assignment(text: str) -> tuple[str, list]:
    """``"lr=0.1,0.01"`` -> ("lr", ["0.1", "0.01"])."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep:
        raise SweepError(f"{text!r}: expected NAME=V1,V2,... (e.g. lr=0.1,0.01)")
    check_name(name)
    return name, parse_values(values)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise SweepError(f"parameter name {name!r} must look like an option name: letters, digits, _ . -")
    return name


def expand(grid: dict | None = None, zip: list | dict | None = None, repeat=None) -> list[dict]:
    """Every combination, in order: grid axes (first slowest), each zip group, then the repeat key.

    ``zip`` is one group ``{name: values}`` or a list of groups; the names in a
    group vary together and need equal lengths. ``repeat`` is a count (key
    ``seed``) or ``{"count": N, "key": NAME}`` and adds ``NAME = 0..N-1``.
    """
    axes: list[list[dict]] = []
    seen: set[str] = set()

    def claim(name):
        check_name(name)
        if name in seen:
            raise SweepError(f"parameter {name!r} is given twice")
        seen.add(name)

    for name, values in (grid or {}).items():
        claim(name)
        values = parse_values(values)
        if not values:
            raise SweepError(f"parameter {name!r} has no values")
        axes.append([{name: v} for v in values])
    groups = [zip] if isinstance(zip, dict) else list(zip or [])
    for group in groups:
        if not isinstance(group, dict) or not group:
            raise SweepError("a zip group must be a mapping of names to equally long value lists")
        columns = {}
        for name, values in group.items():
            claim(name)
            columns[name] = parse_values(values)
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            detail = ", ".join(f"{n}: {len(v)}" for n, v in columns.items())
            raise SweepError(f"zipped parameters need the same number of values ({detail})")
        axes.append([{n: columns[n][i] for n in columns} for i in range(lengths.pop())])
    count, key = _repeat(repeat)
    if count:
        claim(key)
        axes.append([{key: i} for i in range(count)])
    if not axes:
        raise SweepError("nothing to sweep: give at least one -p NAME=VALUES, -z, --repeat or --file")
    cells = []
    for combo in itertools.product(*axes):
        cell = {}
        for part in combo:
            cell.update(part)
        cells.append(cell)
    return cells


def _repeat(repeat) -> tuple[int, str]:
    if repeat in (None, 0, False):
        return 0, "seed"
    if isinstance(repeat, dict):
        count, key = repeat.get("count", 0), repeat.get("key", "seed")
    else:
        count, key = repeat, "seed"
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise SweepError(f"repeat must be a non-negative integer, got {count!r}")
    return count, key


def argument(value) -> list[str]:
    """How one value is written on the child's command line."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in argument(v)]
    if isinstance(value, float):
        return [repr(value)]
    return [str(value)]


def command_line(command: list[str], params: dict) -> list[str]:
    """``COMMAND ARGS --NAME VALUE ...``."""
    argv = list(command)
    for name, value in params.items():
        argv += [f"--{name}", *argument(value)]
    return argv


def describe(params: dict) -> str:
    return " ".join(f"{k}={' '.join(argument(v))}" for k, v in params.items())


def same_numbers(cells: list[dict]) -> list[tuple[str, list[str]]]:
    """Values of one parameter spelled apart but equal as numbers (``1e-3`` and ``0.001``):
    ``[(name, [spellings])]``. A numeric option runs their combinations twice."""
    found: dict[str, dict[float, list[str]]] = {}
    for cell in cells:
        for name, value in cell.items():
            if isinstance(value, (bool, list, tuple)):
                continue
            text = " ".join(argument(value))
            try:
                number = float(text)
            except ValueError:
                continue
            spellings = found.setdefault(name, {}).setdefault(number, [])
            if text not in spellings:
                spellings.append(text)
    return [(name, texts) for name, numbers in found.items() for texts in numbers.values() if len(texts) > 1]
