#!/usr/bin/env bash
# Step time of 2 ranks × 1 thread over shared memory and over the emulated cluster
# (bench/cluster.sh) at 1 and 10 Gb/s, blocking (--bucket-mb 0) against overlapped (the default
# buckets), interleaved in rounds; one line per run: round, preset, transport, mode, median ms per
# step, the allreduce phase (ms per step: the wait after the backward pass). Needs root.
#
#   bench/cluster-bench.sh [--rounds N] [--presets "S M"] [--binary PATH] [--baseline PATH]
#
# --baseline: another gradflow binary run over TCP as "baseline" (e.g. a build before the change).
set -u
cd "$(dirname "$0")/.."
rounds=3; presets="S M"; binary=.build/release/gradflow; baseline=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --presets) presets=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --baseline) baseline=$2; shift 2 ;;
        *) echo "cluster-bench.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

steps() { [ "$1" = M ] && echo "--steps 4 --warmup 2" || echo "--steps 15 --warmup 3"; }
report() {   # report ROUND PRESET TRANSPORT MODE < bench output
    awk -v r="$1" -v p="$2" -v t="$3" -v m="$4" '
        /ms\/step/ { ms = $3 } $1 == "allreduce" { ar = $2 }
        END { printf "%s\t%s\t%s\t%s\t%s\t%s\n", r, p, t, m, ms == "" ? "failed" : ms, ar == "" ? "-" : ar }'
}
printf "round\tpreset\ttransport\tmode\tms/step\tallreduce ms\n"
for round in $(seq 1 "$rounds"); do
    for preset in $presets; do
        args="bench --preset $preset --threads 1 $(steps $preset) --profile"
        for mode in blocking overlapped; do
            bucket=$([ $mode = blocking ] && echo "--bucket-mb 0" || echo "")
            OMPI_MCA_btl=self,vader OMPI_MCA_oob_tcp_if_include=lo \
                mpirun -np 2 --oversubscribe --stdin none "$binary" $args $bucket 2>&1 | report "$round" "$preset" shm $mode
        done
        for bw in 1gbit 10gbit; do
            if [ -n "$baseline" ]; then
                bench/cluster.sh 2 $bw -- "$baseline" $args 2>&1 | report "$round" "$preset" "$bw" baseline
            fi
            for mode in blocking overlapped; do
                bucket=$([ $mode = blocking ] && echo "--bucket-mb 0" || echo "")
                bench/cluster.sh 2 $bw -- "$binary" $args $bucket 2>&1 | report "$round" "$preset" "$bw" $mode
            done
        done
    done
done
