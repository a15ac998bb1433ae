"""Sweep launchers, each a plugin registering one name through ``register_launchers``.

``local`` is the default; ``dask`` and ``submitit`` import their library only
when chosen, so neither the core nor ``exman --help`` pays for them.
"""
