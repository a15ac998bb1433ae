"""Every exman hook, grouped by the phase that calls it.

Call patterns, stated in each docstring:

- **provider**: ``firstresult``; the default implementation is ``trylast`` so any
  plugin overrides it by returning something other than ``None``.
- **event**: every implementation runs; return values are ignored.
- **collector**: every implementation runs and the caller merges what they return.

Callers always pass keyword arguments, so a hook can gain an argument later
without breaking older plugins (pluggy only hands a plugin the names it asks for).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from exman.markers import hookimpl, hookspec  # noqa: F401 (hookimpl: public here too)

if TYPE_CHECKING:  # pragma: no cover
    import argparse
    from pathlib import Path

    from exman.parser import ExParser
    from exman.run import Run

# ---------------------------------------------------------------------------
# setup: building the parser
# ---------------------------------------------------------------------------


@hookspec
def add_settings(register: Callable[..., None]) -> None:
    """Declare the keywords this plugin takes from ``ExParser(...)``. **collector**

    Called once per ``ExParser``, before argparse sees its keywords. Call
    ``register(name, default, convert=None)`` once per keyword: ``ExParser(..., name=value)``
    then goes to ``parser.settings[name]`` (``convert(value)`` when given, checked at
    once) instead of to argparse, and ``parser.settings[name]`` is ``default`` when the
    script leaves it out. Name keywords after the plugin (``git``, ``git_assert_clean``),
    so that, with the plugin blocked, ``ExParser`` says it ignores them. A keyword two
    plugins register is one value both read.
    """


@hookspec
def add_arguments(parser: ExParser, group: argparse._ArgumentGroup) -> None:
    """Add a plugin's own command-line options. **event**

    Called by ``ExParser`` once, lazily, right before the first parse or help
    output, so options never take a name the script defined itself. Add long
    options only, through ``parser.add_exman_argument(group, ...)``, which
    skips an option string the script already uses; give them a ``dest`` that
    starts with ``exman_`` so they stay out of the recorded params.
    """


# ---------------------------------------------------------------------------
# parse: turning argv into a validated namespace
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def load_params(path: Path) -> dict | None:
    """Read a params file written by :func:`storage` into a plain dict. **provider**

    Called by ``--config FILE`` and by the Index fallback for runs without a
    machine record. Stops at the first non-None result. Raise ``ValueError``
    with a one-line message for a file that is not a mapping.
    """


@hookspec(firstresult=True)
def params_as_written(path: Path, params: dict) -> dict | None:
    """``params`` (what :func:`load_params` read from ``path``) as the file writes them. **provider**

    Keys as written, and every scalar that the file format typed by rules of its
    own (YAML 1.1 reads ``1.10`` as 1.1, ``0123`` as 83, ``yes`` as True) as its
    text, so ``--config`` hands it to the argument's type as the command line
    would; every other value as given. Same length and order as ``params``.
    Return None when the format has no such values.
    """


@hookspec
def on_parse(parser: ExParser, namespace: argparse.Namespace, options: dict) -> None:
    """Inspect or adjust the parsed namespace before anything is written. **event**

    Called by ``ExParser.parse_args`` after argparse succeeded. ``options``
    holds exman's own options (``exman_*`` dests), kept out of the namespace. Setters and
    validators live here; raise ``argparse.ArgumentError`` to refuse the run
    (no folder has been created yet, so a refused run leaves nothing behind).
    """


@hookspec
def collect_params(parser: ExParser, namespace: argparse.Namespace) -> dict | None:
    """Contribute extra keys to the recorded params (e.g. git's ``commit``). **collector**

    Called once per run, after ``on_parse``, before the run folder exists.
    Every returned dict is merged into the params written by :func:`storage`.
    """


# ---------------------------------------------------------------------------
# run creation: id, folder, files
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def location(parser: ExParser, namespace: argparse.Namespace, options: dict) -> Path | None:
    """Return the folder that will hold the new run folder (``runs/``, ``tmp/``). **provider**

    ``options`` holds the values of exman's own options (``exman_tmp``, ...),
    which are kept out of the namespace. Stops at the first non-None result; the default answers ``parser.runs``.
    """


@hookspec(firstresult=True)
def claim_id(parser: ExParser) -> int | None:
    """Atomically reserve a new run number for this root and return it. **provider**

    Must be safe with many processes (and hosts) claiming at once: two callers
    never get the same number. Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def peek_id(parser: ExParser) -> int | None:
    """The number the next :func:`claim_id` would give, without claiming it. **provider**

    Called by ``ExParser.next_ex()`` (0.1.9's API) only; the answer is a hint.
    """


@hookspec(firstresult=True)
def naming(parser: ExParser, number: int, time: Any, name: str | None) -> str | None:
    """Return the run folder's name for ``number`` started at ``time``. **provider**

    ``name`` is the user's ``--name`` suffix, already checked to be a safe
    single path component. Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def storage(run: Run, params: dict) -> Path | None:
    """Write the run's params file into ``run.path`` and return its path. **provider**

    ``params`` holds plain YAML/JSON values only. Write atomically
    (``exman.fs.atomic_write``). Stops at the first non-None result.
    """


@hookspec
def on_run_start(run: Run) -> None:
    """A run folder exists with its params; record, link, announce. **event**

    Called at the end of ``ExParser.parse_args``. Index links, automarks,
    run metadata, git diffs live here.
    """


# ---------------------------------------------------------------------------
# running: inside ``with args.safe_experiment as run``
# ---------------------------------------------------------------------------


@hookspec
def on_experiment_enter(run: Run) -> None:
    """The ``with args.safe_experiment`` block is entered (log capture starts). **event**"""


@hookspec
def on_log(run: Run, row: dict) -> None:
    """``run.log(...)`` was called; ``row`` has ``step``, ``time`` and the scalars. **event**"""


@hookspec
def on_run_end(run: Run, status: str, exc_info: tuple | None) -> None:
    """The run finished with ``status`` (completed, failed, interrupted). **event**

    Called when the ``safe_experiment`` block exits, or at interpreter exit for
    scripts that never entered one. ``exc_info`` is ``None`` on success.
    Runs before :func:`on_fail`, so the final status travels with a moved run.
    """


@hookspec
def on_fail(run: Run, exc_info: tuple) -> None:
    """The run raised: unlink it from the index and marks, set it aside. **event**

    Called after :func:`on_run_end` for status ``failed``. The plugin that
    moves the folder runs last and updates ``run.path``.
    """


# ---------------------------------------------------------------------------
# reading: the Index and the command line
# ---------------------------------------------------------------------------


@hookspec
def indexing(run_path: Path, record: dict) -> dict | None:
    """Contribute columns for one run to ``Index.info()``. **collector**

    Called by the Index each time it (re)reads a run. ``record`` holds
    ``id``, ``name``, ``params`` and ``metrics`` (last values) and ``meta``
    (``run.json`` as read; its ``schema`` may be left out). Return a dict of
    column name to plain value, or None. Results are cached with the run and
    recomputed when its params file, ``metrics.jsonl``, ``run.json`` or the
    folder's entries change: write result files anew or with
    ``exman.fs.atomic_write``. A name taken by an exman column gets ``_plugin``.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add subcommands to the ``exman`` click group. **event**

    Called by ``exman.cli.main`` after every plugin is loaded. A command finds
    and prints runs with ``exman.cli``'s toolkit (docs/plugins.md), never by
    importing another command.
    """


@hookspec
def register_launchers(register: Callable[..., None]) -> None:
    """Provide sweep launchers: call ``register(name, launch)`` once per launcher. **collector**

    Called by ``exman.sweep`` (and ``exman sweep``/``sweeps``) before anything is
    written, with the plugin manager a script gets plus the launcher plugins, never
    the command line. The driver then calls the chosen launcher directly:

    ``launch(jobs, options, progress)`` runs a sweep's jobs, once per sweep or resume,
    in the main thread. ``jobs`` are ``exman.sweeps.jobs.Job`` objects (picklable:
    ``argv``, ``cwd``, ``env`` to add, ``log`` file, ``cell``, ``params``);
    ``exman.sweeps.jobs.start_job(job)`` / ``run_job(job, should_stop)`` run one as a
    child in its own session. ``options`` holds ``jobs`` (parallelism),
    ``scheduler``, ``root``, ``sweep_id`` and any ``-o KEY=VALUE``. Report to
    ``progress.started(job)`` and ``progress.finished(job, returncode)``. When
    ``progress.stopping`` is set (SIGINT/SIGTERM), start nothing new, send SIGTERM
    to running children and wait for them; when ``progress.killing`` is set,
    SIGKILL them. Return ``{cell: returncode}`` (None for a job never started).

    Optional keywords of ``register``:

    - ``can_detach(options)``: True if the launcher can queue the jobs and let
      ``exman sweep`` exit (``--detach``), else one line saying why not. Without
      it ``--detach`` is refused. Detached, ``launch`` gets ``options["detach"]``,
      hands the jobs to the outside system and returns ``{cell: None}`` at once.
    - ``queued(root, sweep_id)``: ``{cell: state}`` of the sweep's jobs a scheduler
      still holds (SLURM's words: ``PENDING``, ``RUNNING``, ...), ``{}`` when none
      are, None when this launcher queued nothing for the sweep. Asked of every
      launcher by ``--status``, ``exman sweeps`` and ``--resume`` (which never
      reruns such a cell); raise ``exman.errors.SweepError`` (one line) when the
      scheduler cannot be asked.

    A name registered twice goes to the plugin registered last (called first),
    so an installed launcher replaces a default one of the same name.
    """
