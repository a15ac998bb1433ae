"""The ``exman`` command line: a click group whose subcommands come from plugins.

Nothing is registered at import time: ``main()`` builds a fresh group, loads
the plugins (defaults, entry points) and lets each add its commands through
the ``register_commands`` hook. Tests call ``make_cli()`` for a clean group.
"""
from __future__ import annotations

from pathlib import Path

import click

from exman.fs import is_shared, set_shared
from exman.layout import find_root, not_a_root, root_in  # noqa: F401 (find_root: the toolkit's)


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
            command.params.append(click.Option(
                ["--root"], type=click.Path(path_type=Path), metavar="ROOT", expose_value=False,
                callback=remember, is_eager=True, help="exman root (as before the command)"))


def make_cli(pm=None) -> click.Group:
    """A new ``exman`` group with every plugin's commands registered."""
    from exman.plugins import get_plugin_manager
    from exman.version import __version__

    pm = pm or get_plugin_manager(cli=True)

    @click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
    @click.option("--root", type=click.Path(path_type=Path), envvar="EXMAN_ROOT", metavar="ROOT",
                  help="exman root (default: $EXMAN_ROOT, the current folder, or ./exman)")
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
    return cli


def main(argv=None) -> None:
    from exman.plugins import PluginError

    try:
        cli = make_cli()
    except PluginError as exc:
        raise SystemExit(str(exc)) from None
    cli.main(args=argv, prog_name="exman")
