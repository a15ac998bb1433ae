#!/usr/bin/env bash
# Failure 3: preemption (PreemptMode=REQUEUE) of N running array tasks by a job in partition
# `high` that needs every CPU. Prints the exit codes the sweep reports and the runs' statuses.
#   3-preempt.sh [N=6]
source "$(dirname "$0")/common.sh"
N=${1:-6}
work 3-preempt
exman --root root sweep --launcher submitit -p "x=range:0:$N" -p sleep=60 --jobs "$N" -- python script.py > sweep.out 2>&1 &
SW=$!
ARR=$(array_id root); wait_runs root "$N"; sleep 2
echo "$(ts) array $ARR: $(squeue -r -h -o '%i:%T' -j "$ARR" | tr '\n' ' ')"
HJ=$(sbatch --parsable -p high -c "$(sinfo -h -p high -o %c)" -o /dev/null -J preemptor --wrap 'sleep 3')
echo "$(ts) preemptor job $HJ submitted"
for _ in $(seq 1 120); do kill -0 $SW 2>/dev/null || break; sleep 0.5; done
kill -0 $SW 2>/dev/null && { echo "$(ts) sweep still running 60 s after the preemption: SIGKILL"; kill -KILL $SW; }
wait $SW; rc=$?; echo "$(ts) sweep exit $rc"
grep -v "^cell .*submitit job .* failed" sweep.out
echo "--- runs (running = its process is gone: crashed)"; runs root
echo "--- SLURM: $(squeue -r -h -o '%i:%T:%r' -j "$ARR" | tr '\n' ' ')"
scancel "$ARR"   # no reruns in ~120 s for this reproduction
echo "--- exceptions in the tasks' submitit logs"
cat root/sweeps/*/submitit/*_log.err | grep -h "^[a-zA-Z_.]*\(Error\|_Stop\|Exception\)[:]\|During handling" | sort | uniq -c
