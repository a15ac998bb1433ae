#!/usr/bin/env bash
# Failure 6: a cluster without accounting. Restarts the cluster with EXMAN_SLURM_ACCOUNTING=0
# (run ../start without it afterwards to get accounting back).
export EXMAN_SLURM_ACCOUNTING=0
source "$(dirname "$0")/common.sh"
work 6-no-accounting
echo "sacct says: $(sacct 2>&1 | head -n1)"
T=$(date +%s.%N)
exman --root root sweep --launcher submitit -p x=1,2,3 -p sleep=20 --jobs 2 -- python script.py > sweep.out 2>&1; rc=$?
echo "exit $rc after $(awk -v a="$T" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s; $(wc -l < sweep.out) lines of output:" \
     "$(grep -c 'accounting storage is disabled' sweep.out) from sacct, $(grep -c 'Bypassing sacct' sweep.out) submitit warnings"
grep -v "Bypassing sacct\|accounting storage is disabled" sweep.out
grep -m1 "Bypassing sacct" sweep.out
echo "--- run.json durations"
"$PY" -c "
import json, glob
for p in sorted(glob.glob('root/runs/*/run.json')):
    m = json.load(open(p)); print('  run', m['id'], m['status'], m['duration'], 's')"
