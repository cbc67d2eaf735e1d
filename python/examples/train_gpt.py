#!/usr/bin/env python3
"""Trains Gradflow's preset-S GPT with PyTorch and records the run in Gradflow's run format.

    python examples/train_gpt.py --steps 2000 --out runs/py-s
    gradflow replay runs/py-s            # or, while it trains: gradflow attach runs/py-s

The model is the one the Swift trainer trains at preset S (docs/DESIGN.md §4): byte vocabulary
256, learned positions, 4 pre-LayerNorm blocks of 4 heads, C = 128, T = 128, a GELU (tanh) MLP of
4·C, a bias on every linear layer, a final LayerNorm and the output head tied to the input
embedding — 842,496 parameters. Its attention is ``gradflow.refine.BandedCausalSelfAttention``, so
every scale axis works, by flag here or by command from ``gradflow attach``. Training follows the
Swift trainer's defaults (Sources/Training/TrainingConfig.swift): AdamW (β 0.9/0.95, ε 1e-8, weight
decay 0.1 on the matrices and the embedding), peak rate 3e-3, linear warm-up over min(100, steps/10)
steps, cosine decay to 10 % of the peak at the last step, gradient clipping at 1, normal(0, 0.02)
initialisation with the residual projections scaled by 1/√(2·layers).

Several processes: ``torchrun --nproc_per_node N examples/train_gpt.py …`` trains data-parallel
(DDP; NCCL on CUDA, one GPU per process, else gloo). ``--batch`` is the global batch, split evenly
over the ranks: rank r takes rows r·B/N … (r+1)·B/N − 1 of the very batch one process would draw,
as the Swift trainer under mpirun does; the recorded loss is the mean over the ranks. Rank 0 writes
the run, evaluates and samples; every rank applies the commands (gradflow.Run under
torch.distributed).

Data: ``--data PATH`` (a file, or a folder whose files are read in name order, as ``gradflow train
--data`` reads them), read as bytes; the last 10 % of each file is validation. Default: the repository's Sources/Corpus/Resources/default-corpus.txt (named
``shakespeare``, as the Swift trainer names its embedded copy, so runs of both compare). The batch of
step n is drawn from a generator seeded with (seed, n), so ``--resume`` continues with the batches an
uninterrupted run would have seen.
"""

import argparse
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    import gradflow
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import gradflow
from gradflow.refine import BandedCausalSelfAttention, Refiner

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CORPUS = os.path.normpath(os.path.join(HERE, "..", "..", "Sources", "Corpus", "Resources",
                                               "default-corpus.txt"))
CONTEXT_GAIN_WINDOWS = (8, 32, 64)  # the Swift trainer's ΔL(c) windows


# MARK: - Model


class Block(nn.Module):
    def __init__(self, C, heads, T, layer):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C)
        self.attn = BandedCausalSelfAttention(C, heads, T, layer=layer)
        self.ln_2 = nn.LayerNorm(C)
        self.fc = nn.Linear(C, 4 * C)
        self.proj = nn.Linear(4 * C, C)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.proj(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    """The GPT-2 layout of llm.c at Gradflow's sizes (preset S by default)."""

    def __init__(self, layers=4, heads=4, channels=128, context=128, vocab=256):
        super().__init__()
        self.context = context
        self.wte = nn.Embedding(vocab, channels)
        self.wpe = nn.Embedding(context, channels)
        self.h = nn.ModuleList(Block(channels, heads, context, layer) for layer in range(layers))
        self.ln_f = nn.LayerNorm(channels)
        residual_std = 0.02 / math.sqrt(2 * layers)
        for name, p in self.named_parameters():
            if name.endswith(".bias"):
                nn.init.zeros_(p)
            elif "ln_" in name:
                nn.init.ones_(p)
            else:
                std = residual_std if name.endswith(("attn.c_proj.weight", "proj.weight")) and "c_attn" not in name else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx, targets=None, reduction="mean"):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.h:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # the tied output head
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), reduction=reduction)
        return logits, loss


def schedule(step, peak, warmup, total, min_fraction=0.1):
    """Linear warm-up, then cosine to ``min_fraction`` of the peak at the last step (LearningRateSchedule)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    span = max(1, total - 1 - warmup)
    progress = min(1.0, (step - warmup) / span)
    return peak * (min_fraction + (1 - min_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


# MARK: - Data


def load_bytes(path):
    """(training bytes, validation bytes): the last 10 % of each file is validation."""
    # The files the header's fingerprint covers, which are those `gradflow train --data` reads.
    try:
        files = gradflow.runfile.data_files(path)
    except gradflow.runfile.RunFileError as e:
        raise SystemExit(str(e)) from None
    train, val = bytearray(), bytearray()
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        cut = int(len(data) * 0.9)
        train += data[:cut]
        val += data[cut:]
    return torch.tensor(list(train), dtype=torch.long), torch.tensor(list(val), dtype=torch.long)


def batch(train, step, B, T, seed, device):
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    starts = torch.randint(0, len(train) - T - 1, (B,), generator=g)
    x = torch.stack([train[s:s + T] for s in starts])
    y = torch.stack([train[s + 1:s + T + 1] for s in starts])
    return x.to(device), y.to(device)


# MARK: - Evaluation


def windows(val, T, limit=64):
    n = max(1, min(limit, (len(val) - 1) // T))
    x = torch.stack([val[i * T:i * T + T] for i in range(n)])
    y = torch.stack([val[i * T + 1:i * T + T + 1] for i in range(n)])
    return x, y


class AttentionWindow:
    """Limits every attention layer to the last ``c`` positions (distance < c) while active."""

    def __init__(self, model, c):
        self.modules = [m for m in model.modules() if isinstance(m, BandedCausalSelfAttention)]
        self.c = c

    def __enter__(self):
        self.saved = [m.mask for m in self.modules]
        for m in self.modules:
            full = m.mask
            T = full.size(-1)
            band = torch.ones(T, T, dtype=torch.bool, device=full.device).tril().triu(-(self.c - 1))
            m.mask = band.view(1, 1, T, T)

    def __exit__(self, *exc):
        for m, mask in zip(self.modules, self.saved):
            m.mask = mask


@torch.no_grad()
def evaluate(model, val, T, B, device, limit=64, positions=False):
    """(mean loss, loss by position in at most 32 buckets) over ``limit`` windows."""
    x, y = windows(val, T, limit)
    total = torch.zeros(T, dtype=torch.float64)
    for i in range(0, len(x), B):
        _, loss = model(x[i:i + B].to(device), y[i:i + B].to(device), reduction="none")
        total += loss.view(-1, T).double().sum(0).cpu()
    by_position = total / len(x)
    mean = float(by_position.mean())
    if not positions:
        return mean, []
    buckets = min(32, T)
    size = T // buckets
    return mean, [float(by_position[b * size:(b + 1) * size].mean()) for b in range(buckets)]


@torch.no_grad()
def sample(model, prompt, count, temperature, seed, device):
    g = torch.Generator(device=device).manual_seed(seed)
    idx = torch.tensor([list(prompt.encode("utf-8"))], dtype=torch.long, device=device)
    out = []
    for _ in range(count):
        logits, _ = model(idx[:, -model.context:])
        probs = F.softmax(logits[0, -1].float() / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=g)
        out.append(int(nxt))
        idx = torch.cat([idx, nxt.view(1, 1)], dim=1)
    return bytes(out).decode("utf-8", errors="replace")


# MARK: - Main


def parse_floats(parser, flag, text, n=None):
    """Comma-separated numbers of ``flag``; a usage error names the flag."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        parser.error("%s: expected comma-separated numbers, got %r" % (flag, text))
    if n is not None and len(values) != n:
        parser.error("%s: expected %d comma-separated numbers, got %r" % (flag, n, text))
    return values


#: The settings a resumed run keeps: the header's config key for each flag, and the flag's attribute.
RESUMED_SETTINGS = (("--layers", "layers", "layers"), ("--heads", "heads", "heads"), ("--dim", "channels", "dim"),
                    ("--context", "context", "context"), ("--batch", "batch", "batch"), ("--lr", "lr", "lr"),
                    ("--clip", "clip", "clip"), ("--seed", "init_seed", "seed"),
                    ("--eval-every", "eval_every", "eval_every"), ("--eval-windows", "eval_windows", "eval_windows"),
                    ("--checkpoint-every", "checkpoint_every", "checkpoint_every"))


def take_run_settings(parser, a, argv):
    """--resume: the run's own settings (its header's config) for every flag not given, and a
    refusal for one given with another value, as the Swift trainer's --resume does (the batches and
    the schedule of step n depend on them). A run file that is missing or unreadable is left to
    gradflow.Run, which says what is wrong with it."""
    path = os.path.join(a.out, "run.jsonl")
    try:
        header = gradflow.runfile.read_state(path).header
    except (OSError, gradflow.runfile.RunFileError):
        return
    config = header.get("config") or {}
    given = {w.split("=", 1)[0] for w in argv if w.startswith("--")}
    for flag, key, attr in RESUMED_SETTINGS:
        if key not in config:
            continue
        theirs = config[key]
        if flag in given and getattr(a, attr) != theirs:
            parser.error("--resume continues the run with its own settings: drop %s %s (the run's: %s)"
                         % (flag, getattr(a, attr), theirs))
        setattr(a, attr, theirs)
    data = header.get("data") or []
    theirs = data[0] if data and isinstance(data[0], dict) else {}
    if "--data" not in given and isinstance(theirs.get("path"), str):
        a.data = theirs["path"]
    if theirs.get("hash") and os.path.exists(a.data):
        mine = gradflow.data_source(a.data, training=True).get("hash")
        if mine != theirs["hash"]:
            parser.error("--resume: %s is not the run's data any more (fingerprint %s; the run was started on %s, "
                         "fingerprint %s)" % (a.data, mine, theirs.get("path", "its data"), theirs["hash"]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--out", required=True, help="run folder (must not hold a run unless --resume)")
    p.add_argument("--data", default=DEFAULT_CORPUS, help="a file, or a folder of files (read in name order)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's choice)")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--eval-windows", type=int, default=64, help="validation windows per evaluation")
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--sample-bytes", type=int, default=160, help="bytes sampled at each evaluation (0: none)")
    p.add_argument("--context-bands", default="8,64", help="context band edges")
    p.add_argument("--context-weights", help="manual context weights, one per band")
    p.add_argument("--time-weights", help="manual time weights high,mid,low")
    p.add_argument("--depth-weights", help="manual depth weights, one per group")
    p.add_argument("--axes", default="", help="axes on from the start, with unit weights: context,time,depth or "
                   "all (a weight or mode command turns an off axis on later)")
    p.add_argument("--adaptive", default="", help="axes under their adaptive policy: context,time,depth or all")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    a = p.parse_args(argv)
    for flag, value, least in (("--steps", a.steps, 1), ("--batch", a.batch, 1), ("--context", a.context, 2),
                               ("--layers", a.layers, 1), ("--heads", a.heads, 1), ("--dim", a.dim, 1),
                               ("--eval-windows", a.eval_windows, 1)):
        if value < least:
            p.error("%s must be %d or more, not %d" % (flag, least, value))
    if a.resume and (a.axes or a.adaptive or a.context_weights or a.time_weights or a.depth_weights):
        p.error("--resume continues the run's own refinement settings (the checkpoint holds them); drop --axes, "
                "--adaptive and the weight flags, and steer the run with gradflow attach instead")
    if a.resume:
        take_run_settings(p, a, sys.argv[1:] if argv is None else argv)

    rank, world, device = start_processes(a.device)
    if a.batch % world != 0:
        p.error("--batch %d does not split evenly over %d processes" % (a.batch, world))
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = GPT(a.layers, a.heads, a.dim, a.context).to(device)
    axes = ("context", "time", "depth") if a.axes == "all" else tuple(x for x in a.axes.split(",") if x)
    adaptive = ("context", "time", "depth") if a.adaptive == "all" else tuple(x for x in a.adaptive.split(",") if x)
    weights = {}
    if a.context_weights:
        weights["context"] = parse_floats(p, "--context-weights", a.context_weights)
    if a.time_weights:
        weights["time"] = parse_floats(p, "--time-weights", a.time_weights, 3)
    if a.depth_weights:
        weights["depth"] = parse_floats(p, "--depth-weights", a.depth_weights)
    refiner = Refiner(model, axes=axes, context_bands=tuple(int(e) for e in a.context_bands.split(",") if e),
                      adaptive=adaptive, weights=weights, total_steps=a.steps)
    # AdamW with weight decay on the matrices and the token embedding (as the Swift trainer), one
    # parameter group per depth group so the depth axis can scale each group's rate.
    groups = refiner.param_groups(weight_decay=0.1, no_decay=lambda name, p: p.dim() < 2 or name == "wpe.weight")
    optimizer = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), eps=1e-8)

    default = os.path.abspath(a.data) == DEFAULT_CORPUS
    name = "shakespeare" if default else None
    train, val = load_bytes(a.data)
    if len(train) <= a.context + 1 or len(val) <= a.context + 1:
        p.error("--data %s: %d training and %d validation bytes; each needs more than --context + 1 = %d"
                % (a.data, len(train), len(val), a.context + 1))
    source = gradflow.data_source(a.data, name=name, training=True)
    val_name = "val:" + source["name"][len("train:"):]
    warmup = min(100, max(1, a.steps // 10))
    preset = "S" if (a.layers, a.heads, a.dim, a.context, a.batch) == (4, 4, 128, 128, 8) else "custom"
    config = {"preset": preset, "layers": a.layers, "heads": a.heads, "channels": a.dim, "max_context": a.context,
              "context": a.context, "vocab": 256, "batch": a.batch, "steps": a.steps, "lr": a.lr,
              "warmup_steps": warmup, "min_lr_fraction": 0.1, "beta1": 0.9, "beta2": 0.95, "epsilon": 1e-8,
              "weight_decay": 0.1, "clip": a.clip, "init_seed": a.seed, "data_seed": a.seed,
              "eval_every": a.eval_every, "eval_windows": a.eval_windows, "checkpoint_every": a.checkpoint_every,
              "device": str(device)}

    run = gradflow.Run(a.out, model=model, optimizer=optimizer, total_steps=a.steps, config=config,
                       data=[source], refine=refiner, preset=preset, seed=a.seed, resume=a.resume)
    B, T = a.batch, a.context
    rows = slice(rank * B // world, (rank + 1) * B // world)
    trainer = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        trainer = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    with run:
        for step in range(run.start_step, a.steps):
            if run.should_stop:
                break
            model.train()
            lr = schedule(step, a.lr, warmup, a.steps)
            for g in optimizer.param_groups:
                g["lr"] = lr
            x, y = batch(train, step, B, T, a.seed, device)
            _, loss = trainer(x[rows], y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.clip_grad(a.clip)
            optimizer.step()
            run.step(loss=mean_over_ranks(loss, world), tokens=B * T)
            done = step + 1
            if rank > 0:
                continue
            if (a.eval_every > 0 and done % a.eval_every == 0) or done == a.steps:
                model.eval()
                full, by_position = evaluate(model, val, T, B, device, a.eval_windows, positions=True)
                gains = {}
                for c in CONTEXT_GAIN_WINDOWS:
                    if c < T:
                        with AttentionWindow(model, c):
                            gains[c] = evaluate(model, val, T, B, device, a.eval_windows)[0] - full
                text = sample(model, "\n", a.sample_bytes, 0.8, 1, device) if a.sample_bytes > 0 else None
                run.eval({val_name: full}, loss_by_position=by_position, context_gain=gains,
                         sample=text, sample_prompt="\n" if text is not None else None)
                print("step %d/%d  loss %.4f  val %.4f (%.3f bpb)" % (done, a.steps, loss.item(), full,
                                                                   full / math.log(2)), flush=True)
            if a.checkpoint_every > 0 and done % a.checkpoint_every == 0 and done != a.steps:
                run.checkpoint()
    if rank == 0:
        print("run file: %s" % run.path)
    if world > 1:
        del trainer   # DDP goes before the group (python/README.md, "Tearing down DDP with gloo")
        torch.distributed.barrier()   # tear down together (gloo aborts a rank whose peer left first)
        torch.distributed.destroy_process_group()
    return 0


def start_processes(device_name):
    """(rank, processes, device): one process, or the torchrun job this process belongs to (its
    process group started here, a GPU of its own on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, torch.device(device_name)
    import torch.distributed as dist
    if device_name == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def mean_over_ranks(loss, world):
    """The step's loss over the whole batch: the mean of the ranks' equal shares."""
    if world == 1:
        return loss
    total = loss.detach().clone()
    torch.distributed.all_reduce(total)
    return total / world


if __name__ == "__main__":
    sys.exit(main())
