#!/usr/bin/env bash
# Failure 5: more cells than MaxArraySize, and a partition that does not exist.
source "$(dirname "$0")/common.sh"
work 5-sbatch-errors
MAX=$(scontrol show config | awk '$1 == "MaxArraySize" { print $3 }')
echo "MaxArraySize=$MAX: a sweep of $MAX cells (indices 0..$((MAX - 1))), then $((MAX + 1))"
exman --root ok sweep --launcher submitit -p "x=range:0:$MAX" --jobs 4 -- python script.py > ok.out 2>&1
echo "$MAX cells: exit $?, $(tail -n1 ok.out)"
exman --root big sweep --launcher submitit -p "x=range:0:$((MAX + 1))" --jobs 4 -- python script.py > big.out 2>&1
echo "$((MAX + 1)) cells: exit $?, $(wc -l < big.out) lines; first and last:"; head -n2 big.out; tail -n2 big.out
exman --root part sweep --launcher submitit -o slurm_partition=nope -p x=1,2 --jobs 2 -- python script.py > part.out 2>&1
echo "bad partition: exit $?, $(wc -l < part.out) lines; last:"; tail -n2 part.out
echo "--- the saved sweep: $(exman --root big sweeps 2>&1 | tail -n1)"
