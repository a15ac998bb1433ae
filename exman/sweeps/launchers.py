"""The sweep launchers plugins register through ``register_launchers``, by name.

A launcher is what ``register(name, launch, can_detach=..., queued=...)`` was
given: the callable that runs a sweep's jobs and, optionally, what it can do
besides (queue the jobs and let ``exman sweep`` exit; say which cells a scheduler
still holds). The driver calls the one it needs directly. Nothing here imports
a launcher or the command line: the plugin manager brings the plugins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from exman.errors import SweepError


@dataclass(frozen=True)
class Launcher:
    name: str
    launch: Callable[..., Any]  # launch(jobs, options, progress) -> {cell: returncode}
    can_detach: Callable[..., Any] | None = None  # can_detach(options) -> True | "why not"
    queued: Callable[..., Any] | None = None  # queued(root, sweep_id) -> {cell: state} | None


def collect(pm) -> dict[str, Launcher]:
    """Every registered launcher by name. A name registered twice goes to the plugin
    called first, the one registered last: a third-party launcher replaces a default."""
    found: dict[str, Launcher] = {}

    def register(
        name: str,
        launch: Callable[..., Any],
        *,
        can_detach: Callable[..., Any] | None = None,
        queued: Callable[..., Any] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"register_launchers: a launcher's name must be a non-empty string, not {name!r}")
        for what, value in (("launch", launch), ("can_detach", can_detach), ("queued", queued)):
            if value is not None and not callable(value):
                raise TypeError(f"register_launchers: {what} of launcher {name!r} is not callable: {value!r}")
        found.setdefault(name, Launcher(name, launch, can_detach, queued))

    pm.hook.register_launchers(register=register)
    return found


def get(pm, name: str) -> Launcher:
    """The launcher called ``name``; one line naming the known ones otherwise."""
    known = collect(pm)
    if name not in known:
        raise SweepError(f"no launcher called {name!r} (known: {', '.join(sorted(known)) or 'none'})")
    return known[name]
