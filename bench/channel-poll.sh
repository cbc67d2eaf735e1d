#!/usr/bin/env bash
# The command channel's cost in the trainer (docs/PERFORMANCE.md, "Command channel"): times
# CommandChannelReader.poll(), which the trainer calls at every step boundary, on an idle channel
# (an fstat) and with 1, 3 and 8 command lines waiting, against a preset-S training step timed in the
# same run (`gradflow bench --preset S`, refinement off: the fastest step, so the largest share).
#
#   bench/channel-poll.sh [STEPS]        (default 30 timed preset-S steps)
#
# Needs a release build (swift build -c release; it builds nothing itself, so it never competes
# with another build): the benchmark (bench/channel-poll/main.swift) is compiled with swiftc
# against that build's Telemetry, RunFormat, JSONCore and Refinement objects. $BUILD: the build folder (.build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-30}"
build="${BUILD:-.build/release}"
bin="$build/gradflow"
[ -x "$bin" ] || { echo "no $bin: build first (swift build -c release)" >&2; exit 1; }
objects=("$build"/Telemetry.build/*.o "$build"/RunFormat.build/*.o "$build"/JSONCore.build/*.o "$build"/Refinement.build/*.o)
[ -e "${objects[0]}" ] || { echo "no Telemetry objects in $build" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
swiftc -O -I "$build/Modules" -I "$build" bench/channel-poll/main.swift "${objects[@]}" -o "$work/channel-poll"

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)  cores: $(nproc)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
step_json=$("$bin" bench --preset S --steps "$steps" --json)
poll_json=$("$work/channel-poll")
step_after=$("$bin" bench --preset S --steps "$steps" --json)
python3 - "$step_json" "$step_after" "$poll_json" <<'PY'
import json, sys
before, after = json.loads(sys.argv[1]), json.loads(sys.argv[2])
step_ms = min(before["ms_per_step"], after["ms_per_step"])
print("preset-S step (gradflow bench --preset S, refine off): median %.1f ms before, %.1f ms after the polls; share against %.1f ms"
      % (before["ms_per_step"], after["ms_per_step"], step_ms))
for line in sys.argv[3].splitlines():
    r = json.loads(line)
    med = r["median_ns"]
    extra = "  p99 %.2f µs (%.4f %%)" % (r["p99_ns"] / 1e3, r["p99_ns"] / 1e6 / step_ms * 100) if "p99_ns" in r else ""
    print("%-7s poll: median %8.2f µs = %.5f %% of a step%s   (%d polls)"
          % (r["case"], med / 1e3, med / 1e6 / step_ms * 100, extra, r["polls"]))
PY
