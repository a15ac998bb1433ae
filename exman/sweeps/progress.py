"""Sweep progress: a rich bar on a terminal (rich imported lazily), plain lines otherwise.

It also carries the stop flags the signal handler sets and launchers watch.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from exman.sweeps.jobs import Job


def eta(durations: list, running: list, left: int, parallel: int) -> float | None:
    """Seconds until the last run ends; None before any run finished.

    ``durations``: the finished runs'; ``running``: how long each running run has been going;
    ``left``: runs not started yet, ``parallel`` at a time. The first runs to finish are the
    short ones, so their mean alone makes the early ETA far too small when durations differ.
    A running run is expected to take the mean of the finished runs that took longer than it
    has been going, or, when none did, as long again as it has; a run not started the mean of
    all those. The work left is laid out as the launcher runs it: each next run on the slot
    that frees first.
    """
    if not durations:
        return None
    done = sorted(durations)
    longer = list(itertools.accumulate(reversed(done)))[::-1]  # longer[i]: sum of done[i:]
    totals = []
    for elapsed in running:
        i = bisect.bisect_right(done, elapsed)
        totals.append(longer[i] / (len(done) - i) if i < len(done) else 2.0 * elapsed)
    mean = (longer[0] + sum(totals)) / (len(done) + len(totals))
    slots = max(parallel, 1)
    free = sorted((t - e for t, e in zip(totals, running)), reverse=True)[:slots]
    free += [0.0] * (slots - len(free))
    heapq.heapify(free)
    for _ in range(max(left, 0)):
        heapq.heappush(free, heapq.heappop(free) + mean)
    return max(free)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


class Progress:
    """What a launcher reports to, and the stop flags it must watch.

    ``stopping`` is set on the first SIGINT/SIGTERM (start nothing new, SIGTERM
    the running children, wait for them); ``killing`` on the second (SIGKILL).
    """

    def __init__(self, total: int, sweep_id: str, *, stream=None, live: bool | None = None, quiet: bool = False):
        self.total = total
        self.sweep_id = sweep_id
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.done = self.failed = self.running = 0
        self.stopping = threading.Event()
        self.killing = threading.Event()
        self.started_at = time.monotonic()
        self._lock = threading.Lock()
        self._starts: dict[int, float] = {}
        self._durations: list[float] = []
        self._parallel = 1  # the most runs seen at once: how many the launcher runs together
        self._bar = None
        if live is None:
            live = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        if live:
            self._bar = self._make_bar()

    def _make_bar(self):
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar
        except ImportError:
            return None  # plain lines then
        bar = Bar(
            TextColumn("sweep {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed, {task.fields[running]} running"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=Console(file=self.stream),
            transient=False,
        )
        self._task = bar.add_task(self.sweep_id, total=self.total, failed=0, running=0, eta="?")
        bar.start()
        return bar

    def _refresh(self) -> None:
        if self._bar is not None:
            eta = "stopping" if self.stopping.is_set() else _clock(self.eta())
            self._bar.update(self._task, completed=self.done, failed=self.failed, running=self.running, eta=eta)

    def eta(self) -> float | None:
        now = time.monotonic()
        running = [now - began for began in self._starts.values()]
        return eta(self._durations, running, self.total - self.done - len(running), self._parallel)

    def started(self, job: Job) -> None:
        with self._lock:
            if job.cell in self._starts:
                return
            self._starts[job.cell] = time.monotonic()
            self.running += 1
            self._parallel = max(self._parallel, self.running)
            self._refresh()

    def finished(self, job: Job, returncode: int | None) -> None:
        with self._lock:
            began = self._starts.pop(job.cell, None)
            if began is not None:
                self.running -= 1
                if returncode is not None:
                    self._durations.append(time.monotonic() - began)
            self.done += 1
            ok = returncode == 0
            if not ok:
                self.failed += 1
            self._refresh()
            if self._bar is None and not self.quiet:
                took = f" {time.monotonic() - began:.1f}s" if began is not None else ""
                verdict = "ok" if ok else ("not started" if returncode is None else f"exit {returncode}")
                # Once stopping, what is left will not run: no ETA.
                going = self.done < self.total and not self.stopping.is_set()
                left = f", ETA {_clock(self.eta())}" if going and self._durations else ""
                print(f"[{self.done}/{self.total}] {job}: {verdict}{took}{left}", file=self.stream, flush=True)
            elif self._bar is not None and not ok:
                self._bar.console.print(f"{job}: exit {returncode}")

    def note(self, text: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
