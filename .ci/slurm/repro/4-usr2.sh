#!/usr/bin/env bash
# Failure 4 (variant): SIGUSR2 long before the time limit (what submitit's job._interrupt() and
# clusters that signal preemption with USR2 send): submitit requeues the task itself.
source "$(dirname "$0")/common.sh"
work 4-usr2
exman --root root sweep --launcher submitit -o timeout_min=60 -p x=1,2 -p sleep=40 --jobs 2 -- python script.py > sweep.out 2>&1 &
SW=$!
ARR=$(array_id root); wait_runs root 2; sleep 1
echo "$(ts) scancel --signal=USR2 ${ARR}_0"; scancel --signal=USR2 "${ARR}_0"
sleep 2; echo "$(ts) ${ARR}_0: $(scontrol show job "${ARR}_0" | grep -o 'JobState=[^ ]*\|Reason=[^ ]*\|Restarts=[^ ]*' | tr '\n' ' ')"
wait $SW; rc=$?; echo "$(ts) sweep exit $rc"; grep -v "^\s*$" sweep.out
echo "--- runs (running = its process is gone: crashed)"; runs root
echo "--- submitit log of the first attempt"; grep -h "Caught\|Requeued\|srun" root/sweeps/*/submitit/"${ARR}"_0_0_log.err | head
echo "--- sacct -D"; sacct -D -n -P -X -j "$ARR" -o JobID,State,ExitCode,Start,End | sed 's/^/  /'
