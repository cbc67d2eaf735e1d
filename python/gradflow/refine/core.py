"""Bounds, bands, depth groups, policies and meters of the refinement, in plain Python.

A line-for-line port of the value types in Sources/Refinement (WeightBounds, ContextBands,
DepthGroups, WarmupRamp, ContextPolicy, TimePolicy, DepthPolicy, OscillationMeter,
SpikeDetector): the same formulas, defaults, bounds and refusal messages, on Python floats
(IEEE doubles, as the Swift code uses Double). No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

AXES = ("context", "time", "depth")
MODES = ("off", "manual", "adaptive")
TIME_BAND_NAMES = ("high", "mid", "low")


class RefineError(Exception):
    """A refused change or an unusable setting; ``reason`` is shown to the user as is."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def format_number(value: float, digits: int = 4) -> str:
    """At most ``digits`` decimals, trailing zeros dropped: 0.5, 4, 0.05 (Formatting.swift)."""
    if not math.isfinite(value):
        return str(value)
    scale = 10.0 ** digits
    scaled = round(abs(value) * scale)
    whole = int(scaled // scale)
    fraction = int(scaled - whole * scale)
    text = ("-" if value < 0 and scaled > 0 else "") + str(whole)
    if fraction > 0:
        width = digits
        while fraction % 10 == 0:
            fraction //= 10
            width -= 1
        text += "." + str(fraction).rjust(width, "0")
    return text


def format_beta(beta: float) -> str:
    """0.9 → ".90", 0.99 → ".99", 0.995 → ".995" (Formatting.swift)."""
    text = format_number(beta, 4)
    if text.startswith("0."):
        text = text[1:]
    if len(text) == 2:
        text += "0"
    if text == "0":
        text = ".00"
    return text


# ---------------------------------------------------------------------------------------------
# Bounds (WeightBounds.swift)


@dataclass(frozen=True)
class WeightBounds:
    floor: float
    ceiling: float

    def contains(self, value: float) -> bool:
        return self.floor <= value <= self.ceiling

    def clamp(self, value: float) -> float:
        """``value`` moved into the range; NaN becomes the floor."""
        if math.isnan(value):
            return self.floor
        return min(max(value, self.floor), self.ceiling)

    @property
    def text(self) -> str:
        return f"[{format_number(self.floor)}, {format_number(self.ceiling)}]"


CONTEXT_ADAPTIVE = WeightBounds(0.5, 4.0)
CONTEXT_MANUAL = WeightBounds(0.05, 10.0)
TIME_HIGH_ADAPTIVE = WeightBounds(0.25, 1.0)
TIME_MID_ADAPTIVE = WeightBounds(1.0, 1.0)
TIME_LOW_ADAPTIVE = WeightBounds(1.0, 4.0)
TIME_MANUAL = WeightBounds(0.0, 6.0)
DEPTH_ADAPTIVE = WeightBounds(0.5, 2.0)
DEPTH_MANUAL = WeightBounds(0.1, 10.0)


def adaptive_bounds(axis: str, band: int) -> WeightBounds:
    if axis == "context":
        return CONTEXT_ADAPTIVE
    if axis == "time":
        return (TIME_HIGH_ADAPTIVE, TIME_MID_ADAPTIVE, TIME_LOW_ADAPTIVE)[min(max(band, 0), 2)]
    return DEPTH_ADAPTIVE


def manual_bounds(axis: str) -> WeightBounds:
    return {"context": CONTEXT_MANUAL, "time": TIME_MANUAL, "depth": DEPTH_MANUAL}[axis]


def bounds(axis: str, band: int, mode: str) -> WeightBounds:
    """The adaptive bounds for an adaptive axis, the manual bounds otherwise."""
    return adaptive_bounds(axis, band) if mode == "adaptive" else manual_bounds(axis)


# ---------------------------------------------------------------------------------------------
# Context bands (ContextBands.swift)

DEFAULT_CONTEXT_EDGES = (8, 64)


def check_edge_order(edges: Sequence[int]) -> None:
    for index, edge in enumerate(edges):
        if edge < 0:
            raise RefineError(f"edge {index + 1} is {edge}; edges are attention distances and must be ≥ 0")
        if index > 0 and edge <= edges[index - 1]:
            raise RefineError(
                f"edges must be strictly increasing, but edge {index + 1} ({edge}) ≤ edge {index} ({edges[index - 1]})")


class ContextBands:
    """The partition of attention distances 0…T−1 into consecutive bands.

    ``edges`` holds the upper, inclusive distance of every band but the last: edges (8, 64) at
    T = 128 give local 0–8, phrase 9–64 and long 65–127.
    """

    def __init__(self, edges: Sequence[int], window: int):
        edges = [int(e) for e in edges]
        if window < 1:
            raise RefineError(f"context bands: the attention window must be at least 1, got {window}")
        try:
            check_edge_order(edges)
        except RefineError as e:
            raise RefineError("context bands: " + e.reason) from None
        for edge in edges:
            if edge >= window - 1:
                raise RefineError(
                    f"context bands: edge {edge} leaves the last band empty; every edge must be < T − 1 = {window - 1}")
        self.edges = edges
        self.window = window

    @classmethod
    def standard(cls, window: int) -> "ContextBands":
        """The default edges that fit (< T − 1): T = 128 local/phrase/long, T = 32 local/long."""
        return cls([e for e in DEFAULT_CONTEXT_EDGES if e < window - 1], max(window, 1))

    @property
    def count(self) -> int:
        return len(self.edges) + 1

    @property
    def names(self) -> List[str]:
        n = self.count
        if n == 1:
            return ["all"]
        if n == 2:
            return ["local", "long"]
        if n == 3:
            return ["local", "phrase", "long"]
        return [f"b{i}" for i in range(n)]

    def distance_range(self, band: int):
        low = 0 if band == 0 else self.edges[band - 1] + 1
        high = self.window - 1 if band == len(self.edges) else self.edges[band]
        return low, high

    @property
    def extents(self) -> List[str]:
        out = []
        for band in range(self.count):
            low, high = self.distance_range(band)
            out.append(f"{low}" if low == high else f"{low}–{high}")
        return out

    def band_of_distance(self, distance: int) -> int:
        band = 0
        while band < len(self.edges) and distance > self.edges[band]:
            band += 1
        return band

    def band_index_by_distance(self, T: Optional[int] = None) -> List[int]:
        """The band of every distance 0…T−1 (T defaults to the window)."""
        return [self.band_of_distance(d) for d in range(self.window if T is None else T)]


# ---------------------------------------------------------------------------------------------
# Depth groups (DepthGroups.swift)


def validate_groups(layers: int, groups: int) -> None:
    if layers < 1:
        raise RefineError(f"depth groups: the model needs at least one layer, got {layers}")
    if not 1 <= groups <= layers:
        raise RefineError(
            f"depth groups: expected between 1 and {layers} groups (one per layer at most), got {groups}")


def group_first_layers(layers: int, groups: int) -> List[int]:
    """The first block of every group; uneven splits give the extra blocks to the lower groups."""
    validate_groups(layers, groups)
    base, extra = divmod(layers, groups)
    first, nxt = [], 0
    for g in range(groups):
        first.append(nxt)
        nxt += base + (1 if g < extra else 0)
    return first


def group_of_layer(layer: int, layers: int, groups: int) -> int:
    """−1 embeddings → first group, 0..<layers blocks, ``layers`` (final norm, head) → last."""
    first = group_first_layers(layers, groups)
    if layer < 0:
        return 0
    if layer >= layers:
        return groups - 1
    return max(i for i, f in enumerate(first) if f <= layer)


def group_names(groups: int) -> List[str]:
    if groups == 1:
        return ["all"]
    if groups == 2:
        return ["lower", "upper"]
    if groups == 3:
        return ["lower", "middle", "upper"]
    return [f"g{i}" for i in range(max(groups, 0))]


def group_extents(layers: int, groups: int) -> List[str]:
    first = group_first_layers(layers, groups)
    out = []
    for g in range(groups):
        low = first[g]
        high = first[g + 1] - 1 if g + 1 < groups else layers - 1
        blocks = f"L{low}" if low == high else f"L{low}–{high}"
        out.append(blocks + "+hd" if g == groups - 1 else blocks)
    return out


# ---------------------------------------------------------------------------------------------
# Policies (Schedule.swift, ContextPolicy.swift, TimePolicy.swift, DepthPolicy.swift)


@dataclass
class WarmupRamp:
    """Strength 0 for ``warmup_steps`` steps, then a linear ramp to 1 over ``ramp_steps``."""

    warmup_steps: int = 200
    ramp_steps: int = 200

    def strength(self, step: int) -> float:
        """The strength for the step after ``step`` (steps count from 0)."""
        completed = step + 1
        if completed <= self.warmup_steps:
            return 0.0
        if self.ramp_steps <= 0:
            return 1.0
        return min(1.0, (completed - self.warmup_steps) / self.ramp_steps)

    def is_warm(self, step: int) -> bool:
        return step + 1 >= self.warmup_steps


def _normalised_targets(values: Sequence[float], bands: int) -> List[float]:
    if len(values) != bands:
        raise RefineError(f"context targets: expected {bands} shares (one per band), got {len(values)}")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise RefineError(f"context targets: every share must be a positive number, got {list(values)}")
    total = sum(values)
    return [v / total for v in values]


class ContextPolicy:
    """Pull each layer's energy shares toward target shares (METHOD.md §5, ContextPolicy.swift).

    Per layer s_b is an EMA (ρ = 0.99) of e_b / Σe; r_b = (π_b / s_b)^γ and
    w_b = clip(r_b / sqrt(Σ s_b r_b²), 0.5, 4). γ = 0.5 after warm-up and ramp. Targets are
    measured when warm-up ends (mean shares over layers, tilted by 1 + 0.5·b/(K−1)) unless set.
    """

    def __init__(self, layers: int, bands: int, schedule: WarmupRamp, rho: float = 0.99,
                 gamma: float = 0.5, target_tilt: float = 0.5, targets: Optional[Sequence[float]] = None):
        self.layers, self.bands = layers, bands
        self.schedule, self.rho, self.gamma, self.target_tilt = schedule, rho, gamma, target_tilt
        self.shares = [[1.0 / max(bands, 1)] * bands for _ in range(layers)]
        self.layer_started = [False] * layers
        self.targets: Optional[List[float]] = None
        if targets is not None:
            try:
                self.targets = _normalised_targets(targets, bands)
            except RefineError:
                self.targets = None

    def update(self, energy: Sequence[Sequence[float]], step: int) -> List[List[float]]:
        for layer in range(min(self.layers, len(energy))):
            row = energy[layer]
            if len(row) != self.bands:
                continue
            total = sum(row)
            if not (total > 0 and math.isfinite(total)):
                continue
            for b in range(self.bands):
                share = row[b] / total
                self.shares[layer][b] = (self.rho * self.shares[layer][b] + (1 - self.rho) * share
                                         if self.layer_started[layer] else share)
            self.layer_started[layer] = True
        ones = [[1.0] * self.bands for _ in range(self.layers)]
        if not self.schedule.is_warm(step):
            return ones
        if self.targets is None:
            measured = self.measured_targets()
            if measured is not None:
                self.targets = measured
        gamma = self.gamma * self.schedule.strength(step)
        if not gamma > 0 or self.targets is None:
            return ones
        return [self.weights(self.shares[l], self.targets, gamma) if self.layer_started[l] else ones[l]
                for l in range(self.layers)]

    @staticmethod
    def weights(shares: Sequence[float], targets: Sequence[float], gamma: float) -> List[float]:
        safe = [max(s, 1e-9) for s in shares]
        ratios = [math.pow(t / s, gamma) for t, s in zip(targets, safe)]
        weighted = sum(s * r * r for s, r in zip(safe, ratios))
        norm = math.sqrt(weighted)
        if not (norm > 0 and math.isfinite(norm)):
            return [1.0 for _ in shares]
        return [CONTEXT_ADAPTIVE.clamp(r / norm) for r in ratios]

    def measured_targets(self) -> Optional[List[float]]:
        started = [l for l in range(self.layers) if self.layer_started[l]]
        if not started:
            return None
        tilted = []
        for b in range(self.bands):
            mean = sum(self.shares[l][b] for l in started) / len(started)
            tilt = 1 + self.target_tilt * b / (self.bands - 1) if self.bands > 1 else 1.0
            tilted.append(max(mean, 1e-3) * tilt)
        try:
            return _normalised_targets(tilted, self.bands)
        except RefineError:
            return None

    def set_target(self, band: int, share: float) -> float:
        """Sets one band's target; the others are rescaled to keep the sum at 1. Returns the old."""
        bands = self.bands
        if not 0 <= band < bands:
            raise RefineError(f"context has {bands} bands (0–{bands - 1}); there is no band {band}")
        if bands <= 1:
            raise RefineError("context has a single band; its target share is always 1")
        if not (math.isfinite(share) and 0 < share < 1):
            raise RefineError(f"a target share must be strictly between 0 and 1, got {share}")
        current = self.targets or self.measured_targets() or [1.0 / bands] * bands
        old = current[band]
        others = sum(v for i, v in enumerate(current) if i != band)
        nxt = [share if i == band else (v * (1 - share) / others if others > 0 else (1 - share) / (bands - 1))
               for i, v in enumerate(current)]
        if any(v <= 0 for v in nxt):
            nxt = [max(v, 1e-6) for v in nxt]
        self.targets = _normalised_targets(nxt, bands)
        return old


class TimePolicy:
    """w_H = clip(1 + κ·min(c̄, 0), 0.25, 1), w_M = 1, w_L ramps 1 → 1 + λ over 10 % of the steps."""

    def __init__(self, total_steps: int, kappa: float = 2.0, cosine_rho: float = 0.9,
                 lam: float = 0.0, ramp_fraction: float = 0.1):
        self.total_steps, self.kappa, self.cosine_rho = total_steps, kappa, cosine_rho
        self.lam, self.ramp_fraction = lam, ramp_fraction
        self.mean_cosine: Optional[float] = None

    def update(self, cosine: Optional[float], step: int) -> List[float]:
        if cosine is not None and math.isfinite(cosine):
            rho = self.cosine_rho
            self.mean_cosine = cosine if self.mean_cosine is None else rho * self.mean_cosine + (1 - rho) * cosine
        high = TIME_HIGH_ADAPTIVE.clamp(1 + self.kappa * min(self.mean_cosine or 0.0, 0.0))
        ramp = max(1.0, self.ramp_fraction * self.total_steps)
        progress = min(1.0, (step + 1) / ramp)
        low = TIME_LOW_ADAPTIVE.clamp(1 + self.lam * progress)
        return [high, 1.0, low]


class DepthPolicy:
    """φ_k = clip((r* / r̄_k)^γ, 0.5, 2), r̄_k an EMA (ρ = 0.95) of ‖Δθ_k‖/‖θ_k‖/φ_k."""

    def __init__(self, groups: int, schedule: WarmupRamp, rho: float = 0.95, gamma: float = 0.5):
        self.schedule, self.rho, self.gamma = schedule, rho, gamma
        self.mean_ratios: List[Optional[float]] = [None] * groups

    def update(self, update_norms, parameter_norms, applied_weights, step: int) -> List[float]:
        for g in range(len(self.mean_ratios)):
            if g >= len(update_norms) or g >= len(parameter_norms) or g >= len(applied_weights):
                continue
            applied, norm = applied_weights[g], parameter_norms[g]
            if not (applied > 0 and norm > 0):
                continue
            ratio = update_norms[g] / applied / norm
            if not (ratio > 0 and math.isfinite(ratio)):
                continue
            old = self.mean_ratios[g]
            self.mean_ratios[g] = ratio if old is None else self.rho * old + (1 - self.rho) * ratio
        gamma = self.gamma * self.schedule.strength(step)
        return self.weights(self.mean_ratios, gamma)

    @staticmethod
    def weights(mean_ratios, gamma: float) -> List[float]:
        known = [r for r in mean_ratios if r is not None and r > 0]
        if not gamma > 0 or not known:
            return [1.0 for _ in mean_ratios]
        target = math.exp(sum(math.log(r) for r in known) / len(known))
        return [1.0 if (r is None or not r > 0) else DEPTH_ADAPTIVE.clamp(math.pow(target / r, gamma))
                for r in mean_ratios]


# ---------------------------------------------------------------------------------------------
# Meters (Oscillation.swift)


@dataclass
class OscillationMeter:
    """EMAs (ρ = 0.9, started at the first observation) of a group's flip rate and cosines."""

    rho: float = 0.9
    flip_rate: Optional[float] = None
    grad_cos: Optional[float] = None
    update_cos: Optional[float] = None

    def observe_flips(self, flips: int, parameters: int) -> None:
        if parameters <= 0:
            return
        rate = flips / parameters
        self.flip_rate = rate if self.flip_rate is None else self.rho * self.flip_rate + (1 - self.rho) * rate

    def _observe(self, ema: Optional[float], dot: float, aa: float, bb: float) -> Optional[float]:
        denominator = math.sqrt(aa * bb) if aa * bb >= 0 else float("nan")
        if not (denominator > 0 and math.isfinite(denominator) and math.isfinite(dot)):
            return ema
        cosine = max(-1.0, min(1.0, dot / denominator))
        return cosine if ema is None else self.rho * ema + (1 - self.rho) * cosine

    def observe_gradients(self, dot: float, aa: float, bb: float) -> None:
        self.grad_cos = self._observe(self.grad_cos, dot, aa, bb)

    def observe_updates(self, dot: float, aa: float, bb: float) -> None:
        self.update_cos = self._observe(self.update_cos, dot, aa, bb)


@dataclass
class SpikeDetector:
    """A loss above 1.2 × the median of the previous 50 (after 10 losses) is a spike."""

    window: int = 50
    factor: float = 1.2
    minimum_history: int = 10
    history: List[float] = field(default_factory=list)
    count: int = 0

    def observe(self, loss: float) -> bool:
        if not math.isfinite(loss):
            self.count += 1
            return True
        spike = False
        if len(self.history) >= self.minimum_history:
            s = sorted(self.history)
            m = len(s) // 2
            median = s[m] if len(s) % 2 == 1 else (s[m - 1] + s[m]) / 2
            if loss > self.factor * median:
                spike = True
                self.count += 1
        self.history.append(loss)
        if len(self.history) > self.window:
            self.history.pop(0)
        return spike
