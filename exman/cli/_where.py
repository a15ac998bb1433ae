"""``--where``: a pandas query on the runs table, with mistakes answered by a hint.

The implementation of ``exman.cli.filter_runs`` and ``where_names``.

The semantics are pandas' ``DataFrame.query``; only the error text is ours.
The common mistakes are ``=`` for ``==`` and text values without quotes; pandas
reports them in its own terms ("cannot assign without a target object", "name
'relu' is not defined"), which say nothing to someone filtering runs.
"""

from __future__ import annotations

import ast
import math
import re

import click

_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`")
_ASSIGN = re.compile(r"(?<![=!<>])=(?!=)")
_NAME = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
_UNDEFINED = re.compile(r"name '([^']+)' is not defined")
OPERATORS = "==, !=, <, <=, >, >=, and, or, not, in"


def names(where: str | None) -> list[str]:
    """The bare and `backticked` names an expression mentions (quoted text left out)."""
    if not where:
        return []
    ticked = re.findall(r"`([^`]*)`", where)
    bare = _NAME.findall(_QUOTED.sub(" ", where))
    return list(dict.fromkeys(ticked + bare))


def query(df, where: str):
    """``df.query(where)``, attrs kept; a bad expression is one line with a hint."""
    attrs = dict(df.attrs)
    try:
        where.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes from argv: Python's parser cannot read them
        raise click.ClickException(f"bad --where expression {where!r}: not valid UTF-8 text") from None
    refused = unsafe(where)
    if refused:
        raise click.ClickException(
            f"bad --where expression {where!r}: {refused} is not allowed; use column names, values and {OPERATORS}"
        )
    try:
        result = df.query(where)
    except Exception as exc:  # pandas raises many types for a bad expression
        raise click.ClickException(f"bad --where expression {where!r}: {explain(where, exc, df)}") from None
    result.attrs.update(attrs)
    return result


# What a filter needs; pandas' query would also run method calls and attribute access
# (``name.to_csv('/elsewhere.csv')``), which could write outside the root.
_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.Invert,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.BitAnd,
    ast.BitOr,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.List,
    ast.Tuple,
)


def unsafe(where: str) -> str | None:
    """What in ``where`` is more than a comparison of columns and values (a call, an
    attribute, an index, a local ``@variable``), or None. Evaluated nowhere: checked only."""
    code = _QUOTED.sub(lambda m: "_column" if m.group(0)[0] == "`" else m.group(0), where)
    if "@" in _QUOTED.sub("''", code):
        return "'@'"
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError:
        return None  # pandas refuses it too, with a hint below
    for node in ast.walk(tree):
        # Operators are pandas' to accept or refuse (with the hint below); what reaches code is not.
        if not isinstance(node, _ALLOWED + (ast.operator, ast.cmpop, ast.unaryop, ast.boolop, ast.expr_context)):
            return {ast.Call: "a call", ast.Attribute: "an attribute", ast.Subscript: "an index"}.get(
                type(node), f"'{type(node).__name__}'"
            )
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and _too_big(node):
            return "a power of numbers with more than 10,000 digits (or of other powers)"
    return None


def _too_big(power: ast.BinOp) -> bool:
    """Whether a ``**`` of constants could take pandas forever: it computes them in Python
    integers before filtering (``9**9**9**9`` never ends). A column in it is numpy's, which overflows at once."""
    if any(isinstance(node, ast.Name) for node in ast.walk(power)):
        return False
    base, exponent = _number(power.left), _number(power.right)
    if base is None or exponent is None:
        return True  # a power of powers: say it as one number
    return abs(exponent) * math.log10(abs(base) + 1) > 10_000


def _number(node: ast.expr) -> float | None:
    """The value of a plain (signed) number literal, else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def explain(where: str, exc: Exception, df) -> str:
    bare = _QUOTED.sub("''", where)
    if _ASSIGN.search(bare):
        return f"'=' assigns; compare with '==', e.g. {_ASSIGN.sub('==', where, count=1)!r}"
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    undefined = _UNDEFINED.search(message)
    columns = [str(c) for c in df.columns]
    if undefined:
        name = undefined.group(1)
        close = [c for c in columns if c.lower() == name.lower()]
        if close:
            return f"no column {name!r}; did you mean {close[0]!r}?"
        compared = re.search(rf"([A-Za-z_]\w*)\s*(==|!=)\s*{re.escape(name)}\b", bare)
        if compared and compared.group(1) in columns:
            return f"no column {name!r}; quote text values: {compared.group(1)} {compared.group(2)} '{name}'"
        return f"no column {name!r}; columns: {', '.join(columns)}"
    if isinstance(exc, (AttributeError, NotImplementedError)) or "visit_" in message:
        return f"unsupported operator; use {OPERATORS}"
    if isinstance(exc, SyntaxError):
        return f"not a valid expression; use {OPERATORS}, quote text values, `backtick` odd column names"
    return message
