"""The scenarios: every feature of the 0.1.9 README and the patterns real scripts rely on.

Each is played once under 0.1.9 and once under ours (see harness.py); the
scripts are in ``scripts/``. Labels name the steps in difference paths.
"""

from __future__ import annotations

from .harness import SCRIPTS, Cli, Observe, Pause, Run, Scenario

SCENARIOS = (
    Scenario(
        "record",
        "README 'Simple Start' and 'Directory Structure': typed arguments from the command line, "
        "params.yaml, the index link, Index.info() types (time datetime64, root pathlib.Path, list values)",
        ("train.py",),
        (
            Run("defaults", "train.py"),
            Run(
                "typed",
                "train.py",
                (
                    "--lr",
                    "0.5",
                    "--epochs",
                    "3",
                    "--optimizer",
                    "adam",
                    "--augment",
                    "no",
                    "--layers",
                    "1",
                    "2",
                    "3",
                    "--tag",
                    "7",
                ),
            ),
            Observe("final"),
        ),
    ),
    Scenario(
        "strings",
        "parse_args with an argv list, with one whitespace string, and with a string starting with a short option",
        ("strings.py",),
        (
            Run("list", "strings.py", ("list",)),
            Run("empty list", "strings.py", ("empty",)),
            Run("short string", "strings.py", ("short",)),
            Observe("final"),
            Run("long string", "strings.py", ("long",)),
        ),
    ),
    Scenario(
        "own_options",
        "exman's own options in the namespace: args.tmp, args.name, args.git_dirty, args.config_file, "
        "'root' in args, os.makedirs(path, exist_ok=args.tmp)",
        ("own_options.py",),
        (
            Run("plain", "own_options.py", ("--seed", "1")),
            Run("tmp and name", "own_options.py", ("--tmp", "--name", "dbg")),
            Run("rerun", "own_options.py", ("--config", "{index:1}")),
            Observe("final"),
        ),
    ),
    Scenario(
        "tmp_and_name",
        "--tmp (tmp/, no index link), --name (folder suffix, the name column), ids across runs/ and tmp/",
        ("train.py",),
        (
            Run("tmp", "train.py", ("--tmp",)),
            Run("named", "train.py", ("--name", "baseline")),
            Run("tmp named", "train.py", ("--tmp", "--name", "scratch")),
            Run("plain", "train.py", ("--lr", "0.2")),
            Observe("final"),
        ),
    ),
    Scenario(
        "empty_index",
        "Index.info() of a root whose index is still empty (its only run is a --tmp run)",
        ("train.py",),
        (
            Run("tmp", "train.py", ("--tmp",)),
            Observe("empty index"),
        ),
    ),
    Scenario(
        "safe_experiment",
        "README 'Error Handling in main': a completed run, a failing one (moved to fails/ with traceback.txt), "
        "a failing --tmp run, an interrupted one (kept), log.txt, a run failing before it printed anything",
        ("train.py",),
        (
            Run("ok", "train.py"),
            Run("crash", "train.py", ("--outcome", "crash")),
            Run("tmp crash", "train.py", ("--outcome", "crash", "--tmp")),
            Run("interrupt", "train.py", ("--outcome", "interrupt")),
            Run("silent crash", "train.py", ("--outcome", "crash", "--epochs", "0")),
            Observe("final"),
        ),
    ),
    Scenario(
        "optional",
        "README 'Optional Parameters': exman.optional(int) with a value and with 'none', each rerun with --config",
        ("train.py",),
        (
            Run("value", "train.py", ("--patience", "5")),
            Run("none", "train.py", ("--patience", "none")),
            Run("rerun value", "train.py", ("--config", "{index:1}")),
            Run("rerun none", "train.py", ("--config", "{index:2}")),
            Observe("final"),
        ),
    ),
    Scenario(
        "validators",
        "README 'Validators': validators returning True, None, False, an error string or 1, one that raises; "
        "an uncaught refusal",
        ("validators.py",),
        (
            Run("each verdict", "validators.py", ("all",)),
            Run("uncaught refusal", "validators.py", ("false",)),
        ),
    ),
    Scenario(
        "setters",
        "register_setter fills in a value, the validator checks it; --config rerun of a run with a set value",
        ("setters.py",),
        (
            Run("set", "setters.py", ("--width", "5")),
            Run("refused", "setters.py", ("--width", "50")),
            Observe("final"),
            Run("rerun", "setters.py", ("--config", "{index:1}", "--depth", "4")),
        ),
    ),
    Scenario(
        "rerun",
        "README 'Rerunning experiment': --config restores every value, overrides win, volatile=True is not "
        "restored, --config of a run recorded with --name baseline, --config of the params file itself",
        ("train.py",),
        (
            Run(
                "first",
                "train.py",
                (
                    "--lr",
                    "0.3",
                    "--epochs",
                    "3",
                    "--optimizer",
                    "adam",
                    "--augment",
                    "no",
                    "--layers",
                    "1",
                    "2",
                    "3",
                    "--patience",
                    "2",
                    "--name",
                    "baseline",
                ),
                env={"JOB_ID": "111", "SLOT": "a"},
            ),
            Run("rerun", "train.py", ("--config", "{index:1}", "--epochs", "5"), env={"JOB_ID": "222", "SLOT": "b"}),
            Run("rerun params", "train.py", ("--config", "{params:1}")),
            Observe("final"),
        ),
    ),
    Scenario(
        "automark",
        "README 'Auto Structure': automark=['arg1', 'constant'], info(mark) at every depth, an unknown mark",
        ("automark.py",),
        (
            Run("a", "automark.py", ("--arg1", "a")),
            Run("b", "automark.py", ("--arg1", "b", "--seed", "1")),
            Run("a tmp", "automark.py", ("--arg1", "a", "--tmp")),
            Observe("final", marks=(None, "arg1", "arg1/a", "arg1/a/constant", "arg1/b/", "missing")),
        ),
    ),
    Scenario(
        "team",
        "README team recipe and 'Local Configuration': automark=['user'], --user from local.cfg, "
        "the command line wins over local.cfg, index.info('user/alice')",
        ("team.py",),
        (
            Run("from local.cfg", "team.py"),
            Run("bob", "team.py", ("--user", "bob", "--lr", "0.5")),
            Run("alice again", "team.py", ("--epochs", "4")),
            Observe("final", marks=(None, "user/alice", "user/bob", "user")),
        ),
        files={"local.cfg": "user: alice\nlr: 0.01\n"},
    ),
    Scenario(
        "meta_names",
        "script arguments named user, host, status, start, end, duration, sweep, sweep_cell, commit, dirty, "
        "with --name; a --config rerun",
        ("meta_names.py",),
        (
            Run("defaults", "meta_names.py", ("--name", "baseline")),
            Run(
                "values",
                "meta_names.py",
                (
                    "--user",
                    "bob",
                    "--host",
                    "cpu1",
                    "--status",
                    "final",
                    "--start",
                    "5",
                    "--end",
                    "6",
                    "--duration",
                    "2.5",
                    "--sweep",
                    "s2",
                    "--sweep-cell",
                    "c2",
                    "--commit",
                    "def456",
                    "--dirty",
                    "yes",
                ),
            ),
            Run("rerun", "meta_names.py", ("--config", "{index:2}")),
            Observe("final"),
        ),
    ),
    Scenario(
        "own_name",
        "a script written before exman had --name defines --name itself (with a default), as public scripts do",
        ("own_name.py",),
        (
            Run("defaults", "own_name.py"),
            Run("named", "own_name.py", ("--name", "wgan", "--critic", "yes")),
            Run("rerun", "own_name.py", ("--config", "{index:2}", "--steps", "5")),
            Observe("final"),
        ),
    ),
    Scenario(
        "layout_patterns",
        "patterns from public scripts: root spelled <script dir>/../exman with the script's folder a symlink, "
        "a description positional, a required short option, a str argument with an int default, a Path "
        "argument, type=bool, choices, a validator without a message, parse_args of one built string",
        (),
        (
            Run("no -v", "bin/layout_patterns.py"),
            Run("defaults", "bin/layout_patterns.py", ("-v", "1")),
            Run(
                "given",
                "bin/layout_patterns.py",
                ("-v", "2", "-e", "5", "--optimizer", "sgd", "--data_dir", "/tmp/digits", "-a", "3", "--augment", "no"),
            ),
            Run("keywords", "bin/layout_patterns.py", ("keywords",)),
            Run("rerun", "bin/layout_patterns.py", ("--config", "{index:2}", "--lr", "0.1")),
            Observe("final"),
        ),
        files={
            "tools/bin/layout_patterns.py": (SCRIPTS / "layout_patterns.py").read_text(),
            "tools/bin/_show.py": (SCRIPTS / "_show.py").read_text(),
        },
        links={"bin": "tools/bin"},
        root="tools/exman",
    ),
    Scenario(
        "deep_root",
        "ExParser(root=...) whose parent folders do not exist yet",
        ("deep_root.py",),
        (
            Run("first", "deep_root.py"),
            Observe("final"),
        ),
        root="scratch/project/exman",
    ),
    Scenario(
        "cli",
        "README 'Marking experiments' and 'Deleting experiments': exman mark (nested keys, unknown ids), "
        "exman delete, exman delete --all, then info() and info(mark)",
        ("train.py",),
        (
            Run("one", "train.py", ("--lr", "0.1")),
            Run("two", "train.py", ("--lr", "0.2")),
            Run("three", "train.py", ("--lr", "0.3")),
            Run("four", "train.py", ("--lr", "0.4")),
            Cli("mark best", ("mark", "best", "1", "3")),
            Cli("mark nested", ("mark", "a/b/c", "2", "4")),
            Cli("mark unknown", ("mark", "best", "4", "9")),
            Pause("later"),
            Observe("marked", marks=(None, "best", "a/b/c", "a")),
            Cli("delete", ("delete", "2")),
            Cli("delete all", ("delete", "--all", "3")),
            Cli("delete unknown", ("delete", "4", "9")),
            Observe("final", marks=(None, "best", "a/b/c", "a", "nothing")),
        ),
    ),
    Scenario(
        "delete_live",
        "a script (a notebook's kernel) records a run, then runs `exman delete --all` on it while alive",
        ("delete_live.py",),
        (
            Run("delete own run", "delete_live.py"),
            Observe("final"),
        ),
    ),
    Scenario(
        "mixed_root",
        "one root written by 0.1.9 and ours in turn (a team upgrading one machine at a time), read by both",
        ("train.py",),
        (
            Run("0.1.9 first", "train.py", ("--lr", "0.1"), impl="legacy"),
            Run("side second", "train.py", ("--lr", "0.2")),
            Run("0.1.9 third", "train.py", ("--lr", "0.3"), impl="legacy"),
            Run("side fourth", "train.py", ("--lr", "0.4")),
            Run("0.1.9 tmp", "train.py", ("--tmp",), impl="legacy"),
            Run("side fifth", "train.py", ("--lr", "0.5")),
            Observe("final"),
            Observe("read by 0.1.9", impl="legacy"),
        ),
    ),
    Scenario(
        "legacy_root",
        "a root 0.1.9 wrote, read and edited with the CLI by the side under test: info() before and after "
        "the edits, cached and uncached; then one of its runs rerun with --config",
        ("train.py",),
        (
            Run("one", "train.py", ("--epochs", "1", "--augment", "yes"), impl="legacy"),
            Run("two", "train.py", ("--epochs", "2", "--augment", "no"), impl="legacy"),
            Run("three", "train.py", ("--epochs", "3", "--augment", "yes"), impl="legacy"),
            Pause("later"),
            Observe("read"),
            Cli("mark", ("mark", "best", "1", "3")),
            Cli("delete", ("delete", "2")),
            Observe("after edits", marks=(None, "best")),
            Observe("after edits uncached", uncached=True),
            Run("rerun a 0.1.9 run", "train.py", ("--config", "{index:1}", "--epochs", "4")),
        ),
    ),
)
