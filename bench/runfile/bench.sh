#!/usr/bin/env bash
# Times reading and summarising a run file of 1,000,000 step records (docs/PERFORMANCE.md, "Run file").
#
#   bench/runfile/bench.sh [RECORDS] [FILE]
#
# Builds gradflow in release mode; `gradflow bench --run-file` writes FILE (default
# /tmp/gradflow-bench-RECORDS.jsonl, about 1.7 KB per step record, shaped like a preset-S run with
# every statistic) through the real encoder when it is missing, reads it once to warm the page
# cache, then times three reads-and-summaries (the work of `gradflow replay --summary-only`).
# The same file is then timed through the command line itself, with /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/../.."
records="${1:-1000000}"
file="${2:-/tmp/gradflow-bench-$records.jsonl}"
scratch="${SCRATCH:-.build}"
swift build -c release --product gradflow --scratch-path "$scratch" >/dev/null
bin="$scratch/release/gradflow"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)  cores: $(nproc)"
"$bin" bench --run-file --records "$records" --rounds 3 --file "$file"
for i in 1 2 3; do
    /usr/bin/time -f "replay --summary-only: wall %e s  user %U s  sys %S s  max RSS %M KB" \
        "$bin" replay "$file" --speed 0 --no-tui --summary-only > /dev/null
done
