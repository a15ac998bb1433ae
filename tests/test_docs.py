"""Every command the `exman` script has is documented in docs/cli.md (hooks: tests/test_plugins.py)."""

from __future__ import annotations

import re

from conftest import REPO

from exman.cli import make_cli


def test_every_cli_command_is_documented():
    doc = (REPO / "docs" / "cli.md").read_text()
    undocumented = [
        name for name in sorted(make_cli().commands) if not re.search(r"`" + re.escape(name) + r"[ `]", doc)
    ]
    assert not undocumented, f"docs/cli.md does not describe: {', '.join(undocumented)}"
