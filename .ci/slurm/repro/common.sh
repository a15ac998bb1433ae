# Sourced by the reproduction scripts beside it (see CONTRIBUTING.md, "The SLURM test cluster"). Starts or finds the
# cluster of ../start (EXMAN_SLURM_ACCOUNTING=0 for a cluster without accounting) and gives:
#   work NAME      a fresh folder $EXMAN_REPRO_DIR/NAME (default /tmp/exman-repro) with script.py
#   ts             seconds since `work`
#   runs ROOT      one line per run.json: folder, id, cell, status
#   array_id ROOT  the SLURM job id of the (only) sweep under ROOT, once submitted
#   wait_runs ROOT N   until N run folders exist
# exman must be on PATH (activate the venv it is installed in); `python` is that venv's.
set -u
_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_env=$("$_here/../start") || exit 1
eval "$_env"
command -v exman >/dev/null || { echo "exman is not on PATH: activate its venv" >&2; exit 1; }
PY=$(dirname "$(command -v exman)")/python
[ -x "$PY" ] || PY=python

work() {
    local dir="${EXMAN_REPRO_DIR:-/tmp/exman-repro}/$1"
    rm -rf "$dir"; mkdir -p "$dir"; cd "$dir" || exit 1
    cat > script.py <<'PYEOF'
import os, sys, time
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--x", type=int, default=0)
parser.add_argument("--sleep", type=float, default=0.0)
args = parser.parse_args()
with args.safe_experiment as run:
    print(f"run {run.id} started on {os.uname().nodename} job={os.environ.get('SLURM_JOB_ID')} "
          f"task={os.environ.get('SLURM_ARRAY_TASK_ID')} restart={os.environ.get('SLURM_RESTART_COUNT')}",
          flush=True)
    time.sleep(args.sleep)
    run.log(y=args.x * 2)
PYEOF
    T0=$(date +%s.%N)
}
ts() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%6.1f", b - a }'; }
runs() {
    "$PY" - "$1" <<'PYEOF'
import json, sys, pathlib
root = pathlib.Path(sys.argv[1])
for sub in ("runs", "fails", "tmp"):
    for p in sorted((root / sub).glob("*/run.json")):
        m = json.loads(p.read_text())
        print(f"  {sub}/{p.parent.name}  id {m['id']}  cell {m.get('sweep_cell')}  {m['status']}")
PYEOF
}
array_id() {
    until ls "$1"/sweeps/*/submitit/*_submitted.pkl >/dev/null 2>&1; do sleep 0.2; done
    ls "$1"/sweeps/*/submitit/ | grep -o '^[0-9]*' | head -n1
}
wait_runs() { until [ "$(ls "$1/runs" 2>/dev/null | wc -l)" -ge "$2" ]; do sleep 0.2; done; }
alive() { kill -0 "$1" 2>/dev/null && echo yes || echo no; }
