#!/usr/bin/env bash
# Corpora larger than memory (issue 20, item 3): makes a text file of N GB (cheap generated text)
# and trains 3 steps on it, reporting the time to the first step record, peak RSS (VmHWM) and peak
# private memory (RssAnon, sampled every 50 ms), beside the same run on the embedded corpus, whose
# private memory is the model's footprint. Not part of CI.
#
#   bench/big-corpus.sh [GB] [DIR]        # default: 20 GB in /tmp; the file is kept for reruns
#   GRADFLOW=path/to/gradflow PRESET=S THREADS=2 COLD=1 bench/big-corpus.sh 20 /tmp
#
# COLD=1 drops the page cache first (root only), so the corpus is read from disk. The file is
# reused when it exists with the right size; delete it afterwards (rm DIR/gradflow-big-corpus-*).
set -euo pipefail
gb=${1:-20}
dir=${2:-/tmp}
bin=${GRADFLOW:-.build/release/gradflow}
preset=${PRESET:-S}
threads=${THREADS:-2}
[ -x "$bin" ] || { echo "no gradflow at $bin (swift build -c release, or set GRADFLOW)" >&2; exit 1; }
file="$dir/gradflow-big-corpus-${gb}g.txt"
bytes=$((gb * 1024 * 1024 * 1024))

if [ ! -f "$file" ] || [ "$(stat -c %s "$file")" -ne "$bytes" ]; then
  free=$(df -B1 --output=avail "$dir" | tail -1)
  if [ "$free" -lt $((bytes + 2 * 1024 * 1024 * 1024)) ]; then
    echo "not enough space in $dir for $gb GB (free: $((free / 1024 / 1024 / 1024)) GB); pick a smaller size or another folder" >&2
    exit 1
  fi
  echo "writing $file ($gb GB of generated text)..."
  block=$(mktemp)
  # 64 MiB of numbered lines with varying words, then the block repeated (cat runs at disk speed).
  awk 'BEGIN { srand(1); split("the of and to a in that is was he for it with as his on be at by had", w, " ");
               n = 0; while (n < 67108864) { s = "line " NR++ ":"; for (i = 0; i < 12; i++) s = s " " w[int(rand() * 20) + 1];
               print s; n += length(s) + 1 } }' > "$block"
  start=$(date +%s)
  : > "$file"
  while [ "$(stat -c %s "$file")" -lt "$bytes" ]; do cat "$block" >> "$file"; done
  truncate -s "$bytes" "$file"
  rm -f "$block"
  echo "written in $(( $(date +%s) - start )) s"
fi

if [ "${COLD:-0}" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches && echo "page cache dropped"; fi

# Runs gradflow train with the given --data arguments; prints seconds to the first step record,
# peak RSS and peak RssAnon (MB).
measure() {
  local out; out=$(mktemp -d)
  local t0; t0=$(date +%s.%N)
  "$bin" train "$@" --preset "$preset" --steps 3 --threads "$threads" --no-tui --out "$out/run" > "$out/log" 2>&1 &
  local pid=$! first="" anon=0 hwm=0 a h
  while kill -0 "$pid" 2>/dev/null; do
    if [ -r "/proc/$pid/status" ]; then
      a=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
      h=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
      [ -n "$a" ] && [ "$a" -gt "$anon" ] && anon=$a
      [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
    fi
    if [ -z "$first" ] && grep -q '"type":"step"' "$out/run/run.jsonl" 2>/dev/null; then
      first=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { print a - b }')
    fi
    sleep 0.05
  done
  wait "$pid" || { echo "gradflow failed:"; cat "$out/log"; rm -rf "$out"; return 1; }
  [ -n "$first" ] || first=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { print a - b }')
  local hash; hash=$(head -1 "$out/run/run.jsonl" | grep -o '"hash":"[^"]*"' | head -1)
  printf '%-28s first step %6.2f s   peak RSS %6d MB   peak RssAnon %5d MB   %s\n' \
    "$label" "$first" $((hwm / 1024)) $((anon / 1024)) "$hash"
  rm -rf "$out"
}

echo "gradflow $("$bin" --version), preset $preset, $threads threads, $(nproc) CPUs, $(free -g | awk '/Mem:/ { print $2 }') GB RAM"
label="embedded corpus (1 MB)" measure
label="$gb GB file" measure --data "$file"
