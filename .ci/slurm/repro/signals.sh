#!/usr/bin/env bash
# What SLURM sends, and when, to the processes of a job on scancel, requeue, preemption and a time
# limit. The job runs like a submitit task (`srun python ...` in a batch script); the python
# process logs every signal, ignores SIGTERM, and starts a child in its own session that does
# the same. Each process writes a tick every 0.2 s: its last tick is when SIGKILL came.
#   signals.sh [scancel|requeue|preempt|timelimit]...    (timelimit takes ~90 s)
source "$(dirname "$0")/common.sh"
work signals
cat > siglog.py <<'PYEOF'
import os, signal, subprocess, sys, time
role = sys.argv[1] if len(sys.argv) > 1 else "task"
log = os.environ["SIGLOG"]
def w(msg):
    with open(log, "a") as f:
        f.write(f"{time.time():.2f} {role} {msg}\n")
def h(signum, frame):
    w(f"got {signal.Signals(signum).name}")
for s in (signal.SIGTERM, signal.SIGCONT, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
    signal.signal(s, h)
w(f"start (SLURM_RESTART_COUNT={os.environ.get('SLURM_RESTART_COUNT')})")
if role == "task":
    subprocess.Popen([sys.executable, __file__, "child-in-own-session"], start_new_session=True)
while True:
    time.sleep(0.2)
    with open(f"{log}.{role}.tick", "w") as f:
        f.write(f"{time.time():.2f}")
PYEOF
one() {
    local name=$1 args=$2 action=$3 wait=$4 jid t0
    rm -f "$name.log" "$name.log".*.tick
    # shellcheck disable=SC2086
    jid=$(SIGLOG="$PWD/$name.log" sbatch --parsable $args -o /dev/null --wrap "srun python3 $PWD/siglog.py")
    until grep -q child "$name.log" 2>/dev/null; do sleep 0.1; done
    sleep 1
    t0=$(date +%s.%N)
    eval "$action"
    sleep "$wait"
    echo "== $name (job $jid): t=0 is: $action"
    awk -v t0="$t0" '{ $1 = sprintf("%+7.2f", $1 - t0); print "  " $0 }' "$name.log"
    for f in "$name".log.*.tick; do
        echo "  $(echo "$f" | cut -d. -f3): last tick at $(awk -v t0="$t0" '{ printf "%+.2f", $1 - t0 }' "$f") (killed then)"
    done
    echo "  sacct: $(sacct -n -P -j "$jid" -o JobID,State,ExitCode,Elapsed 2>/dev/null | tr '\n' ' ')"
    echo "  now: $(scontrol show job "$jid" 2>/dev/null | grep -o 'JobState=[^ ]*\|Reason=[^ ]*\|Restarts=[^ ]*\|StartTime=[^ ]*' | tr '\n' ' ')"
    scancel "$jid" 2>/dev/null; sleep 6
}
for case in "${@:-scancel requeue preempt}"; do
    for c in $case; do
        case $c in
            scancel) one scancel "" 'scancel $jid' 8 ;;
            requeue) one requeue "" 'scontrol requeue $jid' 8 ;;
            preempt) one preempt "" 'sbatch -p high -c $(sinfo -h -p high -o %c) -o /dev/null -J preemptor --wrap "sleep 3" >/dev/null' 8 ;;
            timelimit) one timelimit "--time=1 --signal=USR2@90" 'true' 95 ;;
        esac
    done
done
