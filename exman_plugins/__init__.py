"""exman's default behaviour, each module an ordinary plugin.

Block one by its short name (``ExParser(disable_plugins=["git"])`` or
``EXMAN_DISABLE_PLUGINS=git``); replace one by registering a plugin that
implements the same hooks (providers) or by installing one under the same name.
The short names are listed in ``exman.plugins.DEFAULT_PLUGINS``.
"""
