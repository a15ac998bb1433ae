#!/usr/bin/env bash
# Failure 2: scontrol requeue of a running array task, then follow the advice (--resume), then let
# SLURM rerun the task (~120 s later; `2-requeue.sh fast` releases it at once instead).
source "$(dirname "$0")/common.sh"
FAST=${1:-}
work 2-requeue
exman --root root sweep --launcher submitit -p x=1,2 -p sleep=20 --jobs 2 -- python script.py > sweep.out 2>&1 &
SW=$!
ARR=$(array_id root); wait_runs root 2; sleep 2
echo "$(ts) array $ARR: $(squeue -r -h -o '%i:%T' -j "$ARR" | tr '\n' ' ')"
echo "$(ts) scontrol requeue ${ARR}_0"; scontrol requeue "${ARR}_0"
for _ in 1 2 3; do sleep 1; echo "$(ts) ${ARR}_0: $(scontrol show job "${ARR}_0" | grep -o 'JobState=[^ ]*\|Reason=[^ ]*\|Restarts=[^ ]*\|StartTime=[^ ]*' | tr '\n' ' ')"; done
if [ -n "$FAST" ]; then
    sleep 1; echo "$(ts) scontrol update jobid=${ARR}_0 StartTime=now"; scontrol update "jobid=${ARR}_0" StartTime=now
fi
wait $SW; rc=$?; echo "$(ts) sweep exit $rc"; grep -v "^\s*$" sweep.out
SID=$(basename root/sweeps/*.yaml .yaml)
echo "$(ts) --- runs"; runs root
echo "$(ts) --- following the advice: exman sweep --resume $SID"
exman --root root sweep --resume "$SID" 2>&1; rc=$?; echo "$(ts) resume exit $rc"
echo "$(ts) --- waiting for SLURM to finish ${ARR}_0 on its own"
until [ "$(scontrol show job "${ARR}_0" | grep -o 'JobState=[^ ]*')" = JobState=COMPLETED ]; do sleep 1; done
echo "$(ts) ${ARR}_0: $(scontrol show job "${ARR}_0" | grep -o 'JobState=[^ ]*\|Restarts=[^ ]*\|StartTime=[^ ]*' | tr '\n' ' ')"
echo "$(ts) --- runs"; runs root
exman --root root sweep --status "$SID"
"$PY" -c "import exman; print(exman.Index('root').summary(['y'])[['x', 'runs', 'y_count']])" 2>/dev/null
echo "--- sacct -D"; sacct -D -n -P -X -j "$ARR" -o JobID,State,ExitCode,Start,End | sed 's/^/  /'
