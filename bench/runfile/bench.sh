#!/usr/bin/env bash
# Times reading and summarising a run file of 1,000,000 step records (docs/PERFORMANCE.md, "Run file").
#
#   bench/runfile/bench.sh [STEPS] [FILE]
#
# Generates FILE (default /tmp/gradflow-bench-STEPS.jsonl, about 2.5 KB per step record) once with
# gen_run.py, builds gradflow in release mode, reads the file once to warm the page cache, then
# times `gradflow replay FILE --speed 0 --no-tui --summary-only` three times.
set -euo pipefail
cd "$(dirname "$0")/../.."
steps="${1:-1000000}"
file="${2:-/tmp/gradflow-bench-$steps.jsonl}"
scratch="${SCRATCH:-.build}"
[ -f "$file" ] || python3 bench/runfile/gen_run.py "$file" "$steps"
ls -l "$file"
swift build -c release --product gradflow --scratch-path "$scratch" >/dev/null
bin="$scratch/release/gradflow"
cat "$file" > /dev/null
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)  cores: $(nproc)"
for i in 1 2 3; do
    /usr/bin/time -f "wall %e s  user %U s  sys %S s  max RSS %M KB" "$bin" replay "$file" --speed 0 --no-tui --summary-only | head -2
done
