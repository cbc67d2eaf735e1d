#!/usr/bin/env python3
"""PyTorch reference trainer for Gradflow's benchmark (DESIGN.md §4).

The same byte-level GPT as Gradflow (the GPT-2 layout of llm.c): byte vocabulary 256, learned
positions, pre-LayerNorm blocks with a fused QKV projection, causal multi-head attention, GELU(tanh)
MLP of 4×C, a bias on every linear, final LayerNorm, tied input/output embedding. Trained with
AdamW (β 0.9/0.95, ε 1e-8, weight decay 0.1 on 2-D weight matrices except the position embedding),
linear warm-up then cosine decay to 0.1×lr, global gradient-norm clip 1.0.

Modes:
  bench  time full training steps on random byte batches; prints median/min/max ms/step, tokens/s
  train  train on a byte file with Gradflow's data policy; prints eval lines and a final JSON line

Run with bench/.venv/bin/python (bench/setup.sh creates it).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 256


@dataclass(frozen=True)
class Preset:
    """Model and batch shape of a benchmark configuration (DESIGN.md §4)."""
    layers: int
    heads: int
    channels: int
    context: int
    batch: int
    expected_params: int


PRESETS = {
    "S": Preset(layers=4, heads=4, channels=128, context=128, batch=8, expected_params=842_496),
    "M": Preset(layers=6, heads=6, channels=384, context=256, batch=8, expected_params=10_844_160),
}

# Attention used when neither --plain nor --sdpa is given: the faster one on the reference
# machine (measured in docs/PERFORMANCE.md, "Reference trainer (PyTorch)").
DEFAULT_ATTENTION = "sdpa"
# AdamW implementation used by default: the faster one on CPU (same measurement).
DEFAULT_ADAMW = "fused"


# ----------------------------------------------------------------------------------------------
# Model


class CausalSelfAttention(nn.Module):
    """Fused QKV projection, causal multi-head attention, output projection."""

    def __init__(self, p: Preset, use_sdpa: bool):
        super().__init__()
        self.heads = p.heads
        self.use_sdpa = use_sdpa
        self.qkv = nn.Linear(p.channels, 3 * p.channels, bias=True)
        self.proj = nn.Linear(p.channels, p.channels, bias=True)
        self.proj.residual_scaled = True
        mask = torch.tril(torch.ones(p.context, p.context, dtype=torch.bool))
        self.register_buffer("mask", mask.view(1, 1, p.context, p.context), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        hs = c // self.heads
        q, k, v = self.qkv(x).split(c, dim=2)
        q = q.view(b, t, self.heads, hs).transpose(1, 2)  # (B, H, T, hs)
        k = k.view(b, t, self.heads, hs).transpose(1, 2)
        v = v.view(b, t, self.heads, hs).transpose(1, 2)
        if self.use_sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
            att = att.masked_fill(~self.mask[:, :, :t, :t], float("-inf"))
            att = F.softmax(att, dim=-1)
            y = att @ v
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        return self.proj(y)


class MLP(nn.Module):
    """C → 4C → GELU(tanh) → C."""

    def __init__(self, p: Preset):
        super().__init__()
        self.fc = nn.Linear(p.channels, 4 * p.channels, bias=True)
        self.gelu = nn.GELU(approximate="tanh")
        self.proj = nn.Linear(4 * p.channels, p.channels, bias=True)
        self.proj.residual_scaled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-LayerNorm transformer block."""

    def __init__(self, p: Preset, use_sdpa: bool):
        super().__init__()
        self.ln1 = nn.LayerNorm(p.channels)
        self.attn = CausalSelfAttention(p, use_sdpa)
        self.ln2 = nn.LayerNorm(p.channels)
        self.mlp = MLP(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Byte-level GPT with tied input/output embedding."""

    def __init__(self, p: Preset, use_sdpa: bool):
        super().__init__()
        self.preset = p
        self.wte = nn.Embedding(VOCAB, p.channels)
        self.wpe = nn.Embedding(p.context, p.channels)
        self.blocks = nn.ModuleList(Block(p, use_sdpa) for _ in range(p.layers))
        self.ln_f = nn.LayerNorm(p.channels)
        self.apply(self._init)

    def _init(self, m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            std = 0.02
            if getattr(m, "residual_scaled", False):
                std /= math.sqrt(2 * self.preset.layers)
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        pos = torch.arange(t, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        return F.linear(self.ln_f(x), self.wte.weight)  # tied output embedding, no bias


def loss_of(model: GPT, windows: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) of predicting windows[:, 1:] from windows[:, :-1]."""
    logits = model(windows[:, :-1])
    return F.cross_entropy(logits.reshape(-1, VOCAB), windows[:, 1:].reshape(-1))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------------------------
# Optimizer and schedule


def make_adamw(model: GPT, lr: float, impl: str) -> torch.optim.AdamW:
    """AdamW with weight decay 0.1 on 2-D weight matrices except the position embedding."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (decay if param.dim() == 2 and name != "wpe.weight" else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    flags = {"fused": impl == "fused", "foreach": impl == "foreach"}
    if impl == "for-loop":
        flags = {"foreach": False}
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, **flags)


def warmup_steps(steps: int) -> int:
    """min(100, steps/10) warm-up steps, at least 1."""
    return max(1, min(100, steps // 10))


def lr_at(step: int, steps: int, lr: float) -> float:
    """Learning rate of 0-based step `step` of `steps`: linear warm-up ((step+1)/W · lr), then
    cosine from lr at step W down to 0.1·lr at the last step (steps − 1)."""
    w = warmup_steps(steps)
    if step < w:
        return lr * (step + 1) / w
    progress = (step - w) / max(1, steps - 1 - w)
    return lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def train_step(model: GPT, opt: torch.optim.Optimizer, windows: torch.Tensor, lr: float) -> float:
    """One full step: zero_grad, forward, loss, backward, clip 1.0, AdamW. Returns the loss."""
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss = loss_of(model, windows)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
    opt.step()
    return loss.item()


# ----------------------------------------------------------------------------------------------
# Data policy (the same as Gradflow's)


def split_bytes(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training = bytes [0, floor(0.9·n)), validation = [floor(0.9·n), n)."""
    cut = int(math.floor(0.9 * len(data)))
    return data[:cut], data[cut:]


def random_windows(train: np.ndarray, rng: np.random.Generator, b: int, t: int) -> np.ndarray:
    """B windows of T+1 bytes at uniformly random start offsets in the training split."""
    starts = rng.integers(0, len(train) - t, size=b)  # start ≤ len − (T+1)
    return np.stack([train[s:s + t + 1] for s in starts])


def eval_windows(val: np.ndarray, t: int, count: int) -> np.ndarray:
    """The first `count` windows of T+1 bytes from the start of val, stride T (as many as fit)."""
    fit = (len(val) - 1) // t
    n = min(count, fit)
    if n == 0:
        raise SystemExit(f"validation split has {len(val)} bytes; need at least {t + 1}")
    return np.stack([val[k * t:k * t + t + 1] for k in range(n)])


@torch.no_grad()
def val_loss(model: GPT, windows: torch.Tensor, batch: int) -> float:
    """Mean cross-entropy (nats) over every position of every window."""
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        w = windows[i:i + batch]
        logits = model(w[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, VOCAB), w[:, 1:].reshape(-1),
                                 reduction="sum").item()
        count += w[:, 1:].numel()
    return total / count


# ----------------------------------------------------------------------------------------------
# Modes


def build(preset_name: str, attention: str, seed: int) -> GPT:
    p = PRESETS[preset_name]
    torch.manual_seed(seed)
    model = GPT(p, use_sdpa=attention == "sdpa")
    n = count_params(model)
    assert n == p.expected_params, f"preset {preset_name}: {n} parameters, expected {p.expected_params}"
    return model


def run_bench(args: argparse.Namespace) -> None:
    model = build(args.preset, args.attention, args.seed)
    p = model.preset
    opt = make_adamw(model, 1e-3, args.adamw)
    gen = torch.Generator().manual_seed(args.seed)
    total = args.warmup + args.steps
    times_ms = []
    for step in range(total):
        windows = torch.randint(0, VOCAB, (p.batch, p.context + 1), generator=gen)
        t0 = time.perf_counter()
        train_step(model, opt, windows, lr_at(step, total, 1e-3))
        dt = (time.perf_counter() - t0) * 1e3
        if step >= args.warmup:
            times_ms.append(dt)
    tokens = p.batch * p.context
    med = statistics.median(times_ms)
    result = {
        "preset": args.preset,
        "params": count_params(model),
        "tokens_per_second": tokens / (med / 1e3),
        "ms_per_step": med,
        "min_ms_per_step": min(times_ms),
        "max_ms_per_step": max(times_ms),
        "steps": args.steps,
        "warmup": args.warmup,
        "threads": torch.get_num_threads(),
        "impl": "pytorch",
        "attention": args.attention,
        "adamw": args.adamw,
        "torch": torch.__version__,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"preset {args.preset}: {result['params']:,} params, {tokens} tokens/step, "
              f"{result['threads']} threads, attention {args.attention}, AdamW {args.adamw}")
        print(f"ms/step median {med:.2f}  min {min(times_ms):.2f}  max {max(times_ms):.2f}  "
              f"({args.steps} steps after {args.warmup} warm-up)")
        print(f"tokens/s (median) {result['tokens_per_second']:.0f}")


def run_train(args: argparse.Namespace) -> None:
    try:
        data = np.fromfile(args.data, dtype=np.uint8)
    except OSError as e:
        raise SystemExit(f"--data {args.data}: {e.strerror}")
    model = build(args.preset, args.attention, args.seed)
    p = model.preset
    train, val = split_bytes(data)
    if len(train) < p.context + 1:
        raise SystemExit(f"--data {args.data}: training split has {len(train)} bytes, need ≥ {p.context + 1}")
    val_w = torch.from_numpy(eval_windows(val, p.context, args.eval_windows).astype(np.int64))
    rng = np.random.Generator(np.random.PCG64(args.seed))
    opt = make_adamw(model, args.lr, args.adamw)
    print(f"train {args.data}: {len(data):,} bytes (train {len(train):,}, val {len(val):,}), "
          f"preset {args.preset} ({count_params(model):,} params), {args.steps} steps, lr {args.lr}, "
          f"warm-up {warmup_steps(args.steps)}, seed {args.seed}, {torch.get_num_threads()} threads, "
          f"{len(val_w)} eval windows", flush=True)
    losses, evals = [], []

    def evaluate(step: int) -> None:
        v = val_loss(model, val_w, p.batch)
        evals.append(v)
        recent = losses[-50:]
        train_txt = f"{statistics.fmean(recent):.4f}" if recent else "-"
        print(f"step {step:5d}  train {train_txt}  val {v:.4f}  ({v / math.log(2):.4f} bits/byte)  "
              f"lr {lr_at(max(step - 1, 0), args.steps, args.lr):.2e}  {time.perf_counter() - t0:.0f}s",
              flush=True)

    t0 = time.perf_counter()
    evaluate(0)
    for step in range(args.steps):
        windows = torch.from_numpy(random_windows(train, rng, p.batch, p.context).astype(np.int64))
        losses.append(train_step(model, opt, windows, lr_at(step, args.steps, args.lr)))
        done = step + 1
        if done % args.eval_every == 0 or done == args.steps:
            evaluate(done)
    summary = {
        "impl": "pytorch",
        "preset": args.preset,
        "steps": args.steps,
        "seed": args.seed,
        "lr": args.lr,
        "final_train_loss": statistics.fmean(losses[-50:]),
        "final_val_loss": evals[-1],
        "best_val_loss": min(evals[1:]) if len(evals) > 1 else evals[0],
        "seconds": time.perf_counter() - t0,
        "threads": torch.get_num_threads(),
        "attention": args.attention,
    }
    print(json.dumps(summary))


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--preset", choices=sorted(PRESETS), default="S")
    common.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    common.add_argument("--seed", type=int, default=1)
    att = common.add_mutually_exclusive_group()
    att.add_argument("--attention", choices=["plain", "sdpa"], default=DEFAULT_ATTENTION)
    att.add_argument("--sdpa", dest="attention", action="store_const", const="sdpa",
                     help="use F.scaled_dot_product_attention")
    att.add_argument("--plain", dest="attention", action="store_const", const="plain",
                     help="write attention out: q@kᵀ/sqrt(hs), causal mask, softmax, @v")
    common.add_argument("--adamw", choices=["fused", "foreach", "for-loop"], default=DEFAULT_ADAMW)

    b = sub.add_parser("bench", parents=[common], help="time full training steps on random bytes")
    b.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    b.add_argument("--warmup", type=int, default=5, help="untimed warm-up steps (default 5)")
    b.add_argument("--json", action="store_true", help="print one JSON object")

    t = sub.add_parser("train", parents=[common], help="train on a byte file")
    t.add_argument("--data", required=True, help="file read as bytes")
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--eval-every", type=int, default=200)
    t.add_argument("--eval-windows", type=int, default=64)
    args = ap.parse_args(argv)
    for flag in ("steps", "threads"):
        if getattr(args, flag) < 1:
            ap.error(f"--{flag} must be ≥ 1, got {getattr(args, flag)}")
    if args.mode == "bench" and args.warmup < 0:
        ap.error(f"--warmup must be ≥ 0, got {args.warmup}")
    if args.mode == "train" and (args.eval_every < 1 or args.eval_windows < 1):
        ap.error("--eval-every and --eval-windows must be ≥ 1")
    return args


def main(argv: list[str]) -> None:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    if args.mode == "bench":
        run_bench(args)
    else:
        run_train(args)


if __name__ == "__main__":
    main(sys.argv[1:])
