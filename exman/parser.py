"""``ExParser``: argparse that records every run, by calling hooks.

The parser owns parsing only: restoring ``--config``, typing, the schema. What
happens to a parsed namespace (folders, files, links, marks) is for plugins.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from types import MappingProxyType

import configargparse

from exman import fs, layout
from exman.plugins import get_plugin_manager, take_settings
from exman.types import boolean, schema_of, to_plain

# A params file is a few kB; these bound what a hostile or broken --config can cost.
MAX_CONFIG_BYTES = 64 << 20
MAX_CONFIG_VALUES = 1_000_000  # a YAML alias bomb expands far past this
MAX_CONFIG_DEPTH = 64


# Hooks a run cannot start without -> the default plugin that provides each.
ESSENTIAL_HOOKS = {"claim_id": "ids", "naming": "naming", "location": "tmp"}


def simpleroot(file) -> Path:
    """``<folder of file>/exman``: the root every script should use."""
    return Path(os.path.dirname(os.path.abspath(file))) / layout.FOLDER_DEFAULT


class ExParser(layout.RootFolders, configargparse.ArgumentParser):
    """Drop-in ``argparse.ArgumentParser`` that records each parsed run under ``root``."""

    def __init__(self, *args, root=None, plugins=(), disable_plugins=(), shared: bool = False, **kwargs):
        """``root``, ``plugins``, ``disable_plugins`` and ``shared`` are exman's own; a keyword a
        plugin declares (``automark=``, ``zfill=``, ``git=``, ``git_assert_clean=``: hook
        ``add_settings``) goes to ``self.settings``; the rest to argparse."""
        # A sweep points its children at the root given to `exman sweep`.
        root = os.environ.get("EXMAN_RUN_ROOT") or root
        if root is None:
            raise ValueError("ExParser needs root=..., usually exman.simpleroot(__file__)")
        # Absolute, but spelled as given: abspath would fold `bin/..` without following a `bin`
        # symlink, and so pick another folder than the one 0.1.9 (and the OS) used.
        # An absolute root never asks for the cwd, which may have been deleted.
        root = os.fspath(root)
        self.root = Path(root if os.path.isabs(root) else os.path.join(os.getcwd(), root))
        self.shared = bool(shared)  # group-writable folders: the layout's, made by the core
        self.validators: list = []
        self.setters: list = []
        self._volatile: set[str] = set()
        self._exman_dests: set[str] = set()
        self._exman_ready = False
        self._layout_made = False
        self._config_dests: set[str] = set()
        self._option_keys: set[str] = set()  # 0.1.9's option names this parser put in the namespace
        self.pm = get_plugin_manager(disable=disable_plugins, plugins=plugins)
        # Read-only: a plugin keeps its own state (keyed by parser or run), not in here.
        self.settings = MappingProxyType(take_settings(self.pm, kwargs, disable_plugins))
        kwargs.setdefault("config_file_parser_class", configargparse.YAMLConfigFileParser)
        kwargs.setdefault("ignore_unknown_config_file_keys", True)
        super().__init__(*args, **kwargs)
        self.register("type", bool, boolean)
        self._config_file_parser = _SkipKeys(self._config_file_parser, self)  # type: ignore[has-type]

    # 0.1.9's attributes, read-only views of the plugins' settings (scripts read parser.zfill).
    zfill = property(lambda self: self.settings.get("zfill"))
    automark = property(lambda self: self.settings.get("automark"))
    git_assert_clean = property(lambda self: self.settings.get("git_assert_clean"))

    # -- layout (runs, index, marked, tmp, fails: layout.RootFolders) ---------------
    def num_ex(self) -> int:
        """Number of run folders in ``runs/``."""
        return sum(1 for _ in layout.run_folders(self.root, (layout.RUNS,)))

    def next_ex(self) -> int:
        """The next free run number (runs, tmp and fails all count)."""
        return self.pm.hook.peek_id(parser=self)

    # -- declaring arguments ------------------------------------------------
    def add_argument(self, *args, volatile: bool = False, **kwargs):
        action = super().add_argument(*args, **kwargs)
        if volatile:
            self._volatile.add(action.dest)
        return action

    def add_exman_argument(self, group, *option_strings: str, **kwargs):
        """Add a plugin option unless the script already uses that option string."""
        if any(s in self._option_string_actions for s in option_strings):
            return None
        action = group.add_argument(*option_strings, **kwargs)
        self._exman_dests.add(action.dest)
        return action

    def register_validator(self, validator, message: str = "validation error") -> None:
        """Refuse a run when ``validator(namespace)`` raises or returns anything but True or None."""
        if not callable(validator):
            raise TypeError("validator should be callable")
        self.validators.append((validator, message))

    def register_setter(self, setter) -> None:
        """Call ``setter(namespace)`` after parsing, before validation, to fill in values."""
        if not callable(setter):
            raise TypeError("setter should be callable")
        self.setters.append(setter)

    def get_possible_config_keys(self, action):
        # local config files may name an argument by its dest too (0.1.9 did).
        keys = list(super().get_possible_config_keys(action))
        if action.option_strings and action.dest not in keys:
            keys.append(action.dest)
        return keys

    def _ensure_exman_arguments(self) -> None:
        if not self._exman_ready:
            self._exman_ready = True
            group = self.add_argument_group("exman")
            self.add_exman_argument(
                group,
                "--config",
                dest="exman_config",
                metavar="FILE",
                help="restore every value from an earlier run's params file; options given here override it",
            )
            self.pm.hook.add_arguments(parser=self, group=group)

    def format_help(self):
        self._ensure_exman_arguments()
        return super().format_help()

    def user_actions(self):
        """The script's own arguments (no help, no exman options)."""
        return [
            a
            for a in self._actions
            if a.dest not in self._exman_dests
            and not isinstance(a, argparse._HelpAction)
            and a.dest != argparse.SUPPRESS
        ]

    def schema(self) -> dict:
        """Each argument's declaration, as run.json records it (``volatile`` only when set)."""
        out = {a.dest: schema_of(a) for a in self.user_actions()}
        for dest in self._volatile & set(out):
            out[dest]["volatile"] = True
        return out

    # -- parsing ------------------------------------------------------------
    def parse_known_args(self, args=None, namespace=None, **kwargs):
        self._ensure_exman_arguments()
        # One string is split on whitespace, as 0.1.9 (configargparse) did: no shell quoting.
        argv = sys.argv[1:] if args is None else (args.split() if isinstance(args, str) else list(args))
        config = self._read_config(argv)
        if config is None:
            return super().parse_known_args(argv, namespace, **kwargs)
        saved = []
        try:
            for action, value in config:
                saved.append((action, action.default, action.required))
                action.default, action.required = value, False
                self._config_dests.add(action.dest)
            return super().parse_known_args(argv, namespace, **kwargs)
        finally:
            for action, default, required in saved:
                action.default, action.required = default, required
            self._config_dests.clear()

    def parse_args(self, args=None, namespace=None):
        self._check_essential_plugins()
        namespace = super().parse_args(args, namespace)
        options = {d: namespace.__dict__.pop(d) for d in list(vars(namespace)) if d in self._exman_dests}
        self._add_option_keys(namespace, options)
        self.pm.hook.on_parse(parser=self, namespace=namespace, options=options)
        for dest, value in vars(namespace).items():
            if _undecodable(value):
                self.error(f"argument {dest}: {value!r} is not valid UTF-8 text, which params files need")
        from exman.run import start_run

        try:
            run = start_run(self, namespace, options)
        except OSError as exc:
            # A root that is a file, read-only, full, ...: start_run already removed the half-made run.
            self.error(f"cannot record the run under {self.root}: {_os_reason(exc)}")
        namespace.root = run.path
        namespace.safe_experiment = run.safe_experiment
        return namespace

    def _check_essential_plugins(self) -> None:
        """A run needs a number, a folder name and a folder to live in: refuse in one line
        when the default plugin providing one is blocked and nothing replaces it."""
        for hook, plugin in ESSENTIAL_HOOKS.items():
            if not getattr(self.pm.hook, hook).get_hookimpls():
                self.error(
                    f"plugin {plugin!r} is blocked and no other plugin provides {hook}(), which every run "
                    f"needs: unblock it (disable_plugins / EXMAN_DISABLE_PLUGINS) or install a replacement"
                )

    def _add_option_keys(self, namespace, options: dict) -> None:
        """0.1.9's own options under 0.1.9's names (``args.tmp``, ``args.name``,
        ``args.git_dirty``, ``args.config_file``), unless the script owns the name."""
        self._option_keys = set()
        for key, dest in layout.OPTION_KEYS.items():
            if key in vars(namespace):
                continue
            value = options.get(dest)
            setattr(namespace, key, bool(value) if key in ("tmp", "git_dirty") else value)
            self._option_keys.add(key)

    def _read_config(self, argv: list[str]):
        """[(action, value)] from ``--config FILE`` in argv, or None without one."""
        option = self._option_string_actions.get("--config")
        if option is None or option.dest not in self._exman_dests:
            return None
        path = None
        for i, arg in enumerate(argv):
            if arg == "--":
                break
            if arg == "--config" and i + 1 < len(argv):
                path = argv[i + 1]
            elif arg.startswith("--config="):
                path = arg.split("=", 1)[1]
        if path is None:
            return None
        file = Path(path)
        if not file.exists():
            self.error(f"--config {path}: no such file")
        if file.is_dir():
            self.error(f"--config {path}: is a directory, expected a params file")
        if not file.is_file():
            # A FIFO or a device would block or never end.
            self.error(f"--config {path}: not a regular file")
        if file.stat().st_size > MAX_CONFIG_BYTES:
            self.error(f"--config {path}: larger than {MAX_CONFIG_BYTES >> 20} MB, not a params file")
        try:
            data = self.pm.hook.load_params(path=file)
            if not isinstance(data, dict):
                raise ValueError("expected a mapping of parameter names to values")
            _check_size(data)
        except (OSError, ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
            self.error(f"--config {path}: {reason}")
        by_dest = {a.dest: a for a in self.user_actions()}
        # exman's own options come back too (--name, --tmp, --git-dirty), as with 0.1.9.
        exman_actions = {a.dest: a for a in self._actions if a.dest in self._exman_dests}
        for key, dest in layout.OPTION_KEYS.items():
            if key not in by_dest and dest in exman_actions and key != "config_file":
                by_dest[key] = exman_actions[dest]
        own = {a.dest for a in self.user_actions()}
        written = self.pm.hook.params_as_written(path=file, params=data)
        if not isinstance(written, dict) or len(written) != len(data):
            written = data
        texts = list(written.items())
        restored, unknown = [], []
        # Keys as written too: YAML 1.1 reads the key `on` as True.
        for (key, value), (text_key, text) in zip(data.items(), texts):
            key = str(text_key)
            if key in by_dest:
                value = _text_of(by_dest[key], value, text)
            # exman's keys (root, time, id, git's commit/dirty) unless the script defines them, as 0.1.9.
            if (key in layout.RECORDED_KEYS and key not in own) or key in self._volatile:
                continue
            action = by_dest.get(key)
            if action is None:
                if key not in layout.OPTION_KEYS:
                    unknown.append(key)
                continue
            try:
                # type=bool means exman's boolean: argparse maps it through the registry at parse time.
                convert = action.type and self._registry_get("type", action.type, action.type)
                restored.append((action, _retype(action, value, convert)))
            except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
                self.error(f"--config {path}: bad value for {key!r}: {exc}")
        if unknown:
            # 0.1.9 ignored them: a setter's value or an argument since removed must not stop a rerun.
            sys.stderr.write(
                f"{self.prog}: warning: --config {path}: ignoring keys this script does not define: "
                f"{', '.join(sorted(unknown))}\n"
            )
        return restored


def _text_of(action, value, written):
    """A scalar the file format typed by its own rules goes to the argument's type as
    its text (``params_as_written``), as the command line would give it."""
    if not isinstance(action, (argparse._StoreAction, argparse._AppendAction, argparse._ExtendAction)):
        return value  # store_true, count, const: the typed value is right
    if isinstance(value, list) and isinstance(written, list) and len(value) == len(written):
        return [_text_of(action, v, w) for v, w in zip(value, written)]
    return written if isinstance(written, str) and not isinstance(value, str) else value


def _retype(action, value, convert):
    """Give a recorded plain value its declared type back (e.g. Path) and check it
    as argparse checks argv: a config file must not bring in a value the command
    line would refuse (a wrong type, a list for a single value, a bad choice)."""
    if value is None:
        return None
    if isinstance(action, argparse._StoreConstAction) and isinstance(action.const, bool):
        return _flag(value)  # store_true/store_false (--tmp too): `tmp: maybe` is no flag
    if schema_of(action)["list"]:
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {value!r}")
        # append + nargs records a list of lists
        result = [
            [_retype_one(convert, v) for v in item] if isinstance(item, list) else _retype_one(convert, item)
            for item in value
        ]
        items = [v for item in result for v in (item if isinstance(item, list) else [item])]
    else:
        result = _retype_one(convert, value)
        items = [result]
    if action.choices is not None and (convert in (None, str) or _scalar_type(convert)):
        for item in items:
            if item not in action.choices:
                choices = ", ".join(map(repr, action.choices))
                raise ValueError(f"{item!r} is not one of the choices ({choices})")
    return result


def _flag(value) -> bool:
    """A switch's value from a params file, read as 0.1.9 (configargparse) read it."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _retype_one(convert, value):
    scalar = _scalar_type(convert)
    if isinstance(value, (list, dict)):
        if scalar:
            raise ValueError(f"expected a single value, got {value!r}")
        return value
    if convert is None or convert is str or not callable(convert):
        return value
    if isinstance(value, str):
        return convert(value)
    if scalar and value is not None:
        return convert(str(value))  # 2 for a float, "1" for a bool; 1.5 for an int fails
    return value


def _scalar_type(convert) -> bool:
    """Types whose values are single numbers, bools or paths."""
    convert = getattr(convert, "exman_optional", convert)
    if convert in (int, float, complex, boolean):
        return True
    return isinstance(convert, type) and issubclass(convert, os.PathLike)


def _check_size(data) -> None:
    """Refuse what no recorded run holds: a YAML alias bomb (billion laughs) or absurd nesting."""
    count, stack = 0, [(data, 0)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_CONFIG_VALUES:
            raise ValueError(f"more than {MAX_CONFIG_VALUES:,} values (YAML aliases expanding?); not a params file")
        if depth > MAX_CONFIG_DEPTH:
            raise ValueError(f"nested deeper than {MAX_CONFIG_DEPTH} levels; not a params file")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _undecodable(value) -> bool:
    """True for text holding bytes argv could not decode (surrogate escapes)."""
    value = to_plain(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, list):
        return any(_undecodable(v) for v in value)
    if isinstance(value, dict):
        return any(_undecodable(k) or _undecodable(v) for k, v in value.items())
    return False


def _os_reason(exc: OSError) -> str:
    if exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc)


class _SkipKeys:
    """Wrap configargparse's config-file parser so that local config files
    (``default_config_files``) never override what ``--config`` restored, and
    a broken one is refused in one line."""

    def __init__(self, inner, parser):
        self._inner = inner
        self._parser = parser

    def __getattr__(self, item):
        return getattr(self._inner, item)

    def parse(self, stream):
        import io

        import yaml

        try:
            text = stream.read()
            # PyYAML's pure-Python composer: the C one crashes on a nesting bomb (a RecursionError here).
            layout.check_duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
            items = self._inner.parse(io.StringIO(text))
            _check_size(dict(items))
        except (configargparse.ConfigFileParserException, yaml.YAMLError, ValueError, RecursionError) as exc:
            # configargparse passes YAML's multi-line message through; say it on one line.
            where = getattr(stream, "name", "config file")
            reason = " ".join(str(exc).split()) if not isinstance(exc, RecursionError) else "nested too deeply"
            raise configargparse.ConfigFileParserException(f"{where}: {reason}") from None
        skip = self._parser._config_dests
        if not skip:
            return items
        keys = {}
        for action in self._parser._actions:
            if action.dest in skip:
                for key in self._parser.get_possible_config_keys(action):
                    keys[key.lstrip("-")] = True
        return type(items)((k, v) for k, v in items.items() if k not in keys)


__all__ = ["ExParser", "simpleroot", "fs"]
