"""The Refiner: the three scale axes of docs/METHOD.md for a torch model and optimizer.

Per training step::

    loss.backward()
    refiner.before_optimizer(step)        # time axis on .grad; snapshot of θ for the statistics
    torch.nn.utils.clip_grad_norm_(...)   # optional, as usual
    refiner.apply_depth(optimizer)        # lr_k = lr · φ_k for this step (depth axis)
    optimizer.step()
    fields = refiner.finish_step(step, loss.item())   # the step record's refinement members
    optimizer.zero_grad()
    scheduler.step()                      # if any: after finish_step (which restores the lrs)

The context axis needs the model's attention to be ``BandedCausalSelfAttention``; the time and
depth axes work for any model.
"""

from __future__ import annotations

import math
import operator
from typing import Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn as nn

from . import core, fused
from .attention import BandedCausalSelfAttention, ContextState
from .core import RefineError


# ---------------------------------------------------------------------------------------------
# Parameters, their depth groups and one flat arena layout


def _model_blocks(model: nn.Module):
    """The model's stack of blocks: the ModuleList holding the most parameters, or else the
    top-level children that hold parameters. Returns (prefix or None, blocks)."""
    best = None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            count = sum(p.numel() for p in module.parameters())
            if count > 0 and (best is None or count > best[2]):
                best = (name, module, count)
    if best is not None:
        return best[0] + ".", list(best[1])
    children = [c for c in model.children() if any(True for _ in c.parameters())]
    # A model with no sub-modules holding parameters is one block.
    return None, children or [model]


def tensor_layers(model: nn.Module, params: Sequence[nn.Parameter]):
    """The layer of every parameter, as DepthGroups.swift numbers them: −1 for what comes before
    the blocks (embeddings), 0..L−1 for the blocks, L for what comes after (final norm, head).
    Returns (layers per param, L)."""
    prefix, blocks = _model_blocks(model)
    ids = {id(p): i for i, p in enumerate(params)}
    layer_of = {}
    for i, block in enumerate(blocks):
        for p in block.parameters():
            layer_of.setdefault(id(p), i)
    L = len(blocks)
    seen_block = False
    out = [None] * len(params)
    for _, p in model.named_parameters():
        if id(p) not in ids:
            continue
        if id(p) in layer_of:
            seen_block = True
            out[ids[id(p)]] = layer_of[id(p)]
        else:
            out[ids[id(p)]] = L if seen_block else -1
    return out, L


class _Chunk:
    """A slice [lo, hi) of the arena holding whole tensors (``indices``), within one depth group
    or the whole arena. Target views into a buffer row are made once per row and kept."""

    __slots__ = ("lo", "hi", "group", "indices", "lengths", "_targets")

    def __init__(self, lo, hi, group, indices):
        self.lo, self.hi, self.group, self.indices = lo, hi, group, indices
        self.lengths = None
        self._targets = {}

    def sources(self, tensors) -> List[torch.Tensor]:
        return [tensors[i] for i in self.indices]

    def targets(self, arena, row: torch.Tensor) -> List[torch.Tensor]:
        key = (row.data_ptr(), row.numel())
        views = self._targets.get(key)
        if views is None:
            views = [row[arena.offsets[i]:arena.offsets[i] + arena.counts[i]].view(arena.params[i].shape)
                     for i in self.indices]
            self._targets[key] = views
        return views


class _Arena:
    """One flat layout of the trainable parameters, ordered by depth group, so that each group is
    a contiguous slice. Buffers are float32 (float64 for float64 models). Each statistic is a few
    whole-slice torch operations (``chunks``: one chunk per depth group; ``whole``: the arena as one chunk).
    Cutting the slices into cache-sized chunks was measured and gained nothing on the CPU, while
    each extra operation costs several microseconds of dispatch."""

    def __init__(self, params: List[nn.Parameter], group_of: List[int], groups: int):
        order = sorted(range(len(params)), key=lambda i: group_of[i])
        self.params = [params[i] for i in order]
        self.group_of = [group_of[i] for i in order]
        self.groups = groups
        devices = {p.device for p in self.params}
        if len(devices) != 1:
            raise RefineError(f"the refiner needs all trainable parameters on one device, found {sorted(map(str, devices))}")
        self.device = devices.pop()
        dtypes = {p.dtype for p in self.params}
        self.dtype = torch.float64 if dtypes == {torch.float64} else torch.float32
        self.offsets, self.counts = [], []
        n = 0
        for p in self.params:
            self.offsets.append(n)
            self.counts.append(p.numel())
            n += p.numel()
        self.size = n
        self.group_ranges = []
        for g in range(groups):
            idx = [i for i, k in enumerate(self.group_of) if k == g]
            lo = self.offsets[idx[0]] if idx else 0
            hi = self.offsets[idx[-1]] + self.counts[idx[-1]] if idx else 0
            self.group_ranges.append((lo, hi))
        self.group_sizes = [hi - lo for lo, hi in self.group_ranges]
        self.chunks = [_Chunk(lo, hi, g, [i for i, k in enumerate(self.group_of) if k == g])
                       for g, (lo, hi) in enumerate(self.group_ranges) if hi > lo]
        self.whole = _Chunk(0, n, None, list(range(len(self.params))))

    def buffer(self, rows: int) -> torch.Tensor:
        return torch.zeros(rows, max(self.size, 1), dtype=self.dtype, device=self.device)

    def views(self, row: torch.Tensor) -> List[torch.Tensor]:
        return [row[o:o + c].view(p.shape) for o, c, p in zip(self.offsets, self.counts, self.params)]

    def gather(self, views: List[torch.Tensor], tensors: List[Optional[torch.Tensor]], row: torch.Tensor) -> List[int]:
        """Copies ``tensors`` into ``row`` (zeros where a tensor is None); returns the missing indices."""
        missing = [i for i, t in enumerate(tensors) if t is None]
        if not missing:
            torch._foreach_copy_(views, tensors)
        else:
            row.zero_()
            present = [i for i, t in enumerate(tensors) if t is not None]
            if present:
                torch._foreach_copy_([views[i] for i in present], [tensors[i] for i in present])
        return missing


def _total(sums: List[torch.Tensor], width: int) -> List[List[float]]:
    """Chunk sums (``width`` per chunk, 0-d tensors) as Python floats, one list per chunk."""
    if not sums:
        return []
    values = torch.stack(sums).to(torch.float64).tolist()
    return [values[i:i + width] for i in range(0, len(values), width)]


# ---------------------------------------------------------------------------------------------
# Time axis


class TimeFilter:
    """Two EMAs per tensor (m_f, m_s, started at the tensor's first gradient), the bands
    h = g − m_f, mid = m_f − m_s, low = m_s, and ĝ = g + (w_H−1)h + (w_M−1)mid + (w_L−1)low written to
    .grad with the ⟨ĝ, g⟩ ≤ 0 guard. With unit weights .grad is not written."""

    def __init__(self, arena: _Arena, beta_fast: float, beta_slow: float):
        for name, beta in (("fast", beta_fast), ("slow", beta_slow)):
            if not 0 <= beta < 1:
                raise RefineError(f"time bands: the {name} EMA beta must be in [0, 1), got {beta}")
        if beta_fast > beta_slow:
            raise RefineError(f"time bands: the fast beta ({beta_fast}) must not exceed the slow beta ({beta_slow})")
        self.arena, self.beta_fast, self.beta_slow = arena, beta_fast, beta_slow
        # Rows: g (gathered), m_f, m_s, h (then d = ĝ − g), mid (then scratch).
        self.buf = arena.buffer(5)
        self.views = [arena.views(self.buf[r]) for r in range(5)]
        self.started = [False] * len(arena.params)
        self.all_started = False
        self.guard_fallbacks = 0
        self._steady_views = None

    def step(self, weights: Sequence[float]) -> dict:
        """Updates the EMAs with the current .grad, measures the bands and (for non-unit weights)
        writes ĝ into .grad. Returns the band norms, cos(g_t, m_f,t−1) and this step's fallbacks."""
        a = self.arena
        grads = [p.grad for p in a.params]
        cH, cM, cL = (float(w) - 1 for w in weights)
        refines = not (cH == 0 and cM == 0 and cL == 0)
        bf, bs = 1 - self.beta_fast, 1 - self.beta_slow
        general = not self.all_started or any(g is None for g in grads)
        missing = [i for i, g in enumerate(grads) if g is None]
        saved = []
        if general:
            # First steps (EMAs start at a tensor's first gradient) and tensors without a gradient.
            a.gather(self.views[0], grads, self.buf[0])
            saved = [(i, self.views[1][i].clone(), self.views[2][i].clone()) for i in missing if self.started[i]]
        sums, piece_sums = [], []
        if general:
            g, f, s = (self.buf[r, a.whole.lo:a.whole.hi] for r in range(3))
            sums = [torch.dot(g, g), torch.dot(g, f), torch.dot(f, f)]
            f.lerp_(g, bf)
            s.lerp_(g, bs)
            sums = self._finish_general(grads, missing, saved, sums, refines, cH, cM, cL, piece_sums)
            gg, gf, ff, hh, mm, ll = (sum(column) for column in zip(*_total(sums, 6)))
        else:
            gg, gf, ff, hh, mm, ll = self._steady(grads, refines, cH, cM, cL, piece_sums)
        fallbacks = self._apply(grads, missing, piece_sums) if refines else 0
        denominator = math.sqrt(gg * ff) if gg * ff > 0 else 0.0
        cosine = None
        if denominator > 0 and math.isfinite(denominator) and math.isfinite(gf):
            cosine = max(-1.0, min(1.0, gf / denominator))
        return {"band_norms": [math.sqrt(max(hh, 0)), math.sqrt(max(mm, 0)), math.sqrt(max(ll, 0))],
                "momentum_cosine": cosine, "guard_fallbacks": fallbacks}

    def _steady(self, grads, refines, cH, cM, cL, piece_sums):
        """A step with every EMA started and every gradient present, on the torch path in eight
        whole-arena operations: gather g; ⟨g, g⟩ and ⟨m_f, g⟩ in one matrix–vector product and ⟨m_f, m_f⟩
        (m_f before the update); the two EMA updates; mid = m_f − m_s, ‖mid‖² and ‖m_s‖² (new EMAs).
        h = g − m_f,new = β_f·(g − m_f,old) is not written out: ‖h‖² = β_f²(‖g‖² − 2⟨m_f, g⟩ +
        ‖m_f‖²) in float64 from the float32 products (h is the noisy band, rarely small next to g,
        so little cancels). ‖mid‖ is measured directly: as a quadratic form of the products of
        (g, m_f, m_s) it would lose about two digits (m_f and m_s are close), with float32 dot
        products already good to about 1e-4. Each operation is a pass over memory that in a
        training step mostly comes from DRAM; the former path made ten. Where the fused kernels
        apply (gradflow.refine.fused: float32 CPU gradients), one pass does all of it, reading
        each .grad in place."""
        a = self.arena
        if self._steady_views is None:
            # Slices made once (each slicing costs microseconds of Python); one result tensor.
            p = torch.zeros(5, dtype=self.buf.dtype, device=self.buf.device)
            self._products = p
            self._steady_views = (tuple(self.buf[r] for r in range(5)), self.buf[0:2],
                                  p[0:2], p[2], p[3], p[4], a.whole.targets(a, self.buf[0]))
        (g, f, s, d, mid), gf, out_g, out_ff, out_mm, out_ss, targets = self._steady_views
        if fused.eligible((self.buf, *grads)):
            # The same products in one pass, g copied into its row only when ĝ needs it.
            gg, fg, ff, mm, ll = fused.kernels.time_filter(
                [t.data_ptr() for t in grads], a.counts, f.data_ptr(), s.data_ptr(),
                g.data_ptr() if refines else 0, 1 - self.beta_fast, 1 - self.beta_slow, fused.threads())
        else:
            torch._foreach_copy_(targets, grads)
            torch.mv(gf, g, out=out_g)           # ⟨g,g⟩ ⟨m_f,g⟩
            torch.dot(f, f, out=out_ff)          # ⟨m_f,m_f⟩
            f.lerp_(g, 1 - self.beta_fast)
            s.lerp_(g, 1 - self.beta_slow)
            torch.sub(f, s, out=mid)
            torch.dot(mid, mid, out=out_mm)
            torch.dot(s, s, out=out_ss)
            gg, fg, ff, mm, ll = self._products.tolist()
        if refines:
            # d = c_H·h + c_M·mid + c_L·low = c_H·g + (c_M − c_H)·m_f + (c_L − c_M)·m_s (new EMAs).
            torch.mul(g, cH, out=d)
            if cM != cH:
                d.add_(f, alpha=cM - cH)
            if cL != cM:
                d.add_(s, alpha=cL - cM)
            piece_sums += self._piece_sums(a.whole, g, d, mid)
        hh = self.beta_fast ** 2 * (gg - 2 * fg + ff)
        return gg, fg, ff, max(hh, 0.0), mm, ll

    def _finish_general(self, grads, missing, saved, sums, refines, cH, cM, cL, piece_sums):
        """The rest of a step on the whole arena: start the EMAs of new tensors, leave those of
        tensors without a gradient as they were, and measure (bands of missing tensors are 0)."""
        a = self.arena
        g, f, s, h, mid = self.buf
        # cos terms: a tensor without gradient contributes nothing; one not started has m_f = 0.
        ff_missing = [torch.dot(fi.view(-1), fi.view(-1)) for _, fi, _ in saved]
        for i, started in enumerate(self.started):
            if not started and grads[i] is not None:
                self.views[1][i].copy_(self.views[0][i])
                self.views[2][i].copy_(self.views[0][i])
                self.started[i] = True
        self.all_started = all(self.started)
        for i, fi, si in saved:
            self.views[1][i].copy_(fi)
            self.views[2][i].copy_(si)
        for i in missing:
            if not any(i == j for j, _, _ in saved):
                self.views[1][i].zero_()
                self.views[2][i].zero_()
        torch.sub(g, f, out=h)
        torch.sub(f, s, out=mid)
        for i in missing:
            self.views[3][i].zero_()
            self.views[4][i].zero_()
        ss = torch.dot(s, s)
        for i in missing:
            ss = ss - torch.dot(self.views[2][i].reshape(-1), self.views[2][i].reshape(-1))
        ff = torch.stack(sums[2::3]).sum() - (torch.stack(ff_missing).sum() if ff_missing else 0)
        out = [torch.stack(sums[0::3]).sum(), torch.stack(sums[1::3]).sum(), ff,
               torch.dot(h, h), torch.dot(mid, mid), ss]
        if refines:
            self._change(h, mid, s, cH, cM, cL)
            lo, hi = a.whole.lo, a.whole.hi
            piece_sums += self._piece_sums(a.whole, g[lo:hi], h[lo:hi], mid[lo:hi])
        return out

    @staticmethod
    def _change(h, mid, s, cH, cM, cL) -> None:
        """d = c_H·h + c_M·mid + c_L·low, written over h."""
        if cH != 0:
            h.mul_(cH)
        else:
            h.zero_()
        if cM != 0:
            h.add_(mid, alpha=cM)
        if cL != 0:
            h.add_(s, alpha=cL)

    def _piece_sums(self, chunk, g, d, scratch) -> List[torch.Tensor]:
        """⟨d, g⟩ and ‖g‖² of every piece of the chunk (for the guard of each tensor)."""
        if chunk.lengths is None:
            chunk.lengths = torch.tensor([self.arena.counts[i] for i in chunk.indices], device=g.device)
        torch.mul(d, g, out=scratch)
        dg = torch.segment_reduce(scratch, "sum", lengths=chunk.lengths)
        torch.mul(g, g, out=scratch)
        gg = torch.segment_reduce(scratch, "sum", lengths=chunk.lengths)
        return [dg, gg]

    def _apply(self, grads, missing, piece_sums) -> int:
        """The guard per tensor (⟨ĝ, g⟩ = ‖g‖² + ⟨d, g⟩ ≤ 0 for a non-zero g: keep g, count it),
        then ĝ = g + d for the others."""
        a = self.arena
        n = len(a.params)
        dg, gg = [0.0] * n, [0.0] * n
        values = [t.to(torch.float64).tolist() for t in piece_sums]
        for i, x, y in zip(a.whole.indices, values[0], values[1]):
            dg[i] += x
            gg[i] += y
        skip = set(missing)
        targets, changes, fallbacks = [], [], 0
        for i in range(n):
            if i in skip or a.counts[i] == 0:
                continue
            if gg[i] > 0 and gg[i] + dg[i] <= 0:
                fallbacks += 1
                continue
            targets.append(grads[i])
            changes.append(self.views[3][i])
        if targets:
            if all(t.dtype == c.dtype for t, c in zip(targets, changes)):
                torch._foreach_add_(targets, changes)
            else:
                for t, c in zip(targets, changes):
                    t.add_(c.to(t.dtype))
        self.guard_fallbacks += fallbacks
        return fallbacks

    def state_dict(self) -> dict:
        return {"fast": self.buf[1].clone(), "slow": self.buf[2].clone(), "started": list(self.started),
                "guard_fallbacks": self.guard_fallbacks}

    def load_state_dict(self, state: dict) -> None:
        if state["fast"].numel() != self.buf[1].numel() or len(state["started"]) != len(self.started):
            raise RefineError("time bands: the saved state does not match this model's parameters")
        self.buf[1].copy_(state["fast"])
        self.buf[2].copy_(state["slow"])
        self.started = list(state["started"])
        self.all_started = all(self.started)
        self.guard_fallbacks = int(state["guard_fallbacks"])


# ---------------------------------------------------------------------------------------------
# Depth statistics and oscillation meters


class DepthMeter:
    """Per depth group: ‖g_k‖², ⟨g_t, g_t−1⟩, ‖Δθ_k‖², ⟨Δθ_t, Δθ_t−1⟩, ‖θ_k‖² and the sign flips
    of the update. Rows: g_a, g_b (the newest and the previous gradient, alternating), u_a, u_b
    (θ before the step, then the update, alternating), scratch. The update is kept as
    θ_before − θ_after = −Δθ: its norms, products and sign flips are those of Δθ."""

    def __init__(self, arena: _Arena):
        self.arena = arena
        self.buf = arena.buffer(5)
        self.current = 0          # which of the two rows holds the newest g (and update)
        self.prev_sq = [[0.0, 0.0] for _ in range(arena.groups)]   # ‖g_t−1‖², ‖Δθ_t−1‖² per group
        self.snapshot_taken = False
        self._views = None
        self._fused_param_sq = None   # ‖θ_k‖² per group when the snapshot ran fused

    def snapshot(self) -> None:
        """θ before the optimizer step, into the row the update will take, and ‖θ_k‖² from it at
        once (while the row is still in cache)."""
        row = self.buf[2 + (self.current ^ 1)]
        self.snapshot_taken = True
        a = self.arena
        if self._fused_ok(a.params):
            self._fused_param_sq = fused.kernels.depth_snapshot(
                [p.data_ptr() for p in a.params], a.counts, a.group_of, a.groups, row.data_ptr(), fused.threads())
            return
        self._fused_param_sq = None
        with torch.no_grad():   # the parameters themselves as sources (no detach per tensor)
            whole = self.arena.whole
            torch._foreach_copy_(whole.targets(self.arena, row), whole.sources(self.arena.params))
        for rows, _, _, res in self._chunk_views():
            theta = rows[2 + (self.current ^ 1)]
            torch.dot(theta, theta, out=res[2])

    def _fused_ok(self, tensors) -> bool:
        """Whether the fused kernels may measure this step (tensors: the parameters, or the
        gradients with None allowed)."""
        return (0 < self.arena.groups <= fused.MAX_GROUPS
                and fused.eligible((self.buf, *(t for t in tensors if t is not None))))

    def _chunk_views(self):
        """Per depth chunk: its slices of the rows and a slot of 6 results, made once (slicing a
        tensor costs microseconds of Python each time)."""
        if self._views is None:
            b, lo_hi = self.buf, [(c.lo, c.hi) for c in self.arena.chunks]
            self._results = torch.zeros(len(lo_hi), 6, dtype=b.dtype, device=b.device)
            self._views = [([b[r, lo:hi] for r in range(5)], b[0:2, lo:hi], b[2:4, lo:hi], self._results[k])
                           for k, (lo, hi) in enumerate(lo_hi)]
        return self._views

    def measure(self) -> List[dict]:
        """Copies g into its row, forms the update, and measures per chunk into one small tensor
        read back once: ⟨g_a, g⟩ ⟨g_b, g⟩ ‖θ‖² ⟨u_a, u⟩ ⟨u_b, u⟩ flips (a and b the two rows, in
        row order; which is current is sorted out in Python)."""
        a = self.arena
        cur, prev = self.current ^ 1, self.current
        grads = [p.grad for p in a.params]
        # The parameters passed the check at the snapshot; the gradients may have changed since.
        if self._fused_param_sq is not None and self._fused_ok(grads):
            return self._measure_fused(grads, cur, prev)
        if self._fused_param_sq is not None:
            # The snapshot was fused, this step's measure is not: ‖θ‖² per chunk where the torch
            # path reads it.
            for k, chunk in enumerate(a.chunks):
                self._chunk_views()[k][3][2] = self._fused_param_sq[chunk.group]
        whole = a.whole
        if any(g is None for g in grads):
            for t, g in zip(whole.targets(a, self.buf[cur]), grads):
                if g is None:
                    t.zero_()
                else:
                    t.copy_(g)
        else:
            torch._foreach_copy_(whole.targets(a, self.buf[cur]), grads)
        views = self._chunk_views()
        for rows, g2, _, res in views:
            torch.mv(g2, rows[cur], out=res[0:2])     # one pass for (⟨g_a, g⟩, ⟨g_b, g⟩)
        with torch.no_grad():
            torch._foreach_sub_(whole.targets(a, self.buf[2 + cur]), a.params)
        u, up, scratch = self.buf[2 + cur], self.buf[2 + prev], self.buf[4]
        torch.mul(u, up, out=scratch)
        torch.lt(scratch, 0, out=scratch)
        big = {}
        for k, (rows, _, u2, res) in enumerate(views):
            torch.mv(u2, rows[2 + cur], out=res[3:5])
            # Counts are exact in float32 up to 2^24 per chunk.
            if rows[4].numel() <= 1 << 24:
                torch.sum(rows[4], dim=0, out=res[5])
            else:
                big[k] = rows[4].sum(dtype=torch.float64).item()
        values = self._results.tolist()
        sums = []
        for k, (gd0, gd1, tt, ud0, ud1, flips) in enumerate(values):
            gdots, udots = (gd0, gd1), (ud0, ud1)
            sums.append([gdots[cur], gdots[prev], tt, udots[cur], udots[prev], big.get(k, flips)])
        per_group = [[0.0] * 6 for _ in range(a.groups)]
        for chunk, values in zip(a.chunks, sums):
            for j, v in enumerate(values):
                per_group[chunk.group][j] += v
        return self._finish(per_group, cur)

    def _measure_fused(self, grads, cur: int, prev: int) -> List[dict]:
        """``measure`` in one pass over the gradients and parameters (the fused kernel)."""
        a = self.arena
        rows = [self.buf[r].data_ptr() for r in range(4)]
        values = fused.kernels.depth_measure(
            [0 if g is None else g.data_ptr() for g in grads], [p.data_ptr() for p in a.params], a.counts,
            a.group_of, a.groups, rows[cur], rows[prev], rows[2 + cur], rows[2 + prev], fused.threads())
        per_group = []
        for k in range(a.groups):
            gg, gdot, uu, udot, flips = values[5 * k:5 * k + 5]
            per_group.append([gg, gdot, self._fused_param_sq[k], uu, udot, flips])
        return self._finish(per_group, cur)

    def _finish(self, per_group, cur: int) -> List[dict]:
        """The per-group records from (‖g‖², ⟨g, g_prev⟩, ‖θ‖², ‖u‖², ⟨u, u_prev⟩, flips)."""
        out = []
        for k, (gg, gdot, tt, uu, udot, flips) in enumerate(per_group):
            out.append({"grad_sq": gg, "grad_dot_prev": gdot, "prev_grad_sq": self.prev_sq[k][0],
                        "update_sq": uu, "update_dot_prev": udot, "prev_update_sq": self.prev_sq[k][1],
                        "param_sq": tt, "flips": int(round(flips))})
            self.prev_sq[k] = [gg, uu]
        self.current = cur
        self.snapshot_taken = False
        return out

# ---------------------------------------------------------------------------------------------
# The refiner


def _axes_arg(value, name) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    out = []
    for v in value:
        if v == "all":
            out += list(core.AXES)
            continue
        if v not in core.AXES:
            raise RefineError(f"{name}: unknown axis {v!r}; the axes are context, time, depth (or 'all')")
        out.append(v)
    return list(dict.fromkeys(out))


class _DepthApplication:
    """What apply_depth changed; restores the learning rates (also usable as a context manager)."""

    def __init__(self, changes):
        self.changes = changes     # [(group dict, lr before, lr set)]

    def restore(self) -> None:
        for group, before, applied in self.changes:
            # A scheduler that already set a fresh rate keeps it.
            if group["lr"] == applied:
                group["lr"] = before
        self.changes = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.restore()
        return False


class Refiner:
    """Structured multi-scale gradient refinement for a torch model (docs/METHOD.md).

    Axes are off unless enabled. An axis is **adaptive** when listed in ``adaptive``, else
    **manual** when listed in ``axes`` or given ``weights``, else **off** — as the Swift trainer's
    flags. ``axes=("context", "time", "depth")`` (or ``"all"``) turns them on with unit weights.

    Parameters
    ----------
    model: the model; the context axis needs ``BandedCausalSelfAttention`` modules in it.
    axes: axes to turn on (manual, unit weights unless ``weights`` says otherwise).
    context_bands: band edges on attention distance (default 8, 64; edges ≥ T − 1 are dropped
        from the default, as ``ContextBands.standard``; explicit edges are checked).
    time_betas: (β_f, β_s) of the time axis' EMAs.
    depth_groups: number of depth groups (default min(3, blocks)).
    groups: explicit depth groups, a sequence of sequences of parameters or parameter names
        (replaces the automatic grouping; every trainable parameter in exactly one group).
    adaptive: axes driven by their policy (implies on).
    weights: starting weights per axis: ``{"context": [w_b…] or [[w_b…] per layer], "time":
        (w_H, w_M, w_L), "depth": [φ_k…]}``; checked against the manual bounds.
    policy_warmup: warm-up and ramp steps of the context and depth policies (default 200).
    total_steps: planned steps (the time policy ramps w_L in over 10 % of them when λ > 0).
    time_lambda: λ of the adaptive time policy (default 0).
    grokfast: (α, λ): the time axis as Grokfast-EMA (β_f = β_s = α, weights 1, 1, 1 + λ).
    measure: measure every axis' statistics (attention mass and energy, depth groups and
        oscillation) even when the axis is off, as the Swift trainer does (default True).
    """

    def __init__(self, model: nn.Module, *, axes=(), context_bands: Optional[Sequence[int]] = (8, 64),
                 time_betas=(0.9, 0.99), depth_groups: Optional[int] = None, groups=None, adaptive=(),
                 weights: Optional[Dict[str, object]] = None, policy_warmup: int = 200,
                 total_steps: Optional[int] = None, time_lambda: float = 0.0, grokfast=None,
                 measure: bool = True):
        self.model = model
        enabled = _axes_arg(axes, "axes")
        adaptive = _axes_arg(adaptive, "adaptive")
        weights = dict(weights or {})
        for key in weights:
            if key not in core.AXES:
                raise RefineError(f"weights: unknown axis {key!r}; the axes are context, time, depth")
        if grokfast is not None:
            if "time" in weights or "time" in adaptive or tuple(time_betas) != (0.9, 0.99):
                raise RefineError("grokfast cannot be combined with time weights, time betas or adaptive time")
            alpha, lam = grokfast
            time_betas = (alpha, alpha)
            weights["time"] = (1.0, 1.0, 1.0 + lam)
        self._modes = {}
        for axis in core.AXES:
            if axis in adaptive:
                self._modes[axis] = "adaptive"
            elif axis in enabled or axis in weights:
                self._modes[axis] = "manual"
            else:
                self._modes[axis] = "off"
        if policy_warmup < 0:
            raise RefineError(f"policy_warmup must be ≥ 0, got {policy_warmup}")
        schedule = core.WarmupRamp(policy_warmup, policy_warmup)
        self.policy_warmup = policy_warmup
        self.total_steps = total_steps
        self.measure = measure

        # --- parameters and depth groups -------------------------------------------------
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise RefineError("the model has no trainable parameters")
        self._explicit_groups = groups is not None
        if groups is not None:
            group_of, count = self._explicit_group_of(model, params, groups)
            self.layers = None
            self.depth_extents = [f"{sum(1 for g in group_of if g == k)} tensors" for k in range(count)]
            self.depth_edges = [float(k) for k in range(1, count)]
        else:
            layer_of, L = tensor_layers(model, params)
            count = depth_groups if depth_groups is not None else min(3, max(L, 1))
            try:
                core.validate_groups(L, count)
            except RefineError as e:
                raise RefineError(e.reason if depth_groups is None else "depth_groups: " + e.reason) from None
            group_of = [core.group_of_layer(l, L, count) for l in layer_of]
            self.layers = L
            self.depth_extents = core.group_extents(L, count)
            self.depth_edges = [float(x) for x in core.group_first_layers(L, count)[1:]]
        self.depth_count = count
        self.depth_names = core.group_names(count)
        self.arena = _Arena(params, group_of, count)
        self._group_of_param = {id(p): g for p, g in zip(self.arena.params, self.arena.group_of)}

        # --- context ---------------------------------------------------------------------
        modules = [m for m in model.modules() if isinstance(m, BandedCausalSelfAttention)]
        self.context_modules = modules
        self.context = None
        if modules:
            windows = {m.block_size for m in modules}
            heads = {m.n_head for m in modules}
            if len(windows) != 1 or len(heads) != 1:
                raise RefineError("context axis: every BandedCausalSelfAttention needs the same block_size and n_head, "
                                  f"got block sizes {sorted(windows)} and heads {sorted(heads)}")
            window = windows.pop()
            if context_bands is None or tuple(context_bands) == core.DEFAULT_CONTEXT_EDGES:
                bands = core.ContextBands.standard(window)     # the default edges that fit T
            else:
                try:
                    bands = core.ContextBands(context_bands, window)
                except RefineError as e:
                    reason = e.reason[len("context bands: "):] if e.reason.startswith("context bands: ") else e.reason
                    raise RefineError(f"context_bands: {reason} (the model's window is T = {window})") from None
            indices = [m.layer if m.layer is not None else i for i, m in enumerate(modules)]
            if sorted(indices) != list(range(len(modules))):
                raise RefineError(f"context axis: the attention modules' layer indices must be 0…{len(modules) - 1}, "
                                  f"got {indices}")
            self.context_bands = bands
            self.context_layers = len(modules)
            self.context = ContextState(bands, len(modules), heads.pop(), self.arena.device, measure=measure)
            for m, layer in zip(modules, indices):
                m._gradflow = (self.context, layer)
            self._meet_other_ranks()
        elif self._modes["context"] != "off":
            raise RefineError("context axis: the model has no BandedCausalSelfAttention module; the context axis "
                              "needs the package's attention (gradflow.refine.BandedCausalSelfAttention)")
        else:
            self.context_bands = None
            self.context_layers = 0

        # --- weights, policies, filters --------------------------------------------------
        nb = self.context_bands.count if self.context_bands else 0
        self._weights = {
            "context": [[1.0] * nb for _ in range(self.context_layers)],
            "time": [1.0, 1.0, 1.0],
            "depth": [1.0] * count,
        }
        for axis, given in weights.items():
            self._set_initial(axis, given)
        for axis in core.AXES:
            if self._modes[axis] == "adaptive":
                self._clamp_adaptive(axis)
        if time_betas is None or len(time_betas) != 2:
            raise RefineError(f"time_betas: expected two betas (β_f, β_s), got {time_betas!r}")
        self.time_betas = (float(time_betas[0]), float(time_betas[1]))
        self.time_filter = TimeFilter(self.arena, *self.time_betas) if self._modes["time"] != "off" else None
        if self._modes["time"] == "adaptive" and time_lambda > 0 and total_steps is None:
            raise RefineError("time_lambda > 0 needs total_steps (w_L ramps in over 10 % of the planned steps)")
        self.context_policy = core.ContextPolicy(self.context_layers, nb, schedule) if self.context else None
        self.time_policy = core.TimePolicy(total_steps or 0, lam=time_lambda)
        self.depth_policy = core.DepthPolicy(count, schedule)
        self.depth_meter = DepthMeter(self.arena) if (measure or self._modes["depth"] != "off") else None
        self.oscillation = [core.OscillationMeter() for _ in range(count)]
        self.spikes = core.SpikeDetector()
        self._steps_done = 0
        self._time_stats = None
        self._applied: Optional[_DepthApplication] = None
        self._depth_applied_this_step = False
        self._optimizer: Optional[torch.optim.Optimizer] = None   # the last one apply_depth saw
        self._sync_context()

    # -- construction helpers ----------------------------------------------------------------

    @staticmethod
    def _meet_other_ranks() -> None:
        """Under ``torch.distributed``, waits until every rank has made its Refiner: ``finish_step``
        sums the context statistics over the ranks in one all-reduce, which would wait forever for
        a rank without one. A Refiner on some ranks only is an error after ``Ranks.MEET_TIMEOUT``."""
        from ..ranks import Ranks
        ranks = Ranks.current()
        came = ranks.meet("refiner") if ranks is not None else None
        if came is not None:
            raise RefineError(f"rank {ranks.rank}: only {came} of the {ranks.size} ranks made a Refiner with "
                              f"the context axis within {Ranks.MEET_TIMEOUT:g} s; under torch.distributed make it "
                              "on every rank (its context statistics are summed over the ranks each step)")

    @staticmethod
    def _explicit_group_of(model, params, groups):
        names = {name: p for name, p in model.named_parameters()}
        index = {id(p): i for i, p in enumerate(params)}
        group_of = [None] * len(params)
        groups = list(groups)
        if not groups:
            raise RefineError("groups: expected at least one group")
        for k, members in enumerate(groups):
            for m in members:
                p = names.get(m) if isinstance(m, str) else m
                if p is None:
                    raise RefineError(f"groups: group {k} names {m!r}, which is not a parameter of the model")
                if id(p) not in index:
                    continue   # frozen parameters need no group
                if group_of[index[id(p)]] is not None:
                    raise RefineError(f"groups: a parameter is in group {group_of[index[id(p)]]} and in group {k}")
                group_of[index[id(p)]] = k
        lost = [n for n, p in model.named_parameters() if id(p) in index and group_of[index[id(p)]] is None]
        if lost:
            raise RefineError(f"groups: {len(lost)} trainable parameter(s) are in no group, e.g. {lost[0]}")
        return group_of, len(groups)

    def _band_names(self, axis: str) -> List[str]:
        if axis == "context":
            return self.context_bands.names if self.context_bands else []
        if axis == "time":
            return list(core.TIME_BAND_NAMES)
        return self.depth_names

    def _set_initial(self, axis: str, given) -> None:
        names = self._band_names(axis)
        if axis == "context":
            if self.context is None:
                raise RefineError("weights: the context axis needs BandedCausalSelfAttention modules in the model")
            rows = given if given and isinstance(given[0], (list, tuple)) else [given] * self.context_layers
            if len(rows) != self.context_layers:
                raise RefineError(f"weights['context']: expected one row per layer ({self.context_layers}), got {len(rows)}")
            for l, row in enumerate(rows):
                if len(row) != len(names):
                    raise RefineError(f"weights['context']: expected {len(names)} weights, one per band "
                                      f"({', '.join(names)}), got {len(row)}")
                for b, value in enumerate(row):
                    self._check_manual(axis, b, float(value))
                    self._weights["context"][l][b] = float(value)
        else:
            values = list(given)
            if len(values) != len(names):
                what = "band" if axis == "time" else "depth group"
                raise RefineError(f"weights['{axis}']: expected {len(names)} weights, one per {what} "
                                  f"({', '.join(names)}), got {len(values)}")
            for b, value in enumerate(values):
                self._check_manual(axis, b, float(value))
                self._weights[axis][b] = float(value)

    def _check_manual(self, axis: str, band: int, value: float) -> None:
        label = f"{axis}.{self._band_names(axis)[band]}"
        if not math.isfinite(value):
            raise RefineError(f"{label}: a weight must be a finite number, got {value}")
        rng = core.manual_bounds(axis)
        if not rng.contains(value):
            raise RefineError(f"{label}: {core.format_number(value)} is outside the manual range {rng.text}")

    def _clamp_adaptive(self, axis: str) -> None:
        if axis == "context":
            self._weights["context"] = [[core.CONTEXT_ADAPTIVE.clamp(w) for w in row] for row in self._weights["context"]]
            self._sync_context()
        else:
            self._weights[axis] = [core.adaptive_bounds(axis, b).clamp(w) for b, w in enumerate(self._weights[axis])]

    def _sync_context(self) -> None:
        if self.context is not None:
            self.context.on = self._modes["context"] != "off"
            self.context.set_weights(self._weights["context"])

    # -- read-outs ---------------------------------------------------------------------------

    def describe(self) -> dict:
        """The refinement's settings, for the run header's ``config``."""
        out = {"modes": dict(self._modes), "time_betas": list(self.time_betas),
               "depth_groups": self.depth_count, "policy_warmup": self.policy_warmup,
               "time_lambda": self.time_policy.lam, "measure": self.measure}
        if self.context_bands is not None:
            out["context_edges"] = list(self.context_bands.edges)
        return out

    def mode(self, axis: str) -> str:
        return self._modes[axis]

    def weights(self, axis: str):
        """The weights of an axis: context [layer][band], time [w_H, w_M, w_L], depth [φ_k]."""
        w = self._weights[axis]
        return [list(r) for r in w] if axis == "context" else list(w)

    @property
    def guard_fallbacks(self) -> int:
        return self.time_filter.guard_fallbacks if self.time_filter else 0

    def axis_info(self) -> List[dict]:
        """The run header's ``axes`` entries (docs/FORMAT.md): context (when the model has banded
        attention), time and depth; bounds of each band by the axis' mode."""
        out = []
        def bands(axis, names, extents):
            mode = self._modes[axis]
            return [{"name": n, "extent": e, "floor": core.bounds(axis, b, mode).floor,
                     "ceiling": core.bounds(axis, b, mode).ceiling} for b, (n, e) in enumerate(zip(names, extents))]
        if self.context_bands is not None:
            out.append({"axis": "context", "edges": [float(e) for e in self.context_bands.edges],
                        "bands": bands("context", self.context_bands.names, self.context_bands.extents)})
        bf, bs = self.time_betas
        out.append({"axis": "time", "edges": [bf, bs],
                    "bands": bands("time", list(core.TIME_BAND_NAMES),
                                   [f"β {core.format_beta(bf)}", f"β {core.format_beta(bs)}", "m_s"])})
        out.append({"axis": "depth", "edges": list(self.depth_edges),
                    "bands": bands("depth", self.depth_names, self.depth_extents)})
        return out

    # -- the step ----------------------------------------------------------------------------

    def before_optimizer(self, step: int) -> None:
        """After ``loss.backward()``, before clipping and ``optimizer.step()``: applies the time axis
        to every parameter's .grad and takes the snapshot of θ for the depth statistics."""
        self._time_stats = None
        if self.time_filter is not None and self._modes["time"] != "off":
            self._time_stats = self.time_filter.step(self._weights["time"])
        if self.depth_meter is not None:
            self.depth_meter.snapshot()

    def param_groups(self, weight_decay: float = 0.1, no_decay=None, **options) -> List[dict]:
        """Optimizer parameter groups, one per depth group and decay class, each tagged with
        ``depth_group``. ``no_decay(name, param)`` says which parameters get no weight decay
        (default: those with fewer than 2 dimensions: biases and norms). ``options`` are added
        to every group (e.g. ``lr``)."""
        if no_decay is None:
            no_decay = lambda name, p: p.dim() < 2
        names = {id(p): n for n, p in self.model.named_parameters()}
        out = []
        for k in range(self.depth_count):
            decay = [p for p in self.arena.params if self._group_of_param[id(p)] == k and not no_decay(names[id(p)], p)]
            plain = [p for p in self.arena.params if self._group_of_param[id(p)] == k and no_decay(names[id(p)], p)]
            for members, wd in ((decay, weight_decay), (plain, 0.0)):
                if members:
                    out.append({"params": members, "weight_decay": wd, "depth_group": k, **options})
        return out

    def _group_of_param_group(self, group: dict) -> int:
        if "depth_group" in group:
            return int(group["depth_group"])
        ks = {self._group_of_param.get(id(p)) for p in group["params"]}
        ks.discard(None)
        if len(ks) != 1:
            raise RefineError("apply_depth: an optimizer parameter group holds parameters of "
                              f"{len(ks)} depth groups; build the optimizer from refiner.param_groups()")
        return ks.pop()

    def apply_depth(self, optimizer: torch.optim.Optimizer) -> _DepthApplication:
        """Before ``optimizer.step()``: sets lr_k = lr · φ_k on every parameter group (weight decay
        scales with it, as AdamW uses the group's lr for both). Does nothing while the depth axis is
        off. The rates are restored by ``finish_step`` (or on leaving ``with``)."""
        if self._applied is not None:
            self._applied.restore()
        self._optimizer = optimizer   # for turning the depth axis on later (_check_can_start)
        changes = []
        if self._modes["depth"] != "off":
            for group in optimizer.param_groups:
                phi = self._weights["depth"][self._group_of_param_group(group)]
                before = group["lr"]
                group["lr"] = before * phi
                changes.append((group, before, group["lr"]))
        self._applied = _DepthApplication(changes)
        self._depth_applied_this_step = True
        return self._applied

    def finish_step(self, step: int, loss: float) -> dict:
        """After ``optimizer.step()`` (before ``zero_grad``): measures the step, feeds the policies
        (which set the next step's weights) and returns the step record's members ``axes``,
        ``context_energy``, ``attention_mass``, ``attention_mass_by_head``, ``oscillation``,
        ``guard_fallbacks`` and ``spike``."""
        if self._applied is not None:
            self._applied.restore()
            self._applied = None
        elif self._modes["depth"] != "off" and not self._depth_applied_this_step:
            raise RefineError("the depth axis is on but apply_depth(optimizer) was not called before optimizer.step()")
        self._depth_applied_this_step = False
        G = self.depth_count

        # Context statistics (over every rank's share of the batch under torch.distributed).
        energy_by_layer, mass, mass_by_head = [], [], []
        if self.context is not None:
            self.context.sum_over_ranks()
            energy_by_layer = self.context.energy.tolist()
            raw = self.context.mass.tolist()
            for l in range(self.context_layers):
                q = self.context.queries[l]
                heads = [[x / q if q > 0 else 0.0 for x in row] for row in raw[l]]
                mass_by_head.append(heads)
                mass.append([sum(h[b] for h in heads) / len(heads) for b in range(self.context_bands.count)])
            self.context.reset_statistics()

        # Depth statistics and oscillation.
        osc = {"flip_rate": [], "grad_cos": [], "update_cos": [], "rel_update": []}
        grad_norms, update_norms, param_norms = [0.0] * G, [0.0] * G, [0.0] * G
        if self.depth_meter is not None:
            if not self.depth_meter.snapshot_taken:
                raise RefineError("finish_step: before_optimizer(step) was not called before optimizer.step()")
            stats = self.depth_meter.measure()
            for k, s in enumerate(stats):
                meter = self.oscillation[k]
                meter.observe_flips(s["flips"], self.arena.group_sizes[k])
                if self._steps_done > 0:
                    meter.observe_gradients(s["grad_dot_prev"], s["grad_sq"], s["prev_grad_sq"])
                    meter.observe_updates(s["update_dot_prev"], s["update_sq"], s["prev_update_sq"])
                rel = math.sqrt(s["update_sq"] / s["param_sq"]) if s["param_sq"] > 0 else 0.0
                osc["flip_rate"].append(meter.flip_rate or 0.0)
                osc["grad_cos"].append(meter.grad_cos or 0.0)
                osc["update_cos"].append(meter.update_cos)
                osc["rel_update"].append(rel)
                grad_norms[k] = math.sqrt(max(s["grad_sq"], 0.0))
                update_norms[k] = math.sqrt(max(s["update_sq"], 0.0))
                param_norms[k] = math.sqrt(max(s["param_sq"], 0.0))
        if any(c is None for c in osc["update_cos"]):
            del osc["update_cos"]
        spike = self.spikes.observe(float(loss))

        # The samples describe the weights in force during this step.
        axes = {}
        if self.context is not None:
            on = self._modes["context"] != "off"
            nb = self.context_bands.count
            axes["context"] = {
                "mode": self._modes["context"],
                "weight": [sum(self._weights["context"][l][b] for l in range(self.context_layers)) / self.context_layers
                           if on else 1.0 for b in range(nb)],
                "energy": [sum(row[b] for row in energy_by_layer) for b in range(nb)]}
        if self._time_stats is not None:
            axes["time"] = {"mode": self._modes["time"], "weight": list(self._weights["time"]),
                            "energy": self._time_stats["band_norms"]}
        if self.depth_meter is not None:
            on = self._modes["depth"] != "off"
            axes["depth"] = {"mode": self._modes["depth"],
                             "weight": [self._weights["depth"][k] if on else 1.0 for k in range(G)],
                             "energy": grad_norms}

        # Policies set the next step's weights (adopted only on adaptive axes).
        if self.context_policy is not None:
            proposed = self.context_policy.update(energy_by_layer, step)
            if self._modes["context"] == "adaptive":
                self._weights["context"] = [[core.CONTEXT_ADAPTIVE.clamp(w) for w in row] for row in proposed]
                self._sync_context()
        if self._time_stats is not None:
            proposed = self.time_policy.update(self._time_stats["momentum_cosine"], step)
            if self._modes["time"] == "adaptive":
                self._weights["time"] = [core.adaptive_bounds("time", b).clamp(w) for b, w in enumerate(proposed)]
        if self.depth_meter is not None:
            applied = self._weights["depth"] if self._modes["depth"] != "off" else [1.0] * G
            proposed = self.depth_policy.update(update_norms, param_norms, applied, step)
            if self._modes["depth"] == "adaptive":
                self._weights["depth"] = [core.DEPTH_ADAPTIVE.clamp(w) for w in proposed]
        self._steps_done += 1
        return {"axes": axes, "context_energy": energy_by_layer, "attention_mass": mass,
                "attention_mass_by_head": mass_by_head, "oscillation": osc if self.depth_meter is not None else {},
                "spike": spike, "guard_fallbacks": self.guard_fallbacks}

    def adaptive_warmup_ends(self, step: int) -> bool:
        """Whether the context/depth policies' warm-up ends with ``step`` (for the ``adaptive`` event)."""
        w = max(1, self.policy_warmup)
        return step + 1 == w and (self._modes["context"] == "adaptive" or self._modes["depth"] == "adaptive")

    # -- commands ----------------------------------------------------------------------------

    def _require_axis(self, axis: str) -> None:
        if axis not in core.AXES:
            raise RefineError(f"unknown axis {axis!r}; the axes are context, time, depth")
        if axis == "context" and self.context is None:
            raise RefineError("context axis: the model has no BandedCausalSelfAttention module")

    def _check_can_start(self, axis: str, adaptive: bool = False) -> None:
        """Raises RefineError when ``axis``, off, cannot be turned on at this step boundary (as
        the Swift trainer turns an off axis on when a weight or mode is set). The context axis
        always can (its modules are wired when the refiner is made); the time axis unless its
        adaptive policy would need ``total_steps``; the depth axis once ``apply_depth`` has seen
        the optimizer and every parameter group of it lies in one depth group."""
        if self._modes[axis] != "off":
            return
        if axis == "time" and adaptive and self.time_policy.lam > 0 and not self.total_steps:
            raise RefineError("time axis: adaptive with time_lambda > 0 needs total_steps (w_L ramps in over 10 % "
                              "of the planned steps)")
        if axis == "depth":
            if self._optimizer is None:
                raise RefineError("the depth axis is off and apply_depth(optimizer) has not been called yet, so its "
                                  "learning rates cannot be set; call apply_depth every step, or turn the axis on "
                                  "when the Refiner is made (axes=('depth',))")
            for group in self._optimizer.param_groups:
                try:
                    self._group_of_param_group(group)
                except RefineError as e:
                    raise RefineError("the depth axis cannot be turned on: " + e.reason.removeprefix("apply_depth: ")
                                      ) from None

    def _start(self, axis: str) -> None:
        """What ``axis`` needs to come on (``_check_can_start`` passed): the time axis its filter,
        whose EMAs start from the next gradient, and the depth axis its meter where it was not
        measured. The caller sets the mode."""
        if axis == "time" and self.time_filter is None:
            self.time_filter = TimeFilter(self.arena, *self.time_betas)
        if axis == "depth" and self.depth_meter is None:
            self.depth_meter = DepthMeter(self.arena)

    def set_weight(self, axis: str, band: int, value: float, layer: Optional[int] = None):
        """Sets one band's weight by hand (context: one layer, or every layer when ``layer`` is
        None) and makes the axis manual, turning it on if it was off. Returns (old, new); raises
        RefineError when refused, changing nothing."""
        self._require_axis(axis)
        names = self._band_names(axis)
        try:
            band = operator.index(band)
        except TypeError:
            raise RefineError(f"{axis}: a band is an integer index, got {band!r}") from None
        if not 0 <= band < len(names):
            plural = "" if len(names) == 1 else "s"
            raise RefineError(f"{axis} has {len(names)} band{plural} (0–{len(names) - 1}: {', '.join(names)}); "
                              f"there is no band {band}")
        label = f"{axis}.{names[band]}"
        if layer is not None:
            if axis != "context":
                raise RefineError(f"{label}: only the context axis has weights per layer; got layer {layer}")
            if not 0 <= layer < self.context_layers:
                raise RefineError(f"{label}: the model has layers 0–{self.context_layers - 1}; there is no layer {layer}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise RefineError(f"{label}: a weight must be a number, got {value!r}") from None
        self._check_manual(axis, band, value)
        self._check_can_start(axis)
        self._start(axis)
        if axis == "context":
            # The old value as the step records show it: the layer's, or the mean over the layers
            # when every layer is set (as the Swift trainer's event says).
            rows = self._weights["context"]
            old = rows[layer][band] if layer is not None else sum(r[band] for r in rows) / len(rows)
            for l in range(self.context_layers):
                if layer is None or layer == l:
                    self._weights["context"][l][band] = value
        else:
            old = self._weights[axis][band]
            self._weights[axis][band] = value
        self._modes[axis] = "manual"
        self._sync_context()
        return old, value

    def set_adaptive(self, axis: str, on: bool):
        """Switches an axis between its adaptive policy (clamping its weights into the adaptive
        bounds) and manual weights, turning the axis on if it was off. Returns (old, new) as the mode
        event's numbers: 1 adaptive, 0 manual (or off)."""
        self._require_axis(axis)
        self._check_can_start(axis, adaptive=bool(on))
        old = 1 if self._modes[axis] == "adaptive" else 0
        self._start(axis)
        self._modes[axis] = "adaptive" if on else "manual"
        if on:
            self._clamp_adaptive(axis)
        self._sync_context()
        return old, 1 if on else 0

    def set_target(self, band: int, share: float):
        """Sets the context policy's target share of one band (the others rescaled to sum 1).
        Returns (old, new). The target guides the adaptive policy, so it is kept whatever the
        axis' mode, as in the Swift trainer."""
        self._require_axis("context")
        try:
            band, share = operator.index(band), float(share)
        except (TypeError, ValueError):
            raise RefineError(f"a target needs an integer band and a number, got {band!r} and {share!r}") from None
        old = self.context_policy.set_target(band, share)
        return old, share

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Weights, modes, policies, meters, the time EMAs and the depth meter's previous step, to
        continue a run exactly."""
        import copy
        state = {"modes": dict(self._modes), "weights": copy.deepcopy(self._weights),
                 "context_policy": copy.deepcopy(self.context_policy.__dict__) if self.context_policy else None,
                 "time_policy": copy.deepcopy(self.time_policy.__dict__),
                 "depth_policy": copy.deepcopy(self.depth_policy.__dict__),
                 "oscillation": [copy.deepcopy(m.__dict__) for m in self.oscillation],
                 "spikes": copy.deepcopy(self.spikes.__dict__), "steps_done": self._steps_done,
                 "time_filter": self.time_filter.state_dict() if self.time_filter else None}
        if self.depth_meter is not None:
            state["depth_meter"] = {"buf": self.depth_meter.buf[:4].clone(), "current": self.depth_meter.current,
                                    "prev_sq": copy.deepcopy(self.depth_meter.prev_sq)}
        return state

    def load_state_dict(self, state: dict) -> None:
        import copy
        self._modes = dict(state["modes"])
        self._weights = copy.deepcopy(state["weights"])
        if self.context_policy is not None and state["context_policy"] is not None:
            self.context_policy.__dict__.update(copy.deepcopy(state["context_policy"]))
        self.time_policy.__dict__.update(copy.deepcopy(state["time_policy"]))
        self.depth_policy.__dict__.update(copy.deepcopy(state["depth_policy"]))
        for m, s in zip(self.oscillation, state["oscillation"]):
            m.__dict__.update(copy.deepcopy(s))
        self.spikes.__dict__.update(copy.deepcopy(state["spikes"]))
        self._steps_done = state["steps_done"]
        if state.get("time_filter") is not None:
            if self.time_filter is None:
                self.time_filter = TimeFilter(self.arena, *self.time_betas)
            self.time_filter.load_state_dict(state["time_filter"])
        if self.depth_meter is None and "depth_meter" in state:   # turned on mid-run with measure=False
            self.depth_meter = DepthMeter(self.arena)
        if self.depth_meter is not None and "depth_meter" in state:
            self.depth_meter.buf[:4].copy_(state["depth_meter"]["buf"])
            self.depth_meter.current = state["depth_meter"]["current"]
            self.depth_meter.prev_sq = copy.deepcopy(state["depth_meter"]["prev_sq"])
        self._sync_context()
