#!/usr/bin/env bash
# Per-run overhead: 8 runs of a trivial exman script at --jobs 2, local launcher against submitit
# on the test cluster, 3 rounds each.
source "$(dirname "$0")/common.sh"
work bench
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
T=$(date +%s.%N); python script.py --x 1 >/dev/null 2>&1
echo "one run of the script alone: $(awk -v a="$T" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s"
for round in 1 2 3; do
    for L in local submitit; do
        T=$(date +%s.%N)
        exman --root "root-$L-$round" sweep --launcher $L -p x=range:0:8 --jobs 2 -- python script.py > "$L-$round.out" 2>&1; rc=$?
        printf '%-8s round %s: exit %s, wall %s s\n' $L $round $rc "$(awk -v a="$T" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
