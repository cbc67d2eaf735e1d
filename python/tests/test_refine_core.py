"""The ported value types: the same numbers as Tests/RefinementTests (PolicyTests,
ContextBandsTests) for the Swift originals."""

import math
import random

import pytest

from gradflow.refine import core
from gradflow.refine.core import (ContextBands, ContextPolicy, DepthPolicy, RefineError, TimePolicy,
                                  WarmupRamp)


def test_bounds_table_is_weightbounds_swift():
    assert core.bounds("context", 0, "adaptive") == core.WeightBounds(0.5, 4)
    assert core.bounds("context", 2, "manual") == core.WeightBounds(0.05, 10)
    assert [core.bounds("time", b, "adaptive") for b in range(3)] == [
        core.WeightBounds(0.25, 1), core.WeightBounds(1, 1), core.WeightBounds(1, 4)]
    assert core.bounds("time", 1, "manual") == core.WeightBounds(0, 6)
    assert core.bounds("depth", 0, "adaptive") == core.WeightBounds(0.5, 2)
    assert core.bounds("depth", 0, "off") == core.WeightBounds(0.1, 10)
    assert core.WeightBounds(0.5, 4).clamp(float("nan")) == 0.5
    assert core.WeightBounds(0.05, 10).text == "[0.05, 10]"


def test_context_bands():
    b = ContextBands([8, 64], 128)
    assert b.names == ["local", "phrase", "long"] and b.extents == ["0–8", "9–64", "65–127"]
    assert b.band_of_distance(8) == 0 and b.band_of_distance(9) == 1 and b.band_of_distance(127) == 2
    assert ContextBands.standard(32).edges == [8] and ContextBands.standard(32).names == ["local", "long"]
    assert ContextBands.standard(9).names == ["all"] and ContextBands.standard(9).extents == ["0–8"]
    assert ContextBands([1, 2, 3], 10).names == ["b0", "b1", "b2", "b3"]
    assert ContextBands([0], 4).extents == ["0", "1–3"]
    with pytest.raises(RefineError, match="strictly increasing"):
        ContextBands([8, 8], 128)
    with pytest.raises(RefineError, match="must be ≥ 0"):
        ContextBands([-1], 128)
    with pytest.raises(RefineError, match="leaves the last band empty"):
        ContextBands([127], 128)


def test_depth_groups():
    assert core.group_first_layers(4, 3) == [0, 2, 3]
    assert core.group_extents(4, 3) == ["L0–1", "L2", "L3+hd"]
    assert [core.group_of_layer(l, 4, 3) for l in (-1, 0, 1, 2, 3, 4)] == [0, 0, 0, 1, 2, 2]
    assert core.group_names(2) == ["lower", "upper"] and core.group_names(5)[4] == "g4"
    with pytest.raises(RefineError, match="between 1 and 2 groups"):
        core.validate_groups(2, 3)


def test_format_beta():
    assert [core.format_beta(b) for b in (0.9, 0.99, 0.995, 0.0)] == [".90", ".99", ".995", ".00"]


def test_warmup_ramp():
    s = WarmupRamp(200, 200)
    assert s.strength(199) == 0 and s.strength(200) == pytest.approx(1 / 200) and s.strength(399) == 1
    assert WarmupRamp(0, 0).strength(0) == 1 and WarmupRamp(10, 0).is_warm(9)


def test_context_bounds_for_any_input():
    rng = random.Random(11)
    for _ in range(300):
        bands = rng.randint(1, 5)
        shares = [rng.random() * (1 if rng.random() < 0.5 else 1e-8) for _ in range(bands)]
        total = sum(shares)
        shares = [s / total for s in shares] if total > 0 else shares
        targets = [rng.uniform(0.01, 1) for _ in range(bands)]
        targets = [t / sum(targets) for t in targets]
        w = ContextPolicy.weights(shares, targets, rng.uniform(0, 3))
        assert all(0.5 <= x <= 4 for x in w)


def test_context_warmup_and_ramp():
    policy = ContextPolicy(1, 3, WarmupRamp(10, 10), targets=[0.4, 0.3, 0.3])
    longs = []
    for step in range(30):
        w = policy.update([[0.7, 0.25, 0.05]], step)
        if step < 9:
            assert w == [[1, 1, 1]]
        longs.append(w[0][2])
    assert longs[9] == 1 and longs[10] > 1
    assert all(longs[s + 1] > longs[s] for s in range(10, 19))
    assert longs[19] == longs[29]
    assert abs(longs[29] - math.sqrt(0.3 / 0.05)) < 1e-9


def test_context_raises_short_band():
    w = ContextPolicy.weights([0.7, 0.25, 0.05], [0.5, 0.3, 0.2], 0.5)
    assert w[2] > w[1] > 1 > w[0]
    assert abs(sum(s * x * x for s, x in zip([0.7, 0.25, 0.05], w)) - 1) < 1e-12
    assert all(abs(x - 1) < 1e-12 for x in ContextPolicy.weights([0.5, 0.3, 0.2], [0.5, 0.3, 0.2], 0.5))


def test_context_targets_measured_tilted_and_set():
    policy = ContextPolicy(2, 3, WarmupRamp(5, 0))
    for step in range(4):
        policy.update([[6, 3, 1], [6, 3, 1]], step)
    assert policy.targets is None
    assert policy.update([[6, 3, 1], [6, 3, 1]], 4) == [[1, 1, 1]] * 2
    targets = list(policy.targets)
    w = policy.update([[6, 3, 1], [6, 3, 1]], 5)
    tilted = [0.6, 0.3 * 1.25, 0.1 * 1.5]
    assert targets == pytest.approx([t / sum(tilted) for t in tilted], abs=1e-9)
    assert w[0][2] > 1 and w[0][0] < 1
    assert policy.set_target(2, 0.5) == targets[2]
    assert policy.targets[2] == pytest.approx(0.5, abs=1e-12) and sum(policy.targets) == pytest.approx(1)
    assert policy.targets[0] / policy.targets[1] == pytest.approx(targets[0] / targets[1], rel=1e-9)
    with pytest.raises(RefineError):
        policy.set_target(0, 1)
    with pytest.raises(RefineError):
        policy.set_target(3, 0.2)


def test_time_policy():
    policy = TimePolicy(1000)
    assert policy.update(0.8, 0)[0] == 1
    assert abs(TimePolicy(1000).update(-0.2, 0)[0] - 0.6) < 1e-12
    assert TimePolicy(1000).update(-0.9, 0)[0] == 0.25
    assert policy.update(-1, 1)[0] == 1 and abs(policy.mean_cosine - 0.62) < 1e-12
    ramp = TimePolicy(1000, lam=2)
    lows = [ramp.update(0.5, s)[2] for s in range(200)]
    assert abs(lows[0] - 1.02) < 1e-12 and abs(lows[49] - 2) < 1e-12 and lows[99] == 3 and lows[199] == 3


def test_depth_policy_equalises():
    policy = DepthPolicy(3, WarmupRamp(0, 0), gamma=1)
    raw = [1e-3, 2e-3, 4e-3]
    phi = policy.update(raw, [1, 1, 1], [1, 1, 1], 0)
    assert all(abs(r * p - 2e-3) < 1e-12 for r, p in zip(raw, phi))
    again = policy.update([r * p * 10 for r, p in zip(raw, phi)], [10, 10, 10], phi, 1)
    assert again == pytest.approx(phi, abs=1e-12)
    half = DepthPolicy(3, WarmupRamp(0, 0), gamma=0.5)
    spread = [r * p for r, p in zip(raw, half.update(raw, [1, 1, 1], [1, 1, 1], 0))]
    assert abs(spread[2] / spread[0] - 2) < 1e-9


def test_depth_policy_bounds_and_warmup():
    rng = random.Random(13)
    policy = DepthPolicy(4, WarmupRamp(200, 200))
    for step in range(500):
        norms = [10 ** rng.uniform(-9, 1) for _ in range(4)]
        phi = policy.update(norms, [1, 2, 3, 0], [1, 1, 1, 1], step)
        assert all(0.5 <= p <= 2 for p in phi)
        if step < 199:
            assert phi == [1, 1, 1, 1]
        assert phi[3] == 1


def test_oscillation_meter_and_spikes():
    m = core.OscillationMeter()
    m.observe_flips(5, 10)
    m.observe_flips(0, 10)
    assert m.flip_rate == pytest.approx(0.45)
    m.observe_gradients(0.0, 0.0, 1.0)
    assert m.grad_cos is None
    m.observe_gradients(-2.0, 1.0, 1.0)
    assert m.grad_cos == -1.0
    s = core.SpikeDetector()
    assert not any(s.observe(1.0) for _ in range(10))
    assert s.observe(1.3) and not s.observe(1.1) and s.observe(float("nan"))
