"""Causal self-attention whose backward pass carries the context axis (docs/METHOD.md §1).

``BandedCausalSelfAttention`` computes explicit attention, softmax(QKᵀ/√d + causal mask)·V, with
the same operations as a minGPT/nanoGPT ``CausalSelfAttention``. Attached to a ``Refiner`` it

* weights the backward pass along every edge j → i by W_ij = w[layer][band(i − j)]: the gradient
  of the surrogate O_i = Σ_j [W_ij P_ij V_j + (1 − W_ij) stopgrad(P_ij V_j)], i.e.
  dP' = W ⊙ dP and dV' = (W ⊙ P)ᵀ dO, while the forward value stays P·V exactly;
* measures, per step, the attention mass per band and head (forward) and the band energy
  e[b] = Σ_heads Σ_(i,j)∈b (P_ij·dP_ij)² with the plain dP (backward).

A layer whose weights are all 1 (or a module with no refiner) runs the plain autograd path, so
unit weights reproduce plain attention bit for bit.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import fused


class EdgeWeightedMatmul(torch.autograd.Function):
    """O = P @ V in the forward pass; the backward pass of the context surrogate.

    Inputs ``p`` [..., T, T], ``v`` [..., T, d], ``w`` [T, T] (broadcast over the leading dims).
    Backward: dP = W ⊙ (dO Vᵀ), dV = (W ⊙ P)ᵀ dO. ``sink(p, dp)`` (optional) receives the plain
    dP = dO Vᵀ before weighting, for the band energy.
    """

    @staticmethod
    def forward(ctx, p, v, w, sink=None):
        ctx.save_for_backward(p, v, w)
        ctx.sink = sink
        return p @ v

    @staticmethod
    def backward(ctx, d_out):
        p, v, w = ctx.saved_tensors
        dp = dv = None
        if ctx.needs_input_grad[0] or ctx.sink is not None:
            dp = d_out @ v.transpose(-2, -1)
            if ctx.sink is not None:
                ctx.sink(p, dp)
            dp = dp * w if ctx.needs_input_grad[0] else None
        if ctx.needs_input_grad[1]:
            dv = (p * w).transpose(-2, -1) @ d_out
        return dp, dv, None, None


class BandedCausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with the context axis' refined backward.

    Same parameters and math as nanoGPT's ``CausalSelfAttention`` (``c_attn`` → q, k, v;
    explicit softmax attention; ``c_proj``). ``layer``: this module's index in the model's
    stack of attention layers (the context weights are per layer); ``None`` lets the ``Refiner``
    number the modules in ``model.modules()`` order.
    """

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0,
                 bias: bool = True, layer: Optional[int] = None):
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        self.n_embd, self.n_head, self.block_size, self.dropout = n_embd, n_head, block_size, dropout
        self.layer = layer
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)
        self.register_buffer(
            "mask", torch.tril(torch.ones(block_size, block_size, dtype=torch.bool)).view(1, 1, block_size, block_size),
            persistent=False)
        # Set by Refiner: (shared context state, this module's layer index).
        self._gradflow = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(~self.mask[:, :, :T, :T], float("-inf"))
        att = F.softmax(att, dim=-1)
        hook = self._gradflow
        if hook is None:
            att = self.attn_dropout(att)
            y = att @ v
        else:
            state, layer = hook
            y = state.attend(layer, att, v, self.attn_dropout, self.training)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class ContextState:
    """What the attention modules of one model share with their Refiner: the weights in force,
    whether the axis is on, and the per-step statistics accumulators (on the model's device)."""

    def __init__(self, bands, layers: int, heads: int, device, measure: bool = True):
        self.bands = bands            # core.ContextBands for the window
        self.layers, self.heads = layers, heads
        self.device = device
        self.on = False
        self.measure = measure
        self.weights = [[1.0] * bands.count for _ in range(layers)]
        self._unit = [True] * layers  # per layer: all its weights are 1
        self._weight_mats = {}        # (layer, T) → [T, T] tensor, or None for unit weights
        self._tables = {}             # T → (band index [T, T] long, indicator [T·T, nb] float)
        self._buffers = {}            # scratch for the statistics, reused
        # The bands' inclusive distance ranges, for the fused kernels.
        ranges = [bands.distance_range(k) for k in range(bands.count)]
        self._band_lows = [low for low, _ in ranges]
        self._band_highs = [high for _, high in ranges]
        self.reset_statistics()

    # -- weights ---------------------------------------------------------------------------

    def set_weights(self, weights) -> None:
        self.weights = [list(row) for row in weights]
        self._unit = [all(w == 1.0 for w in row) for row in self.weights]
        self._weight_mats.clear()

    def _table(self, T: int, device, dtype):
        key = (T, device, dtype)
        table = self._tables.get(key)
        if table is None:
            i = torch.arange(T, device=device)
            dist = (i.view(T, 1) - i.view(1, T)).clamp(min=0)
            by_distance = torch.tensor(self.bands.band_index_by_distance(T), device=device)
            band = by_distance[dist]
            causal = (i.view(T, 1) >= i.view(1, T))
            nb = self.bands.count
            indicator = torch.zeros(T * T, nb, device=device, dtype=dtype)
            indicator[torch.arange(T * T, device=device), band.view(-1)] = 1
            indicator *= causal.view(-1, 1).to(dtype)
            table = (band, indicator)
            self._tables[key] = table
        return table

    def weight_matrix(self, layer: int, T: int, like: torch.Tensor) -> Optional[torch.Tensor]:
        """W [T, T] with W_ij = w[layer][band(i − j)] on ``like``'s device and dtype, or None when the
        axis is off or the layer's weights are all 1 (kept per layer by ``set_weights``)."""
        if not self.on or self._unit[layer]:
            return None
        device, dtype = like.device, like.dtype
        key = (layer, T, device, dtype)
        mat = self._weight_mats.get(key)
        if mat is None:
            band, _ = self._table(T, device, dtype)
            mat = torch.tensor(self.weights[layer], device=device, dtype=dtype)[band]
            self._weight_mats[key] = mat
        return mat

    # -- statistics ------------------------------------------------------------------------

    def reset_statistics(self) -> None:
        nb = self.bands.count
        if getattr(self, "energy", None) is None:
            self._accumulators(torch.float64)
        else:
            self.energy.zero_()
            self.mass.zero_()
        self.queries = [0] * self.layers

    def sum_over_ranks(self) -> None:
        """Under ``torch.distributed`` (more than one process), adds up the step's statistics over
        the ranks in one all-reduce: each rank saw its own share of the batch, and the record and
        the adaptive context policy must see the whole batch, the same on every rank (as the Swift
        trainer reduces them over its MPI ranks). Nothing in a single process."""
        try:
            import torch.distributed as dist
            if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
                return
        except Exception:  # a torch build without distributed support
            return
        # In float64 whatever the accumulators' type: the query counts stay exact.
        queries = torch.tensor(self.queries, dtype=torch.float64, device=self.energy.device)
        flat = torch.cat([self.energy.view(-1).double(), self.mass.view(-1).double(), queries])
        dist.all_reduce(flat)
        n_energy, n_mass = self.energy.numel(), self.mass.numel()
        self.energy.view(-1).copy_(flat[:n_energy])
        self.mass.view(-1).copy_(flat[n_energy:n_energy + n_mass])
        self.queries = [int(round(q)) for q in flat[n_energy + n_mass:].tolist()]

    def _accumulators(self, dtype) -> None:
        """energy [L, nb] and mass [L, H, nb] in ``dtype`` (the attention's, float32 or float64, so
        that each layer's sums are added in place by one ``addmm_``), contents kept; and each
        layer's rows, sliced once."""
        nb = self.bands.count
        old = getattr(self, "energy", None)
        energy = torch.zeros(self.layers, nb, dtype=dtype, device=self.device)
        mass = torch.zeros(self.layers, self.heads, nb, dtype=dtype, device=self.device)
        if old is not None:
            energy.copy_(self.energy)
            mass.copy_(self.mass)
        self.energy, self.mass = energy, mass
        self._energy_rows = [energy[l:l + 1] for l in range(self.layers)]
        self._mass_rows = [mass[l] for l in range(self.layers)]
        # The fused kernel's output addresses, read once (data_ptr() costs microseconds a call).
        self._energy_addrs = [row.data_ptr() for row in self._energy_rows]
        self._mass_addrs = [row.data_ptr() for row in self._mass_rows]

    def _fast(self, like: torch.Tensor) -> bool:
        """Whether the sums of ``like`` can be added in place (float32/float64, same device)."""
        if like.dtype not in (torch.float32, torch.float64) or like.device != self.energy.device:
            return False
        if self.energy.dtype != like.dtype:
            self._accumulators(like.dtype)
        return True

    def _scratch(self, name: str, like: torch.Tensor, shape=None) -> torch.Tensor:
        """A buffer reused from layer to layer and step to step (no allocation per call)."""
        shape = tuple(like.shape if shape is None else shape)
        buf = self._buffers.get(name)
        if buf is None or tuple(buf.shape) != shape or buf.dtype != like.dtype or buf.device != like.device:
            buf = torch.empty(shape, dtype=like.dtype, device=like.device)
            self._buffers[name] = buf
        return buf

    def _ones(self, n: int, like: torch.Tensor) -> torch.Tensor:
        ones = self._buffers.get("ones")
        if ones is None or ones.size(1) != n or ones.dtype != like.dtype or ones.device != like.device:
            ones = torch.ones(1, n, dtype=like.dtype, device=like.device)
            self._buffers["ones"] = ones
        return ones

    def _fused_ready(self, p: torch.Tensor) -> bool:
        """Whether the fused kernel can take this layer's probabilities (and the accumulators)."""
        out = self.energy
        return (p.dim() == 4 and self.bands.count <= fused.MAX_BANDS and fused.eligible((p,)) and out.is_cpu
                and (out.dtype is torch.float32 or out.dtype is torch.float64))

    def _fused_sums(self, layer: int, p: torch.Tensor, dp: Optional[torch.Tensor], mass: bool) -> bool:
        """Adds the layer's mass (``mass``) and band energy (``dp`` given) with the fused kernel, in
        one pass over P and dP; False (nothing done) where it does not apply."""
        if not self._fused_ready(p) or (dp is not None and (dp.shape != p.shape or not fused.eligible((dp,)))):
            return False
        B, H, T = p.size(0), p.size(1), p.size(-1)
        mass_out = self._mass_addrs[layer] if mass else 0
        energy_out = 0 if dp is None else self._energy_addrs[layer]
        fused.kernels.attention_sums(p.data_ptr(), 0 if dp is None else dp.data_ptr(), B * H, T, H, self._band_lows,
                                     self._band_highs, mass_out, energy_out, self.energy.dtype == torch.float64,
                                     fused.threads())
        return True

    def _energy_sink(self, layer: int, p: torch.Tensor, with_mass: bool = False):
        """The backward hook's statistics, ``sink(p, dp)``: the band energy of the layer, and its mass
        when the forward pass left it to the hook (``with_mass``: P is read once for both, and the
        forward pass found P ready for the fused kernel)."""
        if with_mass:
            return self._fused_sink(layer, p)
        T = p.size(-1)

        def sink(p: torch.Tensor, dp: torch.Tensor) -> None:
            if not self._fused_sums(layer, p, dp, False):
                self._torch_energy(layer, p, dp, T)
        return sink

    def _fused_sink(self, layer: int, p: torch.Tensor):
        """``sink(p, dp)`` for a P the fused kernel takes: the mass and the energy in one call, with
        everything but dP's address read in the forward pass. The hook runs between the backward
        pass's large operations, when the interpreter's own code and data have left the caches and
        every Python statement costs microseconds (docs/PERFORMANCE.md, "Round 4"), so it does as
        little as it can. The accumulators' addresses are read at the call: they change if another
        layer's statistics switch the accumulators' dtype in between."""
        shape = p.shape
        B, H, T = shape[0], shape[1], shape[-1]
        p_addr, queries = p.data_ptr(), B * T
        head = (B * H, T, H, self._band_lows, self._band_highs)
        threads, kernel, readable = fused.threads(), fused.kernels.attention_sums, fused.readable

        def sink(p: torch.Tensor, dp: torch.Tensor) -> None:
            self.queries[layer] += queries
            if dp.shape == shape and readable(dp):
                kernel(p_addr, dp.data_ptr(), *head, self._mass_addrs[layer], self._energy_addrs[layer],
                       self.energy.dtype is torch.float64, threads)
            else:
                self._add_mass(layer, p)
                self._torch_energy(layer, p, dp, T)
        return sink

    def _torch_energy(self, layer: int, p: torch.Tensor, dp: torch.Tensor, T: int) -> None:
        """The layer's band energy with torch operations (the definition, docs/METHOD.md §1)."""
        with torch.no_grad():
            x = self._scratch("product", p)
            torch.mul(p, dp, out=x)
            rows = x.view(-1, T * T)
            rows.square_()
            # Σ over batch and heads (a row of ones times the squares: a little cheaper than
            # torch.sum over the leading dims), then Σ over the (i, j) of each band.
            ones = self._ones(rows.size(0), x)
            _, indicator = self._table(T, x.device, x.dtype)
            column = torch.mm(ones, rows, out=self._scratch("column", x, (1, T * T)))
            if self._fast(x):
                self._energy_rows[layer].addmm_(column, indicator)
            else:
                self.energy[layer] += (column @ indicator).view(-1)

    def _add_mass(self, layer: int, att: torch.Tensor) -> None:
        """The attention mass per head and band of one layer, with torch operations."""
        T, H = att.size(-1), att.size(1)
        with torch.no_grad():
            _, indicator = self._table(T, att.device, att.dtype)
            per_head = self._scratch("heads", att, (H, T, T))
            torch.sum(att.detach(), dim=0, out=per_head)
            if self._fast(att):
                self._mass_rows[layer].addmm_(per_head.view(H, T * T), indicator)
            else:
                self.mass[layer] += per_head.view(H, T * T) @ indicator

    def attend(self, layer: int, att: torch.Tensor, v: torch.Tensor, dropout: nn.Module, training: bool):
        T = att.size(-1)
        measuring = self.measure and training and torch.is_grad_enabled()
        # The mass is left to the backward hook (one read of P for mass and energy) where the hook
        # will see the same P: a gradient will flow, dropout changes nothing, the kernel applies.
        # Like the energy, it is then counted once per backward pass through the layer.
        mass_in_hook = (measuring and att.requires_grad and getattr(dropout, "p", None) == 0
                        and self._fused_ready(att))
        if measuring and not mass_in_hook:
            if not self._fused_sums(layer, att, None, True):
                self._add_mass(layer, att)
            self.queries[layer] += att.size(0) * T
        att = dropout(att)
        w = self.weight_matrix(layer, T, att) if att.requires_grad or v.requires_grad else None
        sink = self._energy_sink(layer, att, mass_in_hook) if measuring and att.requires_grad else None
        if w is None:
            if sink is not None:
                p = att.detach()
                node = att.grad_fn
                if node is not None:
                    # After the node's backward (softmax's, when dropout is the identity) has read P
                    # and dP: the hook then finds both in the caches, where a hook on att's gradient
                    # ran before it and read P from memory (docs/PERFORMANCE.md, "Round 4").
                    out = att.output_nr
                    node.register_hook(lambda _inputs, outputs: sink(p, outputs[out]))
                else:
                    att.register_hook(lambda dp: sink(p, dp))
            return att @ v
        return EdgeWeightedMatmul.apply(att, v, w, sink)
