"""A notebook's pattern: parse (which records a run), then shell out to `exman delete --all` for
that same run while this process, which started it, is still alive."""
import json
import os
import subprocess

import exman
from _show import note

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.1)

args = parser.parse_args([])
command = json.loads(os.environ["EXMAN_COMPAT_CLI"])  # the exman command of the version under test
proc = subprocess.run(command + ["delete", "--all", "1"], cwd=str(parser.root), capture_output=True,
                      text=True, stdin=subprocess.DEVNULL)
lines = proc.stderr.strip().splitlines()
note("delete --all of the live run", exit=proc.returncode, stderr=lines[-1] if lines else "",
     folder_left=os.path.isdir(str(args.root)))
