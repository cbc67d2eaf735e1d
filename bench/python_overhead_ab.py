#!/usr/bin/env python3
"""Side-by-side overhead of two versions of gradflow.refine (docs/PERFORMANCE.md, "PyTorch: cost of
the refinement"): `plain`, and trainers of bench/python_overhead.py built from this tree ("all",
"time", ...) or from an older copy of the package ("old-all", "old-time", ...), interleaved in one
process, from the repository root. Make the old copy first (GRADFLOW_OLD: its parent folder), e.g. from main:

    mkdir -p /tmp/gfold && git archive main python/gradflow | tar -x -C /tmp/gfold \
        && mv /tmp/gfold/python/gradflow /tmp/gfold/gradflow_old
    PYTHONPATH=python python bench/python_overhead_ab.py plain,old-all,all,old-time,time 24 3

Arguments: variants, rounds, steps per round. Prints CPU ms/step of the training thread (median),
overhead against plain, quartiles of the per-round ratios and the refiner phases.
"""
import os, sys, time, statistics, torch
sys.path.insert(0, "bench"); sys.path.insert(0, "python"); sys.path.insert(0, os.environ.get("GRADFLOW_OLD", "/tmp/gfold"))
import python_overhead as po
from gradflow.refine.gpt import GPT
import gradflow_old.refine as old_refine
from gradflow_old.refine.gpt import GPT as OldGPT
torch.set_num_threads(1); torch.manual_seed(1)
state = GPT(block_size=128, n_layer=4, n_head=4, n_embd=128, attention="plain").state_dict()
names = sys.argv[1].split(",")
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
tr = {}
for n in names:
    if n.startswith("old-"):
        po.Refiner, po.GPT = old_refine.Refiner, OldGPT
        t = po.Trainer(n[4:], state)
        import gradflow.refine as new_refine
        po.Refiner, po.GPT = new_refine.Refiner, GPT
    else:
        t = po.Trainer(n, state)
    tr[n] = t
bs = po.byte_batches(3 + rounds * steps, 1)
for b in bs[:3]:
    for t in tr.values(): t.step(b)
ratios = {n: [] for n in names}; times = {n: [] for n in names}
l0 = os.getloadavg()[0]
for r in range(rounds):
    chunk = bs[3 + r*steps: 3 + (r+1)*steps]
    order = names if r % 2 == 0 else names[::-1]
    this = {n: [tr[n].step(b)[1] for b in chunk] for n in order}
    base = statistics.median(this["plain"])
    for n in names:
        times[n] += this[n]; ratios[n].append(statistics.median(this[n]) / base)
for n in names:
    q = statistics.quantiles(ratios[n], n=4)
    print(f"{n:10s} {1000*statistics.median(times[n]):8.2f} ms  overhead {100*(statistics.median(times[n])/statistics.median(times['plain'])-1):+5.1f} %  round ratios {q[0]:.3f}/{q[1]:.3f}/{q[2]:.3f}  phases " +
          ", ".join(f"{k} {1000*statistics.median(v):.2f}" for k, v in tr[n].phases.items() if v))
print("load", l0, "->", os.getloadavg()[0])
