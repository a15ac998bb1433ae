"""``register_setter`` and ``register_validator``: fill in, then check, the namespace."""

from __future__ import annotations

import argparse
import sys

from exman import hookimpl


class ValidationError(argparse.ArgumentError):
    """A validator refused the run. Uncaught, it prints one line, not a traceback."""

    def __init__(self, parser, message):
        super().__init__(None, message)
        self.prog = parser.prog


def _one_line_hook(previous):
    def hook(exc_type, exc, tb):
        if isinstance(exc, ValidationError):
            sys.stderr.write(f"{exc.prog}: error: {exc}\n")
        else:
            previous(exc_type, exc, tb)

    hook.exman_validation = True
    return hook


def _refuse(parser, message, cause=None):
    if not getattr(sys.excepthook, "exman_validation", False):
        sys.excepthook = _one_line_hook(sys.excepthook)
    raise ValidationError(parser, message) from cause


def _message(template: str, namespace) -> str:
    try:
        return template.format(**vars(namespace))
    except (KeyError, IndexError, ValueError, AttributeError):
        return template


@hookimpl(tryfirst=True)
def on_parse(parser, namespace):
    for setter in parser.setters:
        setter(namespace)
    for check, message in parser.validators:
        try:
            ok = check(namespace)
        except argparse.ArgumentError:
            raise
        except Exception as exc:
            _refuse(parser, _message(message, namespace), exc)
        if ok is not True and ok is not None:
            # 0.1.9's rule: only True or None pass; an error string or 1 refuses the run.
            _refuse(parser, _message(message, namespace))
