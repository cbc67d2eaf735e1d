#!/usr/bin/env python3
"""Overhead of gradflow.refine on a torch training step (docs/PERFORMANCE.md, "PyTorch: cost of
the refinement").

The preset-S GPT (4 layers, 4 heads, C 128, T 128, batch 8, byte vocabulary, 842,496 parameters)
on the CPU, trained from the same initial weights on the same batches by several trainers:

  plain    the GPT with plain explicit attention, torch.optim.AdamW (β 0.9/0.95, weight decay 0.1
           on matrices), global norm clip 1.0 — the baseline
  all      the same GPT with BandedCausalSelfAttention and Refiner(axes="all"): context, time and
           depth on at unit weights (manual), every statistic measured every step
  off      Refiner(measure=False): attached, every axis off (should cost nothing)
  time     Refiner(axes="time", measure=False): the time filter alone
  measure  Refiner(): every axis off, the context and depth statistics measured
  run      ``all`` recorded by gradflow.Run into a temporary folder, as the example does:
           run.clip_grad (time axis, then clipping), the optimizer hooks (depth axis) and
           run.step (the refiner's statistics and the step record written each step)
  all-torch, run-torch
           ``all`` and ``run`` with the fused kernels switched off (gradflow.refine.fused): the
           statistics as torch operations, as on a machine where the C module was not built
  all-serial, run-serial
           ``all`` and ``run`` with the fused kernels on the calling thread only (their work not
           split over torch's threads; the same as every variant at --threads 1)
  traffic  ``plain`` plus passes of about the arena kernels' memory traffic over parameter-sized
           buffers of its own, where the refiner's phases run (two EMA updates and a copy before
           the clipping; a copy, a difference and a product after the optimizer): what that traffic
           costs the step without hooks, statistics or Python of the refiner

With ``--one-model`` there is a single trainer, ``all``'s, and each round runs a block of steps
with the instrumentation on and a block with it off (the attention modules' hooks detached, the
refiner's phases skipped, plain AdamW): the cost in a process that holds one model, as a real run
does; reported as ``all`` against ``plain``.

With ``--processes`` each round runs every variant in a fresh process instead, one model per
process taking ``--steps`` consecutive steps after ``--warmup`` (as the example does): in one
process the trainers evict each other's data from the caches between blocks, which a real run does
not pay; the processes still alternate, so drift in the load hits all alike.

The fused kernels are used where the installed package has them (``pip install ./python``); the
first line of the output says whether it does.

They run interleaved, ``--steps`` steps each per round (the order reversed every other round), for
``--rounds`` rounds after ``--warmup`` steps each, so load that drifts on a shared machine hits all
alike. Printed for wall time and for the CPU time of the training thread (``time.thread_time``:
with one torch thread all the step's work runs there, and time spent descheduled on a loaded
machine is not counted): each trainer's median step time, its overhead against ``plain`` and the
quartiles of the per-round ratios; and the refiner's own phases in CPU time.

    python bench/python_overhead.py --rounds 20 --steps 4 [--variants plain,all,time,measure] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
try:  # the installed package (`pip install ./python` builds the fused kernels)
    import gradflow  # noqa: F401
except ImportError:  # the source tree: the statistics as torch operations only
    sys.path.insert(0, os.path.join(HERE, "..", "python"))

import torch  # noqa: E402

from gradflow.refine import Refiner, fused  # noqa: E402
from gradflow.refine.gpt import GPT  # noqa: E402

LAYERS, HEADS, CHANNELS, CONTEXT, BATCH = 4, 4, 128, 128, 8
VARIANTS = {
    "plain": None,
    "all": dict(axes=("context", "time", "depth")),
    "off": dict(measure=False),
    "time": dict(axes=("time",), measure=False),
    "measure": dict(),
    "run": dict(axes=("context", "time", "depth")),
    "all-torch": dict(axes=("context", "time", "depth"), fused=False),
    "run-torch": dict(axes=("context", "time", "depth"), fused=False),
    "all-serial": dict(axes=("context", "time", "depth"), serial=True),
    "run-serial": dict(axes=("context", "time", "depth"), serial=True),
    "traffic": None,
}


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
    def __init__(self, variant, state):
        options = VARIANTS[variant]
        if options is not None:
            options = dict(options)
            self.fused = options.pop("fused", True)
            self.serial = options.pop("serial", False)
        else:
            self.fused, self.serial = True, False
        self.model = GPT(block_size=CONTEXT, n_layer=LAYERS, n_head=HEADS, n_embd=CHANNELS,
                         attention="plain" if options is None else "banded")
        self.model.load_state_dict(state)
        self.refiner = None if options is None else Refiner(self.model, **options)
        # The attention modules and the refiner's hooks in them (for instrument).
        self._hooks = [(m, m._gradflow) for m in self.model.modules() if getattr(m, "_gradflow", None) is not None]
        groups = decay_groups(self.model) if self.refiner is None else self.refiner.param_groups(weight_decay=0.1)
        self.opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
        self.step_index = 0
        self.phases = {"before_optimizer": [], "apply_depth": [], "finish_step": []}
        count = sum(p.numel() for p in self.model.parameters())
        # traffic: g, fast, slow, snapshot, θ, previous g (six rows as the arena's)
        self.rows = [torch.zeros(count) for _ in range(6)] if variant == "traffic" else None
        self.run = None
        if variant.startswith("run"):
            import atexit
            import shutil
            import tempfile
            import gradflow
            folder = tempfile.mkdtemp(prefix="gradflow-overhead-")
            atexit.register(shutil.rmtree, folder, True)
            self.run = gradflow.Run(os.path.join(folder, "run"), total_steps=1_000_000, model=self.model,
                                    optimizer=self.opt, refine=self.refiner, handle_signals=False,
                                    checkpoint_at_end=False, preset="S")
            atexit.register(self.run.close)

    def _phase(self, name, fn, *args):
        a = time.thread_time()
        out = fn(*args)
        self.phases[name].append(time.thread_time() - a)
        return out

    def instrument(self, on):
        """Attaches (on) or detaches the refiner's hooks in the attention modules; detached, with
        ``step(..., plain=True)``, the step is plain training of the same model."""
        for module, hook in self._hooks:
            module._gradflow = hook if on else None

    def step(self, batch, plain=False):
        """One training step (``plain``: without the refiner, see ``instrument``); returns (wall
        seconds, CPU seconds of this thread)."""
        x, y = batch
        fused.enabled = self.fused
        fused.threads = (lambda: 1) if self.serial else torch.get_num_threads
        t0, c0 = time.perf_counter(), time.thread_time()
        self.opt.zero_grad(set_to_none=True)
        _, loss = self.model(x, y)
        loss.backward()
        if self.run is not None:
            self.run.clip_grad(1.0)
            self.opt.step()
            self.run.step(loss=loss, tokens=x.numel())
            self.step_index += 1
            return time.perf_counter() - t0, time.thread_time() - c0
        r = None if plain else self.refiner
        if r is not None:
            self._phase("before_optimizer", r.before_optimizer, self.step_index)
        rows = self.rows
        if rows is not None:
            g, fast, slow, snapshot, theta, g_prev = rows
            fast.lerp_(g, 0.1)
            slow.lerp_(g, 0.01)
            snapshot.copy_(theta)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        if r is not None:
            self._phase("apply_depth", r.apply_depth, self.opt)
        self.opt.step()
        if rows is not None:
            g_prev.copy_(g)
            snapshot.sub_(theta)
            float(snapshot.dot(g_prev))
        if r is not None:
            self._phase("finish_step", r.finish_step, self.step_index, loss.item())
        else:
            loss.item()
        self.step_index += 1
        return time.perf_counter() - t0, time.thread_time() - c0


def child(args):
    """``--child VARIANT``: one trainer in this process, ``--warmup`` then ``--steps`` consecutive
    steps (as a real run takes them); prints its step times and phases as JSON."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    state = GPT(block_size=CONTEXT, n_layer=LAYERS, n_head=HEADS, n_embd=CHANNELS, attention="plain").state_dict()
    trainer = Trainer(args.child, state)
    batches = byte_batches(args.warmup + args.steps, args.seed)
    for b in batches[:args.warmup]:
        trainer.step(b)
    for v in trainer.phases.values():
        v.clear()
    times = [trainer.step(b) for b in batches[args.warmup:]]
    print(json.dumps({"times": times, "phases": trainer.phases}))


def run_in_processes(variants, args):
    """Each round runs every variant in a fresh process, one after the other (order reversed every
    other round); returns the rounds' step times and every variant's phases."""
    import subprocess
    rounds, phases = [], {v: {} for v in variants}
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        this = {}
        for v in order:
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", v, "--steps", str(args.steps),
                                  "--warmup", str(args.warmup), "--threads", str(args.threads),
                                  "--seed", str(args.seed)], check=True, capture_output=True, text=True).stdout
            result = json.loads(out)
            this[v] = [tuple(x) for x in result["times"]]
            for name, xs in result["phases"].items():
                phases[v].setdefault(name, []).extend(xs)
        rounds.append(this)
    return rounds, phases


def run_in_one_process(variants, args):
    """Every variant's trainer in this process, ``--steps`` steps each per round, interleaved."""
    torch.manual_seed(args.seed)
    state = GPT(block_size=CONTEXT, n_layer=LAYERS, n_head=HEADS, n_embd=CHANNELS, attention="plain").state_dict()
    trainers = {v: Trainer(v, state) for v in variants}
    batches = byte_batches(args.warmup + args.rounds * args.steps, args.seed)
    for b in batches[:args.warmup]:
        for t in trainers.values():
            t.step(b)
    for t in trainers.values():
        for v in t.phases.values():
            v.clear()
    rounds = []
    for r in range(args.rounds):
        chunk = batches[args.warmup + r * args.steps: args.warmup + (r + 1) * args.steps]
        order = variants if r % 2 == 0 else variants[::-1]
        this = {}
        for v in order:
            this[v] = [trainers[v].step(b) for b in chunk]
        rounds.append(this)
    return rounds, {v: t.phases for v, t in trainers.items()}


def run_one_model(variants, args):
    """One ``all`` trainer, its instrumentation switched on and off block by block; returns rounds
    with ``all`` (on) and ``plain`` (off) as the other modes do."""
    torch.manual_seed(args.seed)
    state = GPT(block_size=CONTEXT, n_layer=LAYERS, n_head=HEADS, n_embd=CHANNELS, attention="plain").state_dict()
    trainer = Trainer("all", state)
    batches = byte_batches(args.warmup * 2 + args.rounds * args.steps * 2, args.seed)
    at = 0
    for on in (True, False) * args.warmup:
        trainer.instrument(on)
        trainer.step(batches[at], plain=not on)
        at += 1
    for v in trainer.phases.values():
        v.clear()
    rounds = []
    for r in range(args.rounds):
        this = {}
        for on in ((True, False) if r % 2 == 0 else (False, True)):
            trainer.instrument(on)
            this["all" if on else "plain"] = [trainer.step(b, plain=not on) for b in batches[at:at + args.steps]]
            at += args.steps
        rounds.append(this)
    trainer.instrument(True)
    return rounds, {"plain": {}, "all": trainer.phases}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=4, help="steps per trainer per round")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variants", default="plain,all", help="comma-separated: " + ",".join(VARIANTS))
    parser.add_argument("--processes", action="store_true",
                        help="each variant in its own fresh process per round (consecutive steps, one model "
                             "per process, as in a real run) instead of all trainers in this one")
    parser.add_argument("--one-model", action="store_true",
                        help="one model, its instrumentation switched on and off block by block (plain and all only)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.child:
        return child(args)
    variants = [v for v in args.variants.split(",") if v]
    if "plain" not in variants:
        variants.insert(0, "plain")
    for v in variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant {v!r}; known: {', '.join(VARIANTS)}")
    if args.one_model and (args.processes or variants != ["plain", "all"]):
        parser.error("--one-model compares plain and all in one process: --variants plain,all, without --processes")
    torch.set_num_threads(args.threads)
    params = sum(p.numel() for p in GPT(block_size=CONTEXT, n_layer=LAYERS, n_head=HEADS, n_embd=CHANNELS,
                                        attention="plain").parameters())
    load_before = os.getloadavg()[0]
    rounds, phases = (run_one_model if args.one_model else run_in_processes if args.processes
                      else run_in_one_process)(variants, args)
    times = {k: {v: [] for v in variants} for k in ("wall", "cpu")}
    ratios = {k: {v: [] for v in variants} for k in ("wall", "cpu")}
    for this in rounds:
        for k, j in (("wall", 0), ("cpu", 1)):
            base = statistics.median(x[j] for x in this["plain"])
            for v in variants:
                times[k][v] += [x[j] for x in this[v]]
                ratios[k][v].append(statistics.median(x[j] for x in this[v]) / base)
    load_after = os.getloadavg()[0]

    result = {"parameters": params, "threads": args.threads, "fused_kernels": fused.kernels is not None,
              "processes": args.processes, "one_model": args.one_model, "rounds": args.rounds, "steps": args.steps,
              "load_average": [load_before, load_after], "torch": torch.__version__, "variants": {}}
    for v in variants:
        entry = {}
        for k in ("wall", "cpu"):
            med = statistics.median(times[k][v])
            q = statistics.quantiles(ratios[k][v], n=4) if len(ratios[k][v]) >= 2 else [ratios[k][v][0]] * 3
            entry[k] = {"ms": med * 1000, "overhead": med / statistics.median(times[k]["plain"]) - 1,
                        "round_ratio_quartiles": q}
        entry["refiner_phases_cpu_ms"] = {n: statistics.median(x) * 1000 for n, x in phases[v].items() if x}
        result["variants"][v] = entry
    if args.json:
        print(json.dumps(result))
        return
    print(f"preset S GPT, {params:,} parameters, batch {BATCH}×{CONTEXT}, {args.threads} thread(s), torch {torch.__version__}, "
          f"fused kernels {'built' if fused.kernels is not None else 'not built (statistics as torch operations)'}")
    how = ("one model, its instrumentation on and off by turns" if args.one_model else
           "each in a fresh process per round" if args.processes else "interleaved in one process")
    print(f"{args.rounds} rounds × {args.steps} steps per trainer, {how}; load average {load_before:.1f} → {load_after:.1f}")
    for k, label in (("wall", "wall time"), ("cpu", "CPU time of the training thread")):
        print(label)
        for v in variants:
            e = result["variants"][v][k]
            q = e["round_ratio_quartiles"]
            extra = "" if v == "plain" else (f"  overhead {100 * e['overhead']:+5.1f} %  per-round ratio quartiles "
                                             f"{q[0]:.3f} / {q[1]:.3f} / {q[2]:.3f}")
            print(f"  {v:8s} {e['ms']:8.2f} ms/step{extra}")
    for v in variants:
        phases = result["variants"][v]["refiner_phases_cpu_ms"]
        if phases:
            print(f"refiner phases of {v!r}, CPU ms (median): " + ", ".join(f"{n} {x:.2f}" for n, x in phases.items()))


if __name__ == "__main__":
    main()
