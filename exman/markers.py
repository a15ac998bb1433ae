"""The hook markers, and nothing else: a plugin's ``from exman import hookimpl`` stays a leaf.

``exman.hookspecs`` marks the specs with ``hookspec``; plugins mark implementations with
``hookimpl``. Importing this module imports pluggy only.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("exman")
hookimpl = pluggy.HookimplMarker("exman")

__all__ = ["hookspec", "hookimpl"]
