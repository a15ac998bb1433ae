"""The ``exman`` command line: a click group whose subcommands come from plugins,
and the toolkit those command plugins share.

Nothing is registered at import time: ``main()`` builds a fresh group, loads
the plugins (defaults, entry points) and lets each add its commands through
the ``register_commands`` hook. Tests call ``make_cli()`` for a clean group.

The toolkit (``__all__``; docs/plugins.md) is how a command finds the root and
its runs, reads one run, filters the runs table and prints, so that no command
imports another. Its code lives in the private ``_runs``, ``_output`` and
``_where`` modules beside this one; import the names from ``exman.cli``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

from exman.cli._options import format_option, mark_option, over_option, where_option
from exman.cli._output import can_prompt, heading, pairs, table
from exman.cli._output import fit as fit_table
from exman.cli._output import width as terminal_width
from exman.cli._runs import (
    RunRef,
    complete_ids,
    complete_marks,
    fs_errors,
    inside,
    mark_folder,
    os_error_line,
    read_run,
    runs_info,
    tail,
    warn_unknown,
)
from exman.cli._runs import resolve as resolve_runs
from exman.cli._runs import resolve_one as resolve_run
from exman.cli._runs import scan as scan_runs
from exman.cli._where import names as where_names
from exman.cli._where import query as filter_runs
from exman.formatting import duration as format_duration
from exman.formatting import plain as json_value
from exman.formatting import text as format_value
from exman.fs import is_shared, set_shared
from exman.layout import RUN_FOLDERS, find_root, not_a_root, root_in

__all__ = [
    # the command line
    "main",
    "make_cli",
    "State",
    # the root and its runs
    "find_root",
    "RUN_FOLDERS",
    "RunRef",
    "scan_runs",
    "resolve_runs",
    "resolve_run",
    "warn_unknown",
    "complete_ids",
    "complete_marks",
    "mark_folder",
    "read_run",
    "tail",
    "runs_info",
    "filter_runs",
    "where_names",
    # options several commands share
    "mark_option",
    "where_option",
    "over_option",
    "format_option",
    # printing
    "table",
    "fit_table",
    "terminal_width",
    "pairs",
    "heading",
    "format_value",
    "format_duration",
    "json_value",
    "can_prompt",
    # errors and safety
    "fs_errors",
    "os_error_line",
    "inside",
]


class State:
    """What every subcommand receives as ``ctx.obj``: the root, found lazily."""

    def __init__(self, root: Path | None, pm):
        self._root = root
        self.pm = pm

    @property
    def given(self) -> Path | None:
        """The root as given (--root or $EXMAN_ROOT), which may not exist yet; None if not given."""
        return self._root

    @property
    def root(self) -> Path:
        if self._root is not None:
            found = root_in(self._root)
            if found is None:
                raise click.ClickException(f"{not_a_root(self._root)}; neither is its exman/ nor a folder above it")
        else:
            found = find_root()
        if found is None:
            raise click.ClickException(
                "no exman root found: pass --root ROOT, set EXMAN_ROOT, or run inside a root, "
                "below one, or beside ./exman"
            )
        if is_shared(found):
            set_shared(True)  # marks and repairs in a team's root stay group-writable
        return found


def _root_anywhere(cli: click.Group) -> None:
    """``exman ls --root X`` means ``exman --root X ls``: every command takes --root too.

    The group's callback runs before a command parses its options, so the
    command's --root overrides the group's (and $EXMAN_ROOT).
    """

    def remember(ctx, param, value):
        if value is not None:
            ctx.find_object(State)._root = value

    for command in cli.commands.values():
        if not any("--root" in p.opts for p in command.params):
            command.params.append(
                click.Option(
                    ["--root"],
                    type=click.Path(path_type=Path),
                    metavar="ROOT",
                    expose_value=False,
                    callback=remember,
                    is_eager=True,
                    help="exman root (as before the command)",
                )
            )


def make_cli(pm=None) -> click.Group:
    """A new ``exman`` group with every plugin's commands registered."""
    from exman.plugins import get_plugin_manager
    from exman.version import __version__

    pm = pm or get_plugin_manager(cli=True)

    @click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
    @click.option(
        "--root",
        type=click.Path(path_type=Path),
        envvar="EXMAN_ROOT",
        metavar="ROOT",
        help="exman root (default: $EXMAN_ROOT, the current folder, or ./exman)",
    )
    @click.version_option(__version__, prog_name="exman")
    @click.pass_context
    def cli(ctx, root):
        """Mark, list, inspect, delete and sweep the runs recorded by exman.ExParser.

        \b
        Example:
          exman --root examples/exman ls
        """
        ctx.obj = State(root, pm)

    pm.hook.register_commands(cli=cli)
    _root_anywhere(cli)
    _os_errors_anywhere(cli)
    return cli


def _os_errors_anywhere(cli: click.Group) -> None:
    """Any command's OSError (an unreadable run folder, an unwritable --out) is one line, not a traceback.

    Commands wrap their own writes in ``fs_errors`` to say more; this catches what they did not foresee.
    """
    for command in cli.commands.values():
        if command.callback is None:
            continue

        def guarded(*args, _callback=command.callback, **kwargs):
            with fs_errors():
                return _callback(*args, **kwargs)

        command.callback = functools.update_wrapper(guarded, command.callback)


def main(argv=None) -> None:
    from exman.plugins import PluginError

    try:
        cli = make_cli()
    except PluginError as exc:
        raise SystemExit(str(exc)) from None
    cli.main(args=argv, prog_name="exman")
