#!/usr/bin/env python3
"""Two Gradflow binaries and the PyTorch reference, interleaved in the same rounds.

    python3 bench/compare_ab.py --base /tmp/gradflow-main --new .build/release/gradflow \\
        [--presets S,M] [--rounds 3] [--python bench/.venv/bin/python]

Each round runs `BASE bench`, `NEW bench` and `reference.py bench` one after the other (2 threads,
compare.py's steps per preset), so an old and a new build meet the same machine conditions; prints
each run, then per preset the medians, base/PyTorch, new/PyTorch and new/base, and one JSON line.
Set OMP_WAIT_POLICY=PASSIVE in the environment when the machine is loaded (docs/PERFORMANCE.md).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
STEPS = {"S": (30, 5), "M": (10, 3)}


def run(cmd: list[str]) -> float:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800).stdout
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            return float(json.loads(line)["tokens_per_second"])
    raise RuntimeError(f"no JSON result from {cmd[0]}: {out[-300:]!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--presets", default="S,M")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--python", default=str(BENCH / ".venv/bin/python"))
    args = ap.parse_args()
    results = {}
    for p in args.presets.split(","):
        steps, warmup = STEPS[p]
        common = ["bench", "--preset", p, "--steps", str(steps), "--warmup", str(warmup),
                  "--threads", str(args.threads), "--json"]
        cmds = {"base": [args.base, *common], "new": [args.new, *common],
                "pytorch": [args.python, str(BENCH / "reference.py"), *common]}
        results[p] = {k: [] for k in cmds}
        for r in range(args.rounds):
            for name, cmd in cmds.items():
                load = os.getloadavg()[0]
                tps = run(cmd)
                results[p][name].append(tps)
                print(f"{p} round {r + 1} {name:8s} {tps:10,.0f} tok/s  (load average before {load:.2f})", flush=True)
    for p, d in results.items():
        m = {k: statistics.median(v) for k, v in d.items()}
        print(f"{p}: medians base {m['base']:,.0f}, new {m['new']:,.0f}, pytorch {m['pytorch']:,.0f} tok/s; "
              f"base/pytorch {m['base'] / m['pytorch']:.2f}, new/pytorch {m['new'] / m['pytorch']:.2f}, "
              f"new/base {m['new'] / m['base']:.3f}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
