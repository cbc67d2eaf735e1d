#!/usr/bin/env bash
# Peak resident memory of one training process per refinement arm of studies/reduced.study
# (docs/RESULTS.md, "Cost"): each arm trains the reduced study's model for 200 steps in its own
# process, on the training plays, and /usr/bin/time reports the process's maximum RSS.
#
#   bench/arm-memory.sh [PRESET_FLAGS...]     # default: the reduced study's model
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${SCRATCH:-.build}"
swift build -c release --product gradflow --scratch-path "$scratch" >/dev/null
bin="$scratch/release/gradflow"
model=("$@")
[ ${#model[@]} -gt 0 ] || model=(--layers 2 --heads 2 --dim 64 --context 128 --batch 8)
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
printf "| arm | flags | max RSS |\n| --- | --- | ---: |\n"
while IFS='=' read -r name flags; do
    name="$(echo "$name" | xargs)"; flags="$(echo "$flags" | xargs)"
    # shellcheck disable=SC2086
    /usr/bin/time -f "%M" -o "$out/rss" "$bin" train "${model[@]}" --steps 200 --eval-every 100 --threads 1 \
        --data data/study/plays-train --no-tui --out "$out/$name" $flags > /dev/null
    printf "| %s | \`%s\` | %.1f MB |\n" "$name" "${flags:-(none)}" "$(echo "$(cat "$out/rss") / 1024" | bc -l)"
done <<'ARMS'
baseline =
context-manual = --context-weights 1,1,2
context-adaptive = --adaptive context
time-adaptive = --adaptive time
depth-adaptive = --adaptive depth
all-adaptive = --adaptive all
grokfast = --grokfast 0.98,2
ARMS
