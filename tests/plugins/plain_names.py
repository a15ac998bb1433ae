"""Example plugin: run folders named ``run-<number>``, no timestamp."""

from exman import hookimpl


@hookimpl
def naming(parser, number, name):
    return f"run-{number}" + (f"-{name}" if name else "")
