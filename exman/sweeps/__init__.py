"""Parameter sweeps: ``exman.sweep(command, grid, ...)`` and its companions.

``driver`` runs a sweep from start to summary; ``grid`` parses and expands the
grid; ``records`` saves the spec and reads the cells' runs; ``jobs`` starts and
stops one job; ``progress`` draws it; ``adaptive`` decides the rounds of
adaptive and racing sweeps. How jobs run belongs to launcher plugins.
"""

from __future__ import annotations

from exman.errors import SweepError
from exman.sweeps.driver import CellRun, SweepResult, decisions, resume, status, sweep

__all__ = ["sweep", "resume", "status", "decisions", "SweepResult", "CellRun", "SweepError"]
