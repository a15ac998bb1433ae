#!/usr/bin/env bash
# Failure 4: a time limit. -o timeout_min=1 gives `#SBATCH --time=1 --signal=USR2@90`: USR2 comes
# at once. `4-timelimit.sh 0` adds -o slurm_signal_delay_s=0: no early USR2, only the limit itself.
source "$(dirname "$0")/common.sh"
DELAY=${1:-}
work 4-timelimit
extra=(); [ -n "$DELAY" ] && extra=(-o "slurm_signal_delay_s=$DELAY")
exman --root root sweep --launcher submitit -o timeout_min=1 "${extra[@]}" -p x=1 -p sleep=150 --jobs 1 -- python script.py > sweep.out 2>&1 &
SW=$!
JOB=$(array_id root); wait_runs root 1
echo "$(ts) run started, job $JOB: $(grep -h '^#SBATCH --\(time\|signal\)' root/sweeps/*/submitit/*_submission.sh | tr '\n' ' ')"
for _ in $(seq 1 400); do kill -0 $SW 2>/dev/null || break; sleep 0.5; done
wait $SW; rc=$?; echo "$(ts) sweep exit $rc"
grep -v "^\s*$" sweep.out
echo "$(ts) sacct: $(sacct -n -P -j "$JOB" -o JobID,State,ExitCode,Elapsed | tr '\n' ' ')"
echo "$(ts) the run's process: $(pgrep -f 'script.py --x 1 --sleep' || echo gone)"
echo "--- runs (running = its process is gone: crashed)"; runs root
echo "--- submitit log"; grep -h "submitit\|Error:\|_Stop:\|srun" root/sweeps/*/submitit/*_log.err
