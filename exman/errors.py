"""Errors and warnings shared across exman's packages.

A leaf module: the modules that raise these and the ones that catch them both
import it, so neither has to import the other.
"""

from __future__ import annotations


class NotARootError(ValueError):
    """The path given to ``Index`` is not a folder made by exman."""


class IndexWarning(UserWarning):
    """A run (or one of its files) could not be read; the rest of the index is fine."""


class SweepError(ValueError):
    """Bad sweep input (grid syntax, spec, root): one clear line for the user."""
