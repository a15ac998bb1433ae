"""The one place the version is written: pyproject.toml and ``exman.__version__`` read it."""

__version__ = "0.2.0"
