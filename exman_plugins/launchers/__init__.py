"""Sweep launchers, each a plugin implementing the ``launch`` hook for one name.

``local`` is the default; ``dask`` and ``submitit`` import their library only
when chosen, so neither the core nor ``exman --help`` pays for them.
"""
