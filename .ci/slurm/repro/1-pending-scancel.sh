#!/usr/bin/env bash
# Failure 1: scancel of an array task that is still PENDING; then SIGINT, SIGINT, SIGTERM to the sweep.
source "$(dirname "$0")/common.sh"
work 1-pending-scancel
exman --root root sweep --launcher submitit -p x=1,2,3 -p sleep=15 --jobs 1 -- python script.py > sweep.out 2>&1 &
SW=$!
ARR=$(array_id root); sleep 1
echo "$(ts) array $ARR: $(squeue -r -h -o '%i:%T:%r' -j "$ARR" | tr '\n' ' ')"
echo "$(ts) scancel ${ARR}_2 (pending)"; scancel "${ARR}_2"
sleep 2; echo "$(ts) scontrol show job ${ARR}_2: $(scontrol show job "${ARR}_2" 2>&1 | grep -o 'JobState=[^ ]*\|not found' | head -n1)"
sleep 38
echo "$(ts) sacct (even with accounting, no row for ${ARR}_2):"; sacct -n -P -X -j "$ARR" -o JobID,State 2>&1 | sed 's/^/  /'
echo "$(ts) sweep alive: $(alive $SW)"
echo "$(ts) SIGINT";  kill -INT $SW;  sleep 15; echo "$(ts) alive: $(alive $SW)"
echo "$(ts) SIGINT";  kill -INT $SW;  sleep 10; echo "$(ts) alive: $(alive $SW)"
echo "$(ts) SIGTERM"; kill -TERM $SW; sleep 15; echo "$(ts) alive: $(alive $SW)"
echo "$(ts) SIGKILL"; kill -KILL $SW; wait $SW; rc=$?; echo "$(ts) exit $rc"
echo "--- sweep output"; grep -v "Bypassing sacct\|accounting storage is disabled" sweep.out
echo "--- sacct warnings in the output: $(grep -c 'Bypassing sacct' sweep.out)"
echo "--- runs"; runs root
