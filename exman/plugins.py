"""The one place that builds exman's plugin manager.

Load order is fixed: default plugins (by short name), then blocked names are
unregistered, then third-party plugins from the ``exman`` entry-point group,
then per-parser plugin objects, then ``check_pending()``. Blocking therefore
works for defaults and entry points alike, and anything registered later is
called first, so a third-party implementation wins over a default one.

Entry-point discovery reads every installed distribution's metadata, which
costs tens of milliseconds in a large environment; the result is cached per
``sys.path`` and invalidated by the mtimes of its folders (installing or
removing a distribution touches its site-packages folder).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import types
from collections.abc import Iterable

import pluggy

from exman import hookspecs

ENTRY_POINT_GROUP = "exman"

# Short name -> module. The order is the registration order.
DEFAULT_PLUGINS = {
    "ids": "exman_plugins.ids",
    "naming": "exman_plugins.naming",
    "tmp": "exman_plugins.tmp",
    "params_yaml": "exman_plugins.params_yaml",
    "metadata": "exman_plugins.metadata",
    "index_links": "exman_plugins.index_links",
    "automark": "exman_plugins.automark",
    "validators": "exman_plugins.validators",
    "failures": "exman_plugins.failures",
    "git": "exman_plugins.gitinfo",
    "logcapture": "exman_plugins.logcapture",
    "metrics": "exman_plugins.metrics",
}

# Plugins only the command line needs: never imported by a training script.
CLI_PLUGINS = {
    "ls-command": "exman_plugins.commands.ls",
    "show-command": "exman_plugins.commands.show",
    "diff-command": "exman_plugins.commands.diff",
    "mark-command": "exman_plugins.commands.mark",
    "delete-command": "exman_plugins.commands.delete",
    "rerun-command": "exman_plugins.commands.rerun",
    "doctor-command": "exman_plugins.commands.doctor",
    "plugins-command": "exman_plugins.commands.plugins",
    "report-command": "exman_plugins.commands.report",
    "compare-command": "exman_plugins.commands.compare",
    "plan-command": "exman_plugins.commands.plan",
    "sweep-command": "exman_plugins.commands.sweep",
}

# Plugins a sweep needs, from Python or the command line; each imports its library only when chosen.
LAUNCHER_PLUGINS = {
    "local-launcher": "exman_plugins.launchers.local",
    "dask-launcher": "exman_plugins.launchers.dask",
    "submitit-launcher": "exman_plugins.launchers.submitit",
}


# ExParser keywords the default plugins take (0.1.9's) -> the plugin: with it blocked or
# replaced, ExParser says it ignores them instead of handing them to argparse.
DEFAULT_SETTINGS = {"zfill": "naming", "automark": "automark", "git": "git", "git_assert_clean": "git"}


class _Manager(pluggy.PluginManager):
    """pluggy's manager, reading a plugin module's marks from its namespace.

    pluggy (1.6 and later) inspects every name of a plugin with ``inspect.getattr_static``,
    so as not to run a property; a module has none, so its functions' marks are read
    directly, as pluggy itself reads them (the options dict the marker set). Classes and
    instances still go through pluggy's own parsing.
    """

    def parse_hookimpl_opts(self, plugin, name):
        if isinstance(plugin, types.ModuleType):
            return _marks(vars(plugin).get(name), "exman_impl")
        return super().parse_hookimpl_opts(plugin, name)

    def parse_hookspec_opts(self, module_or_class, name):
        if isinstance(module_or_class, types.ModuleType):
            return _marks(vars(module_or_class).get(name), "exman_spec")
        return super().parse_hookspec_opts(module_or_class, name)


def _marks(value, marker: str):
    """The options a marker set on a module's function, else None."""
    # Only functions are hooks in a module (pluggy's rule too); asking anything else for an
    # attribute could run its __getattr__.
    if not isinstance(value, (types.FunctionType, types.MethodType)):
        return None
    opts = getattr(value, marker, None)
    return opts if isinstance(opts, dict) else None


class PluginError(RuntimeError):
    """A plugin could not be imported or does not fit the hook specs."""


def disabled_from_env() -> list[str]:
    raw = os.environ.get("EXMAN_DISABLE_PLUGINS", "")
    return [n.strip() for n in raw.split(",") if n.strip()]


def get_plugin_manager(
    disable: Iterable[str] = (),
    plugins: Iterable[object] = (),
    *,
    cli: bool = False,
    launchers: bool = False,
    entry_points: bool = True,
) -> pluggy.PluginManager:
    """Build a fresh manager: defaults, blocks, entry points, extra objects.

    ``launchers`` adds the launcher plugins (``exman.sweep``); ``cli`` adds the
    commands and the launchers (the ``exman`` command).
    """
    pm = _Manager("exman")
    pm.add_hookspecs(hookspecs)
    blocked = set(disable) | set(disabled_from_env())
    defaults = dict(DEFAULT_PLUGINS)
    if cli:
        defaults.update(CLI_PLUGINS)
    if cli or launchers:
        defaults.update(LAUNCHER_PLUGINS)
    for name in blocked:
        pm.set_blocked(name)
    for name, modname in defaults.items():
        if name in blocked:
            continue
        try:
            module = importlib.import_module(modname)
        except ImportError as exc:
            raise PluginError(f"exman: cannot import default plugin {name!r} ({modname}): {exc}") from exc
        pm.register(module, name=name)
    if entry_points:
        for ep_name, ep_value, dist in _entry_points():
            if ep_name in blocked:
                continue
            try:
                obj = _load_ref(ep_value)
            except Exception as exc:  # a broken plugin must say who it is
                raise PluginError(f"exman: cannot load plugin {ep_name!r} ({ep_value}) from {dist}: {exc}") from exc
            if pm.get_plugin(ep_name) is not None:
                # An installed plugin under a default's name replaces that default.
                pm.unregister(name=ep_name)
            pm.register(obj, name=ep_name)
            _DISTS[ep_name] = dist
    named = [(getattr(obj, "__name__", None) or f"{type(obj).__name__}-{id(obj)}", obj) for obj in plugins]
    if disabled_from_env():
        _warn_unknown_disabled(
            set(DEFAULT_PLUGINS)
            | set(CLI_PLUGINS)
            | set(LAUNCHER_PLUGINS)
            | {ep for ep, _, _ in _entry_points()}
            | {name for name, _ in named}  # blocked below by that name
        )
    for name, obj in named:
        if pm.get_plugin(name) is None and not pm.is_blocked(name):
            pm.register(obj, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        hint = next((f" ({new})" for old, new in _REPLACED.items() if f"unknown hook '{old}'" in str(exc)), "")
        raise PluginError(f"exman: {exc}{hint}") from exc
    if os.environ.get("EXMAN_TRACE_PLUGINS"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def take_settings(pm: pluggy.PluginManager, kwargs: dict, disable: Iterable[str] = ()) -> dict:
    """Remove from ``kwargs`` the keywords plugins declared (``add_settings``); return them
    with every declared default filled in. A keyword of a blocked or replaced plugin is
    dropped with one warning line (unless it is None or False: nothing was asked for)."""
    declared: dict = {}

    def register(name: str, default=None, convert=None) -> None:
        declared.setdefault(name, (default, convert))  # called first (registered last) wins

    pm.hook.add_settings(register=register)
    settings = {}
    for name, (default, convert) in declared.items():
        settings[name] = convert(kwargs.pop(name)) if name in kwargs and convert else kwargs.pop(name, default)
    blocked = set(disable) | set(disabled_from_env())
    for key in list(kwargs):
        owner = DEFAULT_SETTINGS.get(key) or next((n for n in blocked if key == n or key.startswith(n + "_")), None)
        if owner is None:
            continue  # argparse's (prog=, description=, ...), or a mistake argparse reports
        value = kwargs.pop(key)
        if value is not None and value is not False:
            why = f"plugin {owner!r} is blocked" if owner in blocked else f"plugin {owner!r} is replaced"
            sys.stderr.write(f"exman: warning: ExParser({key}=...) is ignored: no loaded plugin takes it ({why})\n")
    return settings


# Hooks of development versions that never shipped, and what replaced them.
_REPLACED = {
    name: "launchers are registered with register_launchers(register) now; see docs/sweeps.md"
    for name in ("launchers", "launch", "can_detach", "queued")
}

_WARNED: set = set()


def _warn_unknown_disabled(known: set) -> None:
    """A name in $EXMAN_DISABLE_PLUGINS that no plugin has is a typo: say so once per process."""
    unknown = [n for n in disabled_from_env() if n not in known and n not in _WARNED]
    if unknown:
        _WARNED.update(unknown)
        sys.stderr.write(
            f"exman: warning: EXMAN_DISABLE_PLUGINS names no plugin: {', '.join(unknown)} "
            f"(plugins: {', '.join(sorted(known))})\n"
        )


# name -> distribution "name version" of entry-point plugins, for `exman plugins`.
_DISTS: dict[str, str] = {}


def plugin_dist(name: str) -> str | None:
    return _DISTS.get(name)


def _load_ref(value: str) -> object:
    modname, _, attr = value.partition(":")
    obj = importlib.import_module(modname.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def _cache_file(key: list) -> str:
    import zlib  # hashlib's import costs ~4 ms; a checksum is enough to name a file

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    # One file per sys.path, so scripts in different folders do not evict each other.
    digest = f"{zlib.crc32(json.dumps([entry for entry, _ in key]).encode()):08x}"
    # Strings, not Paths: every start asks, and pathlib's parsing was half of a cache hit.
    return os.path.join(base, "exman", f"entry_points-{digest}.json")


def _path_key() -> list:
    key = []
    for entry in sys.path:
        try:
            key.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            key.append([entry, None])
    return key


def _entry_points() -> list[tuple[str, str, str]]:
    """(name, value, distribution) for the ``exman`` group, cached by sys.path mtimes."""
    key = _path_key()
    cache = _cache_file(key)
    try:
        from exman.fs import read_text

        data = json.loads(read_text(cache))
        if data.get("key") == key:
            return [tuple(row) for row in data["entry_points"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    found = _scan(entry for entry, _ in key)
    try:
        from exman.fs import atomic_write

        os.makedirs(os.path.dirname(cache), exist_ok=True)
        atomic_write(cache, json.dumps({"key": key, "entry_points": found}))
    except OSError:
        pass  # a read-only home must not stop a run
    return [tuple(row) for row in found]  # type: ignore[misc]


def _scan(path_entries) -> list[list[str]]:
    """Read ``[exman]`` sections of ``*.dist-info/entry_points.txt`` on sys.path.

    Done by hand rather than with importlib.metadata, whose import alone (email,
    csv, zipfile) costs a training script ~25 ms; first distribution on the path
    wins, as with importlib.metadata.
    """
    found, seen = [], set()
    for entry in path_entries:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for folder in names:
            if not folder.endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(entry or ".", folder, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            if f"[{ENTRY_POINT_GROUP}]" not in text:
                continue
            dist = " ".join(folder.rsplit(".", 1)[0].split("-", 1)).replace("_", "-")
            for name, value in _section(text, ENTRY_POINT_GROUP):
                if name not in seen:
                    seen.add(name)
                    found.append([name, value, dist])
    return found


def _section(text: str, group: str):
    inside = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            inside = line == f"[{group}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            name, value = line.split("=", 1)
            yield name.strip(), value.strip()


def describe(pm: pluggy.PluginManager) -> list[dict]:
    """Name, origin and implemented hooks of every registered plugin."""
    rows = []
    for name, plugin in pm.list_name_plugin():
        hooks = sorted({h.name for h in pm.get_hookcallers(plugin) or []})
        dist = plugin_dist(name)
        default = name in DEFAULT_PLUGINS or name in CLI_PLUGINS or name in LAUNCHER_PLUGINS
        origin = dist or ("default" if default else "object")
        distribution, _, version = (dist or "").partition(" ")
        rows.append(
            {
                "name": name,
                "origin": origin,
                "distribution": distribution or None,
                "version": version or None,
                "module": getattr(plugin, "__name__", repr(plugin)),
                "hooks": hooks,
            }
        )
    return rows
