#!/usr/bin/env python3
"""Shares of a `perf record` profile of `gradflow bench`, by kind of work, side by side.

    perf record -F 999 -o before.data gradflow bench --preset M --steps 6 --warmup 1 --threads 2
    perf record -F 999 -o after.data  <other binary> bench ... (same flags)
    python3 bench/perf_categories.py before.data after.data

Each cell is the share of the process's CPU samples and, in brackets, the same relative to the
OpenBLAS sgemm kernel's samples. The GEMM kernel's work is the same in both binaries, so the
bracketed figure compares non-GEMM work across profiles taken under different machine load
(where wall-clock A/B timings are too noisy), as docs/PERFORMANCE.md uses it.
"""
import re
import subprocess
import sys

RULES = [  # (category, test on the symbol), first match wins
    ("gemm kernel", lambda s: s.startswith("sgemm_kernel")),
    ("gemm packing/beta", lambda s: s.startswith("sgemm_") or s.startswith("cblas") or "sgemv" in s),
    ("gelu", lambda s: "GELU" in s or "tanh" in s),
    ("attention (non-GEMM)", lambda s: "Attention" in s),
    ("softmax", lambda s: "Softmax" in s or "VectorMathO3exp" in s),
    ("layernorm+residual", lambda s: "LayerNorm" in s or "Residual" in s),
    ("adamw", lambda s: "AdamW" in s),
    ("memmove (bias prefill)", lambda s: "memmove" in s),
    ("init, memset, page faults", lambda s: any(k in s for k in (
        "cos", "initialize", "log", "clear_page", "page_fault", "memset", "anonymous", "mm_fault"))),
]


def categories(path: str) -> dict[str, float]:
    out = subprocess.run(["perf", "report", "-i", path, "--no-children", "--sort", "symbol"],
                         capture_output=True, text=True, check=True).stdout
    shares: dict[str, float] = {}
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+\[.\]\s+(\S+)", line)
        if not m:
            continue
        share, sym = float(m.group(1)), m.group(2)
        cat = next((c for c, test in RULES if test(sym)), "other (scheduler, statistics, …)")
        shares[cat] = shares.get(cat, 0.0) + share
    return shares


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__)
        return 2
    cols = [categories(p) for p in paths]
    keys = sorted(set().union(*cols), key=lambda k: -cols[0].get(k, 0.0))
    print("| category | " + " | ".join(paths) + " |")
    print("| --- |" + " ---: |" * len(paths))
    for k in keys:
        cells = [f"{c.get(k, 0):.1f} % ({c.get(k, 0) / c.get('gemm kernel', float('nan')):.3f})" for c in cols]
        print(f"| {k} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
