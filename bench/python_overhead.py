#!/usr/bin/env python3
"""Overhead of gradflow.refine on a torch training step (docs/PERFORMANCE.md, "PyTorch refinement").

The preset-S GPT (4 layers, 4 heads, C 128, T 128, batch 8, byte vocabulary, 842,496 parameters)
on the CPU. Two trainers from the same initial weights, each on its own copy of the batches:

  plain    the GPT with plain explicit attention, AdamW (β 0.9/0.95, weight decay 0.1 on
           matrices), global norm clip 1.0
  refined  the same GPT with BandedCausalSelfAttention and a Refiner with every axis on at unit
           weights (context + time + depth, manual), so every statistic is measured every step

They run interleaved, ``--steps`` steps each per round (the order alternating between rounds), for
``--rounds`` rounds after ``--warmup`` steps each, so load that drifts on a shared machine hits both
alike. Printed, for wall time and for the CPU time of the training thread (``time.thread_time``;
with one torch thread all the step's work runs there, and time the process spends descheduled on
a loaded machine is not counted): the median step time of each, their ratio (the overhead), the
quartiles of the per-round ratios, and the refiner's own phases (before_optimizer, apply_depth,
finish_step) in CPU time.

    PYTHONPATH=python python bench/python_overhead.py --rounds 20 --steps 5 --threads 1 [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import torch  # noqa: E402

from gradflow.refine import Refiner  # noqa: E402
from gradflow.refine.gpt import GPT  # noqa: E402

LAYERS, HEADS, CHANNELS, CONTEXT, BATCH = 4, 4, 128, 128, 8


def byte_batches(count, seed):
    path = os.path.join(HERE, "..", "data", "study", "sonnets.txt")
    g = torch.Generator().manual_seed(seed)
    if os.path.exists(path):
        with open(path, "rb") as f:
            data = torch.tensor(list(f.read()), dtype=torch.long)
    else:
        data = torch.randint(0, 256, (200_000,), generator=g)
    out = []
    for _ in range(count):
        starts = torch.randint(0, data.numel() - CONTEXT - 1, (BATCH,), generator=g)
        windows = torch.stack([data[s:s + CONTEXT + 1] for s in starts.tolist()])
        out.append((windows[:, :-1].contiguous(), windows[:, 1:].contiguous()))
    return out


def decay_groups(model):
    return [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": 0.1},
            {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}]


class Trainer:
    def __init__(self, refined, state):
        self.model = GPT(block_size=CONTEXT, n_layer=LAYERS, n_head=HEADS, n_embd=CHANNELS,
                         attention="banded" if refined else "plain")
        self.model.load_state_dict(state)
        self.refiner = Refiner(self.model, axes=("context", "time", "depth")) if refined else None
        groups = self.refiner.param_groups(weight_decay=0.1) if refined else decay_groups(self.model)
        self.opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
        self.step_index = 0
        self.phases = {"before_optimizer": [], "apply_depth": [], "finish_step": []}

    def step(self, batch):
        """One training step; returns (wall seconds, CPU seconds of this thread)."""
        x, y = batch
        t0, c0 = time.perf_counter(), time.thread_time()
        self.opt.zero_grad(set_to_none=True)
        _, loss = self.model(x, y)
        loss.backward()
        r = self.refiner
        if r is not None:
            a = time.thread_time()
            r.before_optimizer(self.step_index)
            self.phases["before_optimizer"].append(time.thread_time() - a)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        if r is not None:
            a = time.thread_time()
            r.apply_depth(self.opt)
            self.phases["apply_depth"].append(time.thread_time() - a)
        self.opt.step()
        if r is not None:
            a = time.thread_time()
            r.finish_step(self.step_index, loss.item())
            self.phases["finish_step"].append(time.thread_time() - a)
        else:
            loss.item()
        self.step_index += 1
        return time.perf_counter() - t0, time.thread_time() - c0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5, help="steps per trainer per round")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    state = GPT(block_size=CONTEXT, n_layer=LAYERS, n_head=HEADS, n_embd=CHANNELS, attention="plain").state_dict()
    plain, refined = Trainer(False, state), Trainer(True, state)
    params = sum(p.numel() for p in plain.model.parameters())
    batches = byte_batches(args.warmup + args.rounds * args.steps, args.seed)
    for b in batches[:args.warmup]:
        plain.step(b)
        refined.step(b)
    for t in (plain, refined):
        for v in t.phases.values():
            v.clear()
    wall = {"plain": [], "refined": []}
    cpu = {"plain": [], "refined": []}
    round_ratios = {"wall": [], "cpu": []}
    load_before = os.getloadavg()[0]
    for r in range(args.rounds):
        chunk = batches[args.warmup + r * args.steps: args.warmup + (r + 1) * args.steps]
        order = [("plain", plain), ("refined", refined)]
        if r % 2:
            order.reverse()
        this = {}
        for name, trainer in order:
            this[name] = [trainer.step(b) for b in chunk]
            wall[name] += [w for w, _ in this[name]]
            cpu[name] += [c for _, c in this[name]]
        for k, j in (("wall", 0), ("cpu", 1)):
            round_ratios[k].append(statistics.median(x[j] for x in this["refined"])
                                   / statistics.median(x[j] for x in this["plain"]))
    load_after = os.getloadavg()[0]

    def summary(times, ratios):
        mp, mr = statistics.median(times["plain"]), statistics.median(times["refined"])
        q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
        return {"plain_ms": mp * 1000, "refined_ms": mr * 1000, "overhead": mr / mp - 1, "round_ratio_quartiles": q}

    phases = {k: statistics.median(v) * 1000 for k, v in refined.phases.items() if v}
    result = {"parameters": params, "threads": args.threads, "rounds": args.rounds, "steps": args.steps,
              "wall": summary(wall, round_ratios["wall"]), "cpu": summary(cpu, round_ratios["cpu"]),
              "refiner_phases_cpu_ms": phases, "load_average": [load_before, load_after],
              "torch": torch.__version__}
    if args.json:
        print(json.dumps(result))
        return
    print(f"preset S GPT, {params:,} parameters, batch {BATCH}×{CONTEXT}, {args.threads} thread(s), torch {torch.__version__}")
    print(f"{args.rounds} rounds × {args.steps} steps each, interleaved; load average {load_before:.1f} → {load_after:.1f}")
    print("refined = context + time + depth on at unit weights, every statistic measured")
    for kind in ("wall", "cpu"):
        s = result[kind]
        q = s["round_ratio_quartiles"]
        label = "wall time" if kind == "wall" else "CPU time of the training thread"
        print(f"{label:32s} plain {s['plain_ms']:8.2f} ms  refined {s['refined_ms']:8.2f} ms  "
              f"overhead {100 * s['overhead']:+5.1f} %  (per-round ratio quartiles {q[0]:.3f} / {q[1]:.3f} / {q[2]:.3f})")
    print("refiner phases, CPU ms (median): " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()))

if __name__ == "__main__":
    main()
