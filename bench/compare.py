#!/usr/bin/env python3
"""Side-by-side training throughput: Gradflow vs the PyTorch reference (bench/reference.py).

For each preset, runs `gradflow bench --preset P --steps N --warmup W --threads T --json` and
`reference.py bench ... --json` alternately, R rounds each, and prints a table of the median
tokens/s of each side (median over rounds of each run's median step), their ratio, and machine info.
If the Gradflow binary is missing, says so and still runs the reference side.

Standard library only; the reference runs under bench/.venv/bin/python (bench/setup.sh).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

# Timed steps and warm-up steps per preset (both sides get the same).
DEFAULT_STEPS = {"S": (30, 5), "M": (10, 3)}


@dataclass
class Side:
    """Per-round results of one implementation on one preset."""
    tokens_per_second: list[float] = field(default_factory=list)
    ms_per_step: list[float] = field(default_factory=list)
    error: str | None = None
    info: dict = field(default_factory=dict)

    def median(self) -> float | None:
        return statistics.median(self.tokens_per_second) if self.tokens_per_second else None


def parse_result(stdout: str, source: str) -> dict:
    """The last line of `stdout` that is a JSON object with a numeric `tokens_per_second`.

    Other lines (progress, warnings) are ignored. Raises ValueError naming `source` otherwise."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("tokens_per_second"), (int, float)):
            if obj["tokens_per_second"] <= 0:
                raise ValueError(f"{source}: tokens_per_second is {obj['tokens_per_second']}, expected > 0")
            return obj
    tail = stdout.strip().splitlines()[-3:]
    raise ValueError(f"{source}: no JSON line with a numeric \"tokens_per_second\" in its output "
                     f"(last lines: {tail!r})")


def run_one(cmd: list[str], source: str, timeout: float) -> dict:
    """Runs `cmd` and parses its JSON result; raises RuntimeError with the reason on failure."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{source}: timed out after {timeout:.0f}s: {shlex.join(cmd)}")
    except OSError as e:
        raise RuntimeError(f"{source}: cannot run {cmd[0]}: {e.strerror}")
    if proc.returncode != 0:
        err = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise RuntimeError(f"{source}: exit status {proc.returncode}: {shlex.join(cmd)}: {err!r}")
    try:
        return parse_result(proc.stdout, source)
    except ValueError as e:
        raise RuntimeError(str(e))


def busy_cores(interval: float = 2.0) -> float | None:
    """CPU cores busy (non-idle) on the whole machine over `interval` seconds, from /proc/stat."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait
    try:
        t0, i0 = sample()
        time.sleep(interval)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if t1 == t0:
        return None
    return (1.0 - (i1 - i0) / (t1 - t0)) * (os.cpu_count() or 1)


def wait_until_quiet(max_busy: float, max_wait: float) -> float | None:
    """Waits (at most `max_wait` s) until fewer than `max_busy` cores are busy; returns the last
    reading. Other people's builds on a shared machine make throughput figures noisy."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = busy_cores()
        if busy is None or busy < max_busy or time.monotonic() >= deadline:
            return busy
        time.sleep(3)


def gradflow_path(flag: str | None) -> Path:
    """--gradflow, else $GRADFLOW, else .build/release/gradflow at the repository root."""
    return Path(flag or os.environ.get("GRADFLOW") or ROOT / ".build/release/gradflow")


def machine_info(python: str) -> dict:
    """nproc, CPU model, load average, torch version and BLAS, Debian's OpenBLAS version."""
    info = {"nproc": os.cpu_count(), "machine": platform.machine()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["loadavg"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    probes = {
        "openblas": ["pkg-config", "--modversion", "openblas"],
        "torch": [python, "-c", "import torch; print(torch.__version__, 'cuda', torch.version.cuda, "
                                "'blas', torch.backends.mkl.is_available() and 'MKL' or 'other')"],
    }
    for key, cmd in probes.items():
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            info[key] = out.stdout.strip() if out.returncode == 0 else f"unknown ({out.stderr.strip()[:80]})"
        except (OSError, subprocess.TimeoutExpired) as e:
            info[key] = f"unknown ({e})"
    return info


def format_table(results: dict[str, dict[str, Side]], rounds: int) -> str:
    """Markdown table: preset, gradflow median tok/s, pytorch median tok/s, ratio, per-round values."""
    rows = ["| preset | gradflow tok/s | pytorch tok/s | ratio gradflow/pytorch | gradflow rounds | pytorch rounds |",
            "| --- | ---: | ---: | ---: | --- | --- |"]
    for preset, sides in results.items():
        g, p = sides["gradflow"], sides["pytorch"]
        gm, pm = g.median(), p.median()
        cell = lambda s, m: f"{m:,.0f}" if m is not None else f"— ({s.error or 'no result'})"
        ratio = f"{gm / pm:.2f}" if gm is not None and pm is not None else "—"
        each = lambda s: ", ".join(f"{x:,.0f}" for x in s.tokens_per_second) or "—"
        rows.append(f"| {preset} | {cell(g, gm)} | {cell(p, pm)} | {ratio} | {each(g)} | {each(p)} |")
    return "\n".join(rows) + f"\n\n(median over {rounds} round(s) of each run's median step)"


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="S,M", help="comma-separated presets (default S,M)")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each side per preset (default 3)")
    ap.add_argument("--threads", type=int, default=2, help="threads for both sides (default 2)")
    ap.add_argument("--steps", type=int, help="timed steps for every preset (default S 30, M 10)")
    ap.add_argument("--warmup", type=int, help="untimed warm-up steps, both sides (default S 5, M 3)")
    ap.add_argument("--gradflow", help="Gradflow binary (default $GRADFLOW or .build/release/gradflow)")
    ap.add_argument("--gradflow-args", default="", help="extra arguments for `gradflow bench`")
    ap.add_argument("--python", default=str(BENCH / ".venv/bin/python"),
                    help="Python with torch for the reference (default bench/.venv/bin/python)")
    ap.add_argument("--reference", default=str(BENCH / "reference.py"), help=argparse.SUPPRESS)
    ap.add_argument("--reference-args", default="", help="extra arguments for reference.py bench (e.g. --plain)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per run (default 900)")
    ap.add_argument("--quiet-below", type=float, metavar="CORES",
                    help="before each run, wait until fewer than CORES cores are busy (e.g. 0.5)")
    ap.add_argument("--quiet-wait", type=float, default=300,
                    help="longest wait for --quiet-below, seconds (default 300)")
    ap.add_argument("--json", action="store_true", help="also print all results as one JSON object")
    args = ap.parse_args(argv)
    args.preset_list = [p.strip() for p in args.presets.split(",") if p.strip()]
    bad = [p for p in args.preset_list if p not in DEFAULT_STEPS]
    if bad or not args.preset_list:
        ap.error(f"--presets {args.presets!r}: expected a comma-separated list of {sorted(DEFAULT_STEPS)}")
    if args.rounds < 1 or args.threads < 1:
        ap.error("--rounds and --threads must be ≥ 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    binary = gradflow_path(args.gradflow)
    have_gradflow = binary.is_file() and os.access(binary, os.X_OK)
    if not have_gradflow:
        print(f"compare: Gradflow binary not found or not executable at {binary} "
              f"(build it with `swift build -c release`, or set $GRADFLOW / --gradflow); "
              f"running the reference side only", file=sys.stderr)
    if not Path(args.python).exists():
        print(f"compare: no Python at {args.python}; run bench/setup.sh first", file=sys.stderr)
        return 2
    info = machine_info(args.python)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)

    results: dict[str, dict[str, Side]] = {}
    for preset in args.preset_list:
        steps, warmup = DEFAULT_STEPS[preset]
        steps = args.steps or steps
        warmup = warmup if args.warmup is None else args.warmup
        g_cmd = [str(binary), "bench", "--preset", preset, "--steps", str(steps), "--warmup", str(warmup),
                 "--threads", str(args.threads), "--json", *shlex.split(args.gradflow_args)]
        p_cmd = [args.python, args.reference, "bench", "--preset", preset, "--steps", str(steps),
                 "--warmup", str(warmup), "--threads", str(args.threads), "--json",
                 *shlex.split(args.reference_args)]
        sides = {"gradflow": Side(), "pytorch": Side()}
        if not have_gradflow:
            sides["gradflow"].error = "binary missing"
        for r in range(args.rounds):
            for name, cmd in (("gradflow", g_cmd), ("pytorch", p_cmd)):
                side = sides[name]
                if side.error:
                    continue
                busy = None
                if args.quiet_below is not None:
                    busy = wait_until_quiet(args.quiet_below, args.quiet_wait)
                try:
                    res = run_one(cmd, name, args.timeout)
                except RuntimeError as e:
                    side.error = str(e)
                    print(f"compare: {e}", file=sys.stderr)
                    continue
                side.tokens_per_second.append(float(res["tokens_per_second"]))
                side.ms_per_step.append(float(res.get("ms_per_step", 0.0)))
                side.info = res
                print(f"  {preset} round {r + 1}/{args.rounds} {name:8s} "
                      f"{res['tokens_per_second']:10,.0f} tok/s  {res.get('ms_per_step', 0):8.2f} ms/step"
                      + (f"  (busy cores before: {busy:.2f})" if busy is not None else ""),
                      flush=True)
        results[preset] = sides

    print()
    print(format_table(results, args.rounds))
    print(f"threads {args.threads}; load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        print(json.dumps({
            "machine": info,
            "threads": args.threads,
            "results": {p: {n: {"median_tokens_per_second": s.median(), "rounds": s.tokens_per_second,
                                "error": s.error, "last": s.info} for n, s in sides.items()}
                        for p, sides in results.items()},
        }))
    ok = all(s["pytorch"].median() is not None for s in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
