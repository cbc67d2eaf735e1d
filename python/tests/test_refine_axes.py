"""The Refiner on a small GPT: unit weights reproduce plain AdamW bit for bit, and each axis does
what docs/METHOD.md says."""

import copy
import math

import pytest
import torch
import torch.nn as nn

from gradflow.refine import Refiner, RefineError
from gradflow.refine.gpt import GPT

torch.set_num_threads(1)

T = 32


def batches(n, B=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(0, 256, (B, T), generator=g), torch.randint(0, 256, (B, T), generator=g))
            for _ in range(n)]


def make(attention="banded", seed=0):
    torch.manual_seed(seed)
    return GPT(block_size=T, n_layer=3, n_head=2, n_embd=32, attention=attention)


def groups_by_dim(model, wd=0.1):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    plain = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": wd}, {"params": plain, "weight_decay": 0.0}]


def train(model, data, refiner=None, lr=3e-3, clip=1.0, set_to_none=True):
    if refiner is not None:
        opt = torch.optim.AdamW(refiner.param_groups(weight_decay=0.1), lr=lr, betas=(0.9, 0.95))
    else:
        opt = torch.optim.AdamW(groups_by_dim(model), lr=lr, betas=(0.9, 0.95))
    records = []
    for step, (x, y) in enumerate(data):
        _, loss = model(x, y)
        loss.backward()
        if refiner is not None:
            refiner.before_optimizer(step)
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        if refiner is not None:
            refiner.apply_depth(opt)
        opt.step()
        if refiner is not None:
            records.append(refiner.finish_step(step, loss.item()))
        opt.zero_grad(set_to_none=set_to_none)
    return records


@pytest.mark.parametrize("set_to_none", [True, False])
def test_unit_weights_reproduce_plain_adamw_bit_for_bit(set_to_none):
    data = batches(6)
    plain = make("plain")
    refined = make("banded")
    refined.load_state_dict(plain.state_dict())
    refiner = Refiner(refined, axes=("context", "time", "depth"))
    train(plain, data, set_to_none=set_to_none)
    records = train(refined, data, refiner, set_to_none=set_to_none)
    for (name, a), b in zip(plain.named_parameters(), refined.parameters()):
        assert torch.equal(a, b), name
    # Every axis was measured.
    last = records[-1]
    assert set(last["axes"]) == {"context", "time", "depth"}
    assert all(r["guard_fallbacks"] == 0 for r in records)


def test_unit_weights_with_measurement_only_and_axes_off_are_plain():
    data = batches(3)
    plain = make("plain")
    refined = make("banded")
    refined.load_state_dict(plain.state_dict())
    refiner = Refiner(refined)          # every axis off, statistics measured
    train(plain, data)
    records = train(refined, data, refiner)
    for a, b in zip(plain.parameters(), refined.parameters()):
        assert torch.equal(a, b)
    assert records[-1]["axes"]["context"]["mode"] == "off"
    assert "time" not in records[-1]["axes"]


def test_non_unit_weights_change_training():
    data = batches(3)
    a, b = make(), make()
    train(a, data, Refiner(a, axes="all"))
    train(b, data, Refiner(b, weights={"context": [1.0, 2.0], "time": [0.5, 1.0, 1.0], "depth": [1.0, 1.0, 1.5]}))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


# --- depth axis ------------------------------------------------------------------------------


def test_depth_groups_default_split_and_header():
    model = make()
    r = Refiner(model, axes="depth")
    depth = [a for a in r.axis_info() if a["axis"] == "depth"][0]
    # 3 blocks in 3 groups; embeddings with the lower group, final norm with the upper.
    assert [b["name"] for b in depth["bands"]] == ["lower", "middle", "upper"]
    assert [b["extent"] for b in depth["bands"]] == ["L0", "L1", "L2+hd"]
    assert depth["edges"] == [1.0, 2.0]
    assert (depth["bands"][0]["floor"], depth["bands"][0]["ceiling"]) == (0.1, 10.0)
    group = {id(p): k for k, g in enumerate([[p for p in pg["params"]] for pg in r.param_groups()]) for p in g}
    names = dict(model.named_parameters())
    pg = r.param_groups()
    of = {id(p): g["depth_group"] for g in pg for p in g["params"]}
    assert of[id(names["wte.weight"])] == 0 and of[id(names["wpe.weight"])] == 0
    assert of[id(names["h.0.attn.c_attn.weight"])] == 0
    assert of[id(names["h.1.mlp.0.weight"])] == 1
    assert of[id(names["h.2.ln_2.bias"])] == 2 and of[id(names["ln_f.weight"])] == 2
    assert group  # groups were built


def test_depth_weight_scales_the_group_update_exactly():
    """lr_k = lr·φ_k, weight decay included: with AdamW a group's update scales by φ_k."""
    data = batches(1)
    a, b = make(), make()
    ra, rb = Refiner(a, axes="depth"), Refiner(b, weights={"depth": [1.0, 2.0, 0.5]})
    before = [p.detach().clone() for p in a.parameters()]
    train(a, data, ra, clip=0)
    train(b, data, rb, clip=0)
    of = {id(p): g["depth_group"] for g in rb.param_groups() for p in g["params"]}
    phi = [1.0, 2.0, 0.5]
    for p0, pa, pb in zip(before, a.parameters(), b.parameters()):
        ua, ub = pa.detach() - p0, pb.detach() - p0
        torch.testing.assert_close(ub, ua * phi[of[id(pb)]], rtol=1e-4, atol=1e-7)


def test_apply_depth_restores_the_rates():
    model = make()
    r = Refiner(model, weights={"depth": [1.0, 2.0, 0.5]})
    opt = torch.optim.AdamW(r.param_groups(), lr=1e-3)
    x, y = batches(1)[0]
    model(x, y)[1].backward()
    r.before_optimizer(0)
    with r.apply_depth(opt):
        assert sorted({g["lr"] for g in opt.param_groups}) == [5e-4, 1e-3, 2e-3]
        opt.step()
    assert {g["lr"] for g in opt.param_groups} == {1e-3}
    r.finish_step(0, 1.0)


def test_depth_on_without_apply_depth_is_an_error():
    model = make()
    r = Refiner(model, axes="depth")
    opt = torch.optim.AdamW(r.param_groups(), lr=1e-3)
    x, y = batches(1)[0]
    model(x, y)[1].backward()
    r.before_optimizer(0)
    opt.step()
    with pytest.raises(RefineError, match="apply_depth"):
        r.finish_step(0, 1.0)


def test_mixed_param_group_is_refused():
    model = make()
    r = Refiner(model, axes="depth")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with pytest.raises(RefineError, match="param_groups"):
        r.apply_depth(opt)


def test_generic_model_grouping_and_explicit_groups():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 8)
            self.layers = nn.ModuleList(nn.Linear(8, 8) for _ in range(5))
            self.norm = nn.LayerNorm(8)
            self.head = nn.Linear(8, 10)

    net = Net()
    r = Refiner(net, axes=("time", "depth"))
    depth = r.axis_info()[-1]
    assert [b["extent"] for b in depth["bands"]] == ["L0–1", "L2–3", "L4+hd"]
    of = {n: g["depth_group"] for g in r.param_groups() for p in g["params"] for n, q in net.named_parameters() if q is p}
    assert of["embed.weight"] == 0 and of["layers.1.bias"] == 0 and of["layers.2.weight"] == 1
    assert of["layers.4.weight"] == 2 and of["norm.weight"] == 2 and of["head.bias"] == 2
    assert not any(a["axis"] == "context" for a in r.axis_info())
    with pytest.raises(RefineError, match="BandedCausalSelfAttention"):
        Refiner(net, axes="context")
    names = [n for n, _ in net.named_parameters()]
    r2 = Refiner(net, axes="depth", groups=[names[:3], names[3:]])
    assert [b["name"] for b in r2.axis_info()[-1]["bands"]] == ["lower", "upper"]
    with pytest.raises(RefineError, match="in no group"):
        Refiner(net, axes="depth", groups=[names[:3]])
    with pytest.raises(RefineError, match="depth_groups"):
        Refiner(net, axes="depth", depth_groups=6)


@pytest.mark.parametrize("axes,set_to_none", [((), True), ("time", True), ("time", False), ((), False)])
def test_oscillation_statistics_match_a_direct_computation(axes, set_to_none):
    """Also with the time axis on, with zero_grad(set_to_none=False) (the refiner's copies of the
    previous gradient are its own: zeroing .grad in place does not touch them) and with clipping
    that scales .grad in place between before_optimizer and finish_step."""
    model = make()
    r = Refiner(model, axes=axes)
    opt = torch.optim.AdamW(r.param_groups(), lr=1e-2)
    groups = [[p for g in r.param_groups() if g["depth_group"] == k for p in g["params"]] for k in range(3)]
    prev_u = prev_g = None
    flip_ema, cos_ema = [None] * 3, [None] * 3
    for step, (x, y) in enumerate(batches(4)):
        model(x, y)[1].backward()
        r.before_optimizer(step)
        before = [[p.detach().clone() for p in g] for g in groups]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        r.apply_depth(opt)
        opt.step()
        grads = [torch.cat([p.grad.reshape(-1) for p in g]).double() for g in groups]
        ups = [torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(g, bs)]).double() for g, bs in zip(groups, before)]
        thetas = [torch.cat([b.reshape(-1) for b in bs]).double() for bs in before]
        rec = r.finish_step(step, 1.0)
        for k in range(3):
            assert rec["axes"]["depth"]["energy"][k] == pytest.approx(grads[k].norm().item(), rel=1e-5)
            assert rec["oscillation"]["rel_update"][k] == pytest.approx((ups[k].norm() / thetas[k].norm()).item(), rel=1e-5)
            flips = 0 if prev_u is None else int(((ups[k] * prev_u[k]) < 0).sum())
            rate = flips / ups[k].numel()
            flip_ema[k] = rate if flip_ema[k] is None else 0.9 * flip_ema[k] + 0.1 * rate
            assert rec["oscillation"]["flip_rate"][k] == pytest.approx(flip_ema[k], abs=1e-9)
            if prev_g is not None:
                cos = (torch.dot(grads[k], prev_g[k]) / (grads[k].norm() * prev_g[k].norm())).item()
                cos_ema[k] = cos if cos_ema[k] is None else 0.9 * cos_ema[k] + 0.1 * cos
            assert rec["oscillation"]["grad_cos"][k] == pytest.approx(cos_ema[k] or 0.0, rel=1e-4, abs=1e-6)
        if step == 0:
            assert "update_cos" not in rec["oscillation"]
        prev_u, prev_g = ups, grads
        opt.zero_grad(set_to_none=set_to_none)


def test_gradient_replaced_after_before_optimizer_is_measured():
    """A loop that puts a new tensor in .grad between before_optimizer and finish_step: the depth
    statistics measure the gradient the optimizer used, and the refiner keeps the loop's tensor."""
    model = make()
    r = Refiner(model, axes="time")
    opt = torch.optim.SGD(r.param_groups(), lr=1e-2)
    for step, (x, y) in enumerate(batches(2)):
        model(x, y)[1].backward()
        r.before_optimizer(step)
        for p in model.parameters():
            p.grad = p.grad * 0.5
        mine = [p.grad for p in model.parameters()]
        opt.step()
        grads = [torch.cat([p.grad.reshape(-1) for g in r.param_groups() if g["depth_group"] == k
                            for p in g["params"]]).double() for k in range(3)]
        rec = r.finish_step(step, 1.0)
        for k in range(3):
            assert rec["axes"]["depth"]["energy"][k] == pytest.approx(grads[k].norm().item(), rel=1e-5)
        assert all(p.grad is g for p, g in zip(model.parameters(), mine))
        opt.zero_grad()


def _forward_pre_hooks(model):
    hooks = sum(len(m._forward_pre_hooks) for m in model.modules())
    return hooks + len(torch.nn.modules.module._global_forward_pre_hooks)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_refiner_never_replaces_grad_tensors_nor_hooks_the_model(set_to_none):
    """The refiner reads and writes .grad in place only: every parameter's .grad is the same tensor
    (id and data_ptr) from loss.backward() to after finish_step — with the time axis writing ĝ,
    clipping and the optimizer in between — and with zero_grad(set_to_none=False) across steps
    too; and it registers no forward pre-hook on the model (nor a global one). Wrappers such as
    DDP's gradient_as_bucket_view, FSDP or a CUDA-graph-captured optimizer rely on both."""
    model = make()
    hooks = _forward_pre_hooks(model)
    r = Refiner(model, weights={"context": [1.0, 2.0], "time": [0.5, 1.2, 1.0], "depth": [1.0, 1.0, 1.5]})
    assert _forward_pre_hooks(model) == hooks
    opt = torch.optim.AdamW(r.param_groups(weight_decay=0.1), lr=1e-2)
    first = None
    for step, (x, y) in enumerate(batches(4)):
        model(x, y)[1].backward()
        held = [(id(p.grad), p.grad.data_ptr()) for p in model.parameters()]
        if not set_to_none:
            first = first or held
            assert held == first
        r.before_optimizer(step)
        assert [(id(p.grad), p.grad.data_ptr()) for p in model.parameters()] == held
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        r.apply_depth(opt)
        opt.step()
        rec = r.finish_step(step, 1.0)
        assert [(id(p.grad), p.grad.data_ptr()) for p in model.parameters()] == held
        assert _forward_pre_hooks(model) == hooks
        opt.zero_grad(set_to_none=set_to_none)
    assert rec["axes"]["time"]["weight"] == pytest.approx([0.5, 1.2, 1.0])


# --- time axis -------------------------------------------------------------------------------


class TimeReference:
    """The time axis written out per tensor from METHOD.md §2, in float64."""

    def __init__(self, betas=(0.9, 0.99)):
        self.bf, self.bs = betas
        self.f, self.s = {}, {}
        self.fallbacks = 0

    def __call__(self, params, w):
        hh = mm = ll = 0.0
        for i, p in enumerate(params):
            g = p.grad.double()
            if i not in self.f:
                self.f[i], self.s[i] = g.clone(), g.clone()
            else:
                self.f[i] = self.bf * self.f[i] + (1 - self.bf) * g
                self.s[i] = self.bs * self.s[i] + (1 - self.bs) * g
            h, mid, low = g - self.f[i], self.f[i] - self.s[i], self.s[i]
            hh += float((h * h).sum()); mm += float((mid * mid).sum()); ll += float((low * low).sum())
            refined = g + (w[0] - 1) * h + (w[1] - 1) * mid + (w[2] - 1) * low
            if float((g * g).sum()) > 0 and float((refined * g).sum()) <= 0:
                self.fallbacks += 1
            else:
                p.grad = refined.to(p.dtype)
        return [math.sqrt(hh), math.sqrt(mm), math.sqrt(ll)]


@pytest.mark.parametrize("w", [(0.5, 1.0, 1.0), (1.0, 2.0, 3.0), (0.0, 1.0, 6.0)])
def test_time_axis_matches_the_definition(w):
    a, b = make(), make()
    r = Refiner(a, weights={"time": w}, measure=False)
    ref = TimeReference()
    pa, pb = list(r.arena.params), None
    # Same parameter order for the reference.
    names = {id(p): n for n, p in a.named_parameters()}
    bmap = dict(b.named_parameters())
    pb = [bmap[names[id(p)]] for p in pa]
    for step, (x, y) in enumerate(batches(4)):
        a(x, y)[1].backward()
        b(x, y)[1].backward()
        r.before_optimizer(step)
        norms = ref(pb, w)
        assert r._time_stats["band_norms"] == pytest.approx(norms, rel=1e-4, abs=1e-7)
        for p, q in zip(pa, pb):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6)
        assert r.guard_fallbacks == ref.fallbacks
        r.finish_step(step, 1.0)
        for m in (a, b):
            m.zero_grad()


def test_time_axis_unit_weights_leave_grad_untouched_and_bands_sum_to_g():
    model = make()
    r = Refiner(model, axes="time", measure=False)
    ref = TimeReference()
    for step, (x, y) in enumerate(batches(4)):
        model(x, y)[1].backward()
        grads = [p.grad.clone() for p in r.arena.params]
        r.before_optimizer(step)
        for p, g in zip(r.arena.params, grads):
            assert torch.equal(p.grad, g)
        # The band norms (from products of g, m_f, m_s in the steady state) match the definition.
        assert r._time_stats["band_norms"] == pytest.approx(ref(r.arena.params, (1, 1, 1)), rel=1e-4, abs=1e-7)
        # h + mid + low = g with h = g − m_f, mid = m_f − m_s, low = m_s (rows 1, 2: the new EMAs).
        g_row, f, s = r.time_filter.buf[:3]
        torch.testing.assert_close((g_row - f) + (f - s) + s, g_row, rtol=0, atol=1e-6)
        r.finish_step(step, 1.0)
        model.zero_grad()


def test_grokfast_is_the_special_case():
    """β_f = β_s = α, weights 1, 1, 1 + λ: ĝ = g + λ·EMA_α(g), against Grokfast-EMA as published."""
    alpha, lam = 0.98, 2.0
    a, b = make(), make()
    r = Refiner(a, grokfast=(alpha, lam), measure=False)
    assert r.weights("time") == [1.0, 1.0, 3.0] and r.time_betas == (alpha, alpha)
    grads_ema = None
    for step, (x, y) in enumerate(batches(4)):
        a(x, y)[1].backward()
        b(x, y)[1].backward()
        r.before_optimizer(step)
        # gradfilter_ema from the Grokfast paper's code (ironjr/grokfast), written independently.
        if grads_ema is None:
            grads_ema = {n: p.grad.detach() for n, p in b.named_parameters()}
        else:
            for n, p in b.named_parameters():
                grads_ema[n] = grads_ema[n] * alpha + p.grad.detach() * (1 - alpha)
        for n, p in b.named_parameters():
            p.grad = p.grad + grads_ema[n] * lam
        for (n, p), q in zip(a.named_parameters(), b.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7)
        r.finish_step(step, 1.0)
        a.zero_grad(); b.zero_grad()


def test_guard_falls_back_and_counts():
    model = nn.Linear(4, 1, bias=False)
    r = Refiner(model, weights={"time": [1.0, 1.0, 6.0]}, measure=False)
    model.weight.grad = torch.ones(1, 4)
    r.before_optimizer(0)                               # first step: ĝ = 6·g
    assert torch.equal(model.weight.grad, torch.full((1, 4), 6.0))
    r.finish_step(0, 1.0)
    model.weight.grad = torch.full((1, 4), -0.1)        # reversal: ĝ = g + 5·m_s points the old way
    r.before_optimizer(1)
    assert torch.equal(model.weight.grad, torch.full((1, 4), -0.1))
    assert r.finish_step(1, 1.0)["guard_fallbacks"] == 1
    model.weight.grad = torch.zeros(1, 4)               # zero gradient: refined without the guard
    r.before_optimizer(2)
    assert r.guard_fallbacks == 1
    assert model.weight.grad.abs().sum() > 0


def test_time_axis_skips_parameters_without_gradient():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    r = Refiner(model, weights={"time": [1.0, 1.0, 2.0]}, measure=False)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    r.before_optimizer(0)
    r.finish_step(0, 1.0)
    model[0].weight.grad = None
    fast_before = r.time_filter.views[1][0].clone()
    r.before_optimizer(1)
    assert torch.equal(r.time_filter.views[1][0], fast_before)
    assert model[0].weight.grad is None


def test_adaptive_time_policy_damps_the_high_band_on_reversals():
    model = nn.Linear(4, 1, bias=False)
    r = Refiner(model, adaptive="time", measure=False)
    for step in range(6):
        model.weight.grad = torch.ones(1, 4) * (1 if step % 2 == 0 else -1)
        r.before_optimizer(step)
        rec = r.finish_step(step, 1.0)
    assert rec["axes"]["time"]["mode"] == "adaptive"
    w = r.weights("time")
    assert 0.25 <= w[0] < 1 and w[1] == 1 and w[2] == 1


# --- commands, header, refusals --------------------------------------------------------------


def test_axis_info_bounds_follow_the_modes():
    model = make()
    r = Refiner(model, axes=("context",), adaptive=("time", "depth"))
    info = {a["axis"]: a for a in r.axis_info()}
    assert [a["axis"] for a in r.axis_info()] == ["context", "time", "depth"]
    assert info["context"]["edges"] == [8.0] and [b["name"] for b in info["context"]["bands"]] == ["local", "long"]
    assert info["context"]["bands"][1]["extent"] == "9–31"
    assert [(b["floor"], b["ceiling"]) for b in info["context"]["bands"]] == [(0.05, 10.0)] * 2
    assert [(b["floor"], b["ceiling"]) for b in info["time"]["bands"]] == [(0.25, 1.0), (1.0, 1.0), (1.0, 4.0)]
    assert [b["extent"] for b in info["time"]["bands"]] == ["β .90", "β .99", "m_s"]
    assert info["time"]["edges"] == [0.9, 0.99]
    assert [(b["floor"], b["ceiling"]) for b in info["depth"]["bands"]] == [(0.5, 2.0)] * 3


def test_commands_and_refusals():
    model = make()
    r = Refiner(model, axes=("context", "depth"))
    assert r.set_weight("context", 1, 2.5) == (1.0, 2.5)
    assert r.weights("context") == [[1.0, 2.5]] * 3
    assert r.set_weight("context", 0, 0.5, layer=2) == (1.0, 0.5)
    assert r.weights("context")[2] == [0.5, 2.5]
    assert r.set_weight("depth", 2, 0.1) == (1.0, 0.1)
    with pytest.raises(RefineError, match=r"outside the manual range \[0.1, 10\]"):
        r.set_weight("depth", 0, 20)
    with pytest.raises(RefineError, match="there is no band 3"):
        r.set_weight("depth", 3, 1.0)
    with pytest.raises(RefineError, match="no layer 3"):
        r.set_weight("context", 0, 1.0, layer=3)
    with pytest.raises(RefineError, match="only the context axis"):
        r.set_weight("depth", 0, 1.0, layer=0)
    # An off axis is turned on by a weight, as in the Swift trainer (the time filter starts).
    assert r.mode("time") == "off" and r.time_filter is None
    assert r.set_weight("time", 0, 0.5) == (1.0, 0.5)
    assert r.mode("time") == "manual" and r.time_filter is not None
    started = r.time_filter
    assert r.set_weight("time", 0, 0.6) == (0.5, 0.6) and r.time_filter is started   # the filter goes on
    with pytest.raises(RefineError, match="finite"):
        r.set_weight("context", 0, float("nan"))
    with pytest.raises(RefineError, match="must be a number"):
        r.set_weight("context", 0, "high")
    with pytest.raises(RefineError, match="integer index"):
        r.set_weight("context", 0.5, 1.0)
    assert r.set_adaptive("depth", True) == (0, 1)
    assert r.mode("depth") == "adaptive" and r.weights("depth") == [1.0, 1.0, 0.5]   # clamped to [0.5, 2]
    assert r.set_adaptive("depth", False) == (1, 0)
    old, new = r.set_target(1, 0.4)
    assert old == pytest.approx(0.5) and new == 0.4
    assert r.context_policy.targets == pytest.approx([0.6, 0.4])
    with pytest.raises(RefineError, match="strictly between 0 and 1"):
        r.set_target(0, 1.0)
    with pytest.raises(RefineError, match="no band 2"):
        r.set_target(2, 0.5)
    with pytest.raises(RefineError, match="manual range"):
        Refiner(make(), weights={"time": [7, 1, 1]})
    with pytest.raises(RefineError, match="expected 3 weights"):
        Refiner(make(), weights={"depth": [1, 1]})
    with pytest.raises(RefineError, match="edge 40 leaves the last band empty"):
        Refiner(make(), axes="context", context_bands=(4, 40))


def step_once(model, refiner, opt, step, batch):
    """One step of the documented loop; returns finish_step's members."""
    x, y = batch
    _, loss = model(x, y)
    loss.backward()
    refiner.before_optimizer(step)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    refiner.apply_depth(opt)
    opt.step()
    out = refiner.finish_step(step, loss.item())
    opt.zero_grad(set_to_none=True)
    return out


def test_a_weight_or_mode_turns_an_off_axis_on_mid_run():
    data = batches(3)
    model = make()
    r = Refiner(model)   # every axis off; context and depth measured
    opt = torch.optim.AdamW(r.param_groups(weight_decay=0.1), lr=3e-3, betas=(0.9, 0.95))
    out = step_once(model, r, opt, 0, data[0])
    assert list(out["axes"]) == ["context", "depth"] and {a["mode"] for a in out["axes"].values()} == {"off"}
    assert r.set_weight("context", 1, 2.0) == (1.0, 2.0) and r.mode("context") == "manual"
    assert r.time_filter is None
    assert r.set_adaptive("time", False) == (0, 0) and r.mode("time") == "manual" and r.time_filter is not None
    assert r.set_adaptive("depth", True) == (0, 1) and r.mode("depth") == "adaptive"
    assert r.set_target(0, 0.4)[1] == 0.4
    rates = [g["lr"] for g in opt.param_groups]
    out = step_once(model, r, opt, 1, data[1])
    assert list(out["axes"]) == ["context", "time", "depth"]
    assert [out["axes"][a]["mode"] for a in ("context", "time", "depth")] == ["manual", "manual", "adaptive"]
    assert out["axes"]["context"]["weight"] == [1.0, 2.0]
    assert [g["lr"] for g in opt.param_groups] == rates   # apply_depth's rates restored
    # The context weight acts on the backward pass from now on: a copy of the run set back to unit
    # context weights takes a different step, a copy at the same weights the same one.
    after = {}
    for w in (1.0, 2.0):
        twin = make()
        twin.load_state_dict(model.state_dict())
        rt = Refiner(twin)
        rt.load_state_dict(copy.deepcopy(r.state_dict()))   # (state dicts share their tensors)
        rt.set_weight("context", 1, w)
        opt_t = torch.optim.AdamW(rt.param_groups(weight_decay=0.1), lr=3e-3, betas=(0.9, 0.95))
        opt_t.load_state_dict(copy.deepcopy(opt.state_dict()))
        step_once(twin, rt, opt_t, 2, data[2])
        after[w] = list(twin.parameters())
    step_once(model, r, opt, 2, data[2])
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), after[2.0]))
    assert not all(torch.equal(p, q) for p, q in zip(model.parameters(), after[1.0]))


def test_the_depth_axis_is_turned_on_only_with_an_optimizer_it_can_steer():
    data = batches(2)
    model = make()
    r = Refiner(model, measure=False)
    with pytest.raises(RefineError, match=r"apply_depth\(optimizer\) has not been called"):
        r.set_weight("depth", 0, 0.5)
    opt = torch.optim.AdamW(groups_by_dim(model), lr=3e-3)   # groups that mix depth groups
    step_once(model, r, opt, 0, data[0])
    with pytest.raises(RefineError, match="depth axis cannot be turned on: an optimizer parameter group holds "
                                          "parameters of 3 depth groups"):
        r.set_adaptive("depth", True)
    assert r.mode("depth") == "off" and r.weights("depth") == [1.0, 1.0, 1.0] and r.depth_meter is None
    step_once(model, r, opt, 1, data[1])   # trains on, unchanged


def test_depth_turned_on_without_measurement_keeps_its_meter_across_a_resume():
    data = batches(3)
    model = make()
    r = Refiner(model, measure=False)
    opt = torch.optim.AdamW(r.param_groups(weight_decay=0.1), lr=3e-3, betas=(0.9, 0.95))
    step_once(model, r, opt, 0, data[0])
    assert r.depth_meter is None
    r.set_weight("depth", 2, 0.5)
    assert r.depth_meter is not None and r.mode("depth") == "manual"
    step_once(model, r, opt, 1, data[1])
    out = step_once(model, r, opt, 2, data[2])
    assert out["axes"]["depth"]["weight"] == [1.0, 1.0, 0.5] and out["oscillation"]["flip_rate"]
    fresh = Refiner(model, measure=False)
    fresh.load_state_dict(r.state_dict())
    assert fresh.mode("depth") == "manual" and fresh.depth_meter is not None
    assert torch.equal(fresh.depth_meter.buf[:4], r.depth_meter.buf[:4])


def test_describe():
    r = Refiner(make(), axes="time", adaptive="depth", policy_warmup=50)
    d = r.describe()
    assert d["modes"] == {"context": "off", "time": "manual", "depth": "adaptive"}
    assert d["context_edges"] == [8] and d["time_betas"] == [0.9, 0.99] and d["policy_warmup"] == 50


def test_state_dict_continues_exactly():
    data = batches(6)
    a, b = make(), make()
    kw = dict(adaptive=("context", "time", "depth"), policy_warmup=1)
    ra = Refiner(a, **kw)
    train(a, data, ra)
    rb = Refiner(b, **kw)
    opt_b = torch.optim.AdamW(rb.param_groups(weight_decay=0.1), lr=3e-3, betas=(0.9, 0.95))
    # b: 3 steps, save, a fresh refiner loads, 3 more steps.
    for step, (x, y) in enumerate(data[:3]):
        b(x, y)[1].backward(); rb.before_optimizer(step)
        torch.nn.utils.clip_grad_norm_(b.parameters(), 1.0); rb.apply_depth(opt_b); opt_b.step()
        rb.finish_step(step, 1.0); opt_b.zero_grad(set_to_none=True)
    state = rb.state_dict()
    rc = Refiner(b, **kw)
    rc.load_state_dict(state)
    for step, (x, y) in enumerate(data[3:], start=3):
        b(x, y)[1].backward(); rc.before_optimizer(step)
        torch.nn.utils.clip_grad_norm_(b.parameters(), 1.0); rc.apply_depth(opt_b); opt_b.step()
        rc.finish_step(step, 1.0); opt_b.zero_grad(set_to_none=True)
    # a's spikes saw real losses, b's saw 1.0: compare the parameters and weights only.
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert ra.weights("context") == rc.weights("context") and ra.weights("depth") == rc.weights("depth")


def test_parameters_without_gradient_in_the_depth_statistics():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 1)])
            self.unused = nn.Linear(4, 4)

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x.sum()

    net = Net()
    r = Refiner(net, axes=("time", "depth"), weights={"time": [0.5, 1.0, 2.0]})
    opt = torch.optim.AdamW(r.param_groups(), lr=1e-2)
    for step in range(3):
        net(torch.randn(5, 4)).backward()
        r.before_optimizer(step)
        r.apply_depth(opt)
        opt.step()
        rec = r.finish_step(step, 1.0)
        opt.zero_grad(set_to_none=True)
        assert net.unused.weight.grad is None
    assert all(math.isfinite(x) for x in rec["axes"]["depth"]["energy"])
    assert len(rec["oscillation"]["flip_rate"]) == 3


def test_attention_dropout_with_weights_trains():
    torch.manual_seed(3)
    model = GPT(block_size=T, n_layer=2, n_head=2, n_embd=16, dropout=0.1)
    r = Refiner(model, weights={"context": [0.5, 2.0]})
    records = train(model, batches(2), r)
    assert all(math.isfinite(x) for x in records[-1]["axes"]["context"]["energy"])
    assert records[-1]["attention_mass"][0] == pytest.approx([records[-1]["attention_mass"][0][0],
                                                               1 - records[-1]["attention_mass"][0][0]])


def test_gradient_accumulation_adds_micro_batches():
    torch.manual_seed(4)
    model = make()
    r = Refiner(model)
    opt = torch.optim.AdamW(r.param_groups(), lr=1e-3)
    (x1, y1), (x2, y2) = batches(2)
    (model(x1, y1)[1] / 2).backward()
    (model(x2, y2)[1] / 2).backward()
    assert r.context.queries == [2 * 4 * T] * 3
    r.before_optimizer(0)
    r.apply_depth(opt)
    opt.step()
    rec = r.finish_step(0, 1.0)
    for layer in rec["attention_mass"]:
        assert sum(layer) == pytest.approx(1.0, rel=1e-5)
