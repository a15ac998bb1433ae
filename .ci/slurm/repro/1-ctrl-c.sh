#!/usr/bin/env bash
# Failure 1 (Ctrl-C): SIGINT to a sweep with one task running and three pending, after WAIT s.
#   1-ctrl-c.sh [WAIT=70] [MAXWAIT=200]
source "$(dirname "$0")/common.sh"
WAIT=${1:-70}; MAXWAIT=${2:-200}
work 1-ctrl-c
exman --root root sweep --launcher submitit -p x=1,2,3,4 -p sleep=300 --jobs 1 -- python script.py > sweep.out 2>&1 &
SW=$!
ARR=$(array_id root)
sleep "$WAIT"
echo "$(ts) array $ARR: $(squeue -r -h -o '%i:%T:%r' -j "$ARR" | tr '\n' ' ')"
echo "$(ts) SIGINT"; kill -INT $SW; TI=$(date +%s.%N)
for _ in $(seq 1 $((2 * MAXWAIT))); do kill -0 $SW 2>/dev/null || break; sleep 0.5; done
if kill -0 $SW 2>/dev/null; then echo "$(ts) still running $MAXWAIT s after SIGINT: SIGKILL"; kill -KILL $SW; fi
wait $SW; rc=$?
echo "$(ts) sweep exit $rc, $(awk -v a="$TI" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after SIGINT"
echo "--- sweep output"; grep -v "Bypassing sacct\|accounting storage is disabled" sweep.out
echo "--- runs"; runs root
echo "--- sacct"; sacct -n -P -X -j "$ARR" -o JobID,State,ExitCode 2>&1 | sed 's/^/  /'
