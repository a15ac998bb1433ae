"""``exman sweep`` and ``exman sweeps``: run a grid of an argparse script, resume it, show its cells.

The command only turns options into a call of ``exman.sweep`` (which owns the
logic) and prints; launchers are plugins (the ``register_launchers`` hook).
"""

from __future__ import annotations

import shlex
import sys

import click

from exman import hookimpl
from exman.cli import os_error_line


def _options(pairs) -> dict:
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE", param_hint="-o/--option")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _owner(root, sweep_id) -> str:
    """ "; being run by pid N on HOST" while a process runs the sweep: its missing cells are still to come."""
    from exman.sweeps.records import owner_of

    who = owner_of(root, sweep_id)
    return f"; being run by {who}" if who else ""


def _print_status(root, sweep_id) -> None:
    from exman.sweeps import driver as sw
    from exman.sweeps.records import counts_line

    df = sw.status(root, sweep_id)
    click.echo(df.to_string(index=False))
    click.echo(f"sweep {sweep_id}: {counts_line(df.to_dict('records'))}{_owner(root, sweep_id)}")
    if df.attrs.get("queued_error"):
        click.echo(f"warning: {df.attrs['queued_error']}; cells still queued there show as missing", err=True)
    if df.attrs.get("adaptive"):
        cells = sw.decisions(root, sweep_id)
        rule = cells.attrs["rule"]
        click.echo("")
        click.echo(
            f"{rule['interest']} per grid cell after {cells.attrs['looks']} of at most {rule['rounds']} look(s) "
            f"(replicates {rule['min']}..{rule['max']}, CI {rule.get('level', 0.95):.0%}):"
        )
        click.echo(cells.to_string(index=False))


@hookimpl
def register_commands(cli):
    @cli.command("sweep", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
    @click.option(
        "-p",
        "--param",
        "params",
        multiple=True,
        metavar="NAME=VALUES",
        help="grid axis: lr=0.1,0.01 | lr=log:1e-4:1e-1:4 | n=lin:0:1:5 | seed=range:0:5[:STEP] | "
        "hidden=[32,32],[128] (a list argument)",
    )
    @click.option(
        "-z",
        "--zip",
        "zipped",
        multiple=True,
        metavar="NAME=VALUES",
        help="parameters that vary together (equal lengths): -z a=1,2 -z b=x,y",
    )
    @click.option(
        "--repeat", type=click.IntRange(min=1), metavar="N", help="repeat every combination with --seed 0..N-1"
    )
    @click.option("--repeat-key", default="seed", show_default=True, metavar="NAME", help="the option --repeat varies")
    @click.option(
        "--file",
        "file",
        type=click.Path(dir_okay=False),
        metavar="SWEEP.yaml",
        help="YAML sweep file: command, grid, zip, repeat, jobs, launcher, scheduler, options",
    )
    @click.option(
        "-j", "--jobs", type=click.IntRange(min=1), metavar="N", help="runs at a time (default: the CPU count)"
    )
    @click.option("--launcher", metavar="NAME", help="local (default), dask, submitit, or a plugin's")
    @click.option("--scheduler", metavar="ADDRESS", help="dask scheduler, e.g. tcp://host:8786")
    @click.option(
        "-o",
        "--option",
        "launcher_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="launcher option, e.g. -o cluster=local -o timeout_min=60 (submitit)",
    )
    @click.option(
        "--until",
        metavar="'ci(NAME) <= W'",
        help="adaptive: add seeds to a cell until the CI of NAME is at most W wide (needs --repeat, --max-repeat)",
    )
    @click.option(
        "--race",
        metavar="'max(NAME)'|'min(NAME)'",
        help="stop adding seeds to cells significantly worse than the best one on NAME",
    )
    @click.option("--max-repeat", type=click.IntRange(min=2), metavar="N", help="adaptive: the most seeds a cell gets")
    @click.option(
        "--alpha",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        metavar="A",
        help="racing: error rate over the whole sweep (default 0.05, split over the looks)",
    )
    @click.option(
        "--max-rounds",
        type=click.IntRange(min=1),
        metavar="R",
        help="adaptive: at most R rounds of launches and looks (default 4)",
    )
    @click.option("--shuffle", type=int, metavar="SEED", help="run the cells in a random order drawn from SEED")
    @click.option("--dry-run", is_flag=True, help="print one command line per combination; start nothing")
    @click.option("--resume", metavar="SWEEP_ID", help="rerun the cells of SWEEP_ID without a completed run")
    @click.option("--status", "status_id", metavar="SWEEP_ID", help="show each cell's runs by status")
    @click.option(
        "--detach",
        is_flag=True,
        help="queue the runs (submitit on SLURM) and exit; follow with --status ID, --resume ID",
    )
    @click.option("-q", "--quiet", is_flag=True, help="no progress output, only the summary")
    @click.argument("command", nargs=-1, type=click.UNPROCESSED)
    @click.pass_context
    def sweep_command(
        ctx,
        params,
        zipped,
        repeat,
        repeat_key,
        file,
        jobs,
        launcher,
        scheduler,
        launcher_options,
        until,
        race,
        max_repeat,
        alpha,
        max_rounds,
        shuffle,
        dry_run,
        resume,
        status_id,
        detach,
        quiet,
        command,
    ):
        """Run COMMAND once per combination of parameters, in parallel, as recorded exman runs.

        Each combination runs `COMMAND ARGS --NAME VALUE ...` with EXMAN_RUN_ROOT,
        EXMAN_SWEEP_ID and EXMAN_SWEEP_CELL set, so the script records into this
        root and each run knows its sweep. The spec is saved as ROOT/sweeps/ID.yaml.
        Exits non-zero when any combination failed or the sweep was stopped.

        \b
        Examples:
          exman --root exman sweep -p lr=0.1,0.01 -p bs=32,64 --jobs 2 -- python train.py
          exman sweep -p lr=log:1e-4:1e-1:4 --repeat 3 --dry-run -- python train.py
          exman sweep -p lr=0.1,0.01 --repeat 3 --max-repeat 10 --until 'ci(acc) <= 0.01' --race 'max(acc)' -- python train.py
          exman sweep --launcher submitit --detach -p lr=0.1,0.01 -- python train.py
          exman sweep --resume 20260101-120000-ab12
          exman sweep --status 20260101-120000-ab12
        """
        from exman.sweeps import driver as sw
        from exman.sweeps.grid import SweepError, parse_assignment

        state = ctx.obj
        explicit_root = state.given  # --root or $EXMAN_ROOT, before or after the command
        try:
            if status_id:
                if detach:
                    raise click.UsageError("--status only reads the sweep; --detach is for starting or resuming one")
                _print_status(state.root, status_id)
                return
            opts = _options(launcher_options)
            common = dict(jobs=jobs, launcher=launcher, scheduler=scheduler, options=opts, quiet=quiet)
            adaptive = dict(
                until=until, race=race, max_repeat=max_repeat, alpha=alpha, max_rounds=max_rounds, shuffle=shuffle
            )
            if resume:
                if command or params or zipped or repeat or file or any(v is not None for v in adaptive.values()):
                    raise click.UsageError(
                        "--resume takes no command, -p, -z, --repeat, --file or adaptive option: the spec has them"
                    )
                result = sw.resume(resume, root=state.root, dry_run=dry_run, detach=detach, pm=state.pm, **common)
            else:
                grid = dict(parse_assignment(p) for p in params)
                if len(grid) != len(params):
                    raise SweepError("a parameter is given twice with -p")
                zip_group = dict(parse_assignment(z) for z in zipped) or None
                root = None if dry_run else (explicit_root if explicit_root is not None else state.root)
                result = sw.sweep(
                    list(command) or None,
                    grid,
                    zip=zip_group,
                    repeat={"count": repeat, "key": repeat_key} if repeat else None,
                    file=file,
                    dry_run=dry_run,
                    root=root,
                    pm=state.pm,
                    detach=detach,
                    **adaptive,
                    **common,
                )
        except SweepError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # a read-only, foreign-owned or full root: one line, not a traceback
            raise click.ClickException(os_error_line(exc)) from None
        if dry_run:
            for argv in result:
                click.echo(shlex.join(argv))
            return
        click.echo(result.summary(str(explicit_root) if explicit_root is not None else None))
        sys.exit(result.exit_code)

    @cli.command("sweeps")
    @click.pass_obj
    def sweeps_command(state):
        """List the sweeps saved under the root with their cells' state.

        \b
        Example:
          exman sweeps
        """
        from exman.sweeps import driver as sw
        from exman.sweeps.grid import SweepError
        from exman.sweeps.records import counts_line, list_sweeps, load_spec

        root = state.root
        if not list_sweeps(root):
            click.echo(f"no sweeps in {root} (start one with: exman sweep -p NAME=V1,V2 -- COMMAND)", err=True)
        for sweep_id in list_sweeps(root):
            try:
                spec = load_spec(root, sweep_id)
            except SweepError as exc:
                click.echo(f"{sweep_id}  unreadable: {exc}")
                continue
            rows, error = sw.cell_rows(root, spec, state.pm)
            click.echo(f"{sweep_id}  {counts_line(rows)}{_owner(root, sweep_id)}  {shlex.join(spec['command'])}")
            if error:
                click.echo(f"  warning: {error}", err=True)
