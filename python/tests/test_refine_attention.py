"""The context axis: the refined backward is the gradient of METHOD.md §1's surrogate, the forward
value is unchanged, and the band statistics are the ones the Swift kernel measures."""

import math

import pytest
import torch

from gradflow.refine import BandedCausalSelfAttention, EdgeWeightedMatmul, Refiner
from gradflow.refine.core import ContextBands
from gradflow.refine.gpt import GPT, PlainCausalSelfAttention

torch.set_num_threads(1)


def band_weights(T, edges, w):
    bands = ContextBands(edges, T)
    W = torch.ones(T, T, dtype=torch.float64)
    for i in range(T):
        for j in range(i + 1):
            W[i, j] = w[bands.band_of_distance(i - j)]
    return W


def probabilities(B, H, T, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(B, H, T, T, generator=g, dtype=torch.float64)
    s = s.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
    return torch.softmax(s, -1)


class _Frozen(torch.autograd.Function):
    """Adds Σ_j (W_ij − 1)(P_ij V_j − P0_ij V0_j) to the value and nothing to the gradient.

    EdgeWeightedMatmul(P, V) + _Frozen(P, V) has the value of the surrogate
    O_i = Σ_j [W_ij P_ij V_j + (1 − W_ij) P0_ij V0_j] (stopgrad frozen at P0, V0) everywhere, so
    finite differences of it measure the surrogate's true Jacobian, while its analytic gradient is
    EdgeWeightedMatmul's backward alone."""

    @staticmethod
    def forward(ctx, p, v, w, p0, v0):
        return ((w - 1) * p) @ v - ((w - 1) * p0) @ v0

    @staticmethod
    def backward(ctx, d):
        return torch.zeros_like(d[..., :1].expand(*d.shape[:-1], d.shape[-2])), None, None, None, None


def test_gradcheck_unit_weights_is_the_true_gradient():
    p = probabilities(2, 2, 6).requires_grad_()
    v = torch.randn(2, 2, 6, 3, dtype=torch.float64, requires_grad=True)
    w = torch.ones(6, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p, v: EdgeWeightedMatmul.apply(p, v, w), (p, v))


def test_gradcheck_against_the_surrogate():
    T = 7
    p0 = probabilities(2, 2, T)
    v0 = torch.randn(2, 2, T, 3, dtype=torch.float64)
    w = band_weights(T, [1, 3], [0.5, 2.0, 3.0])
    p = p0.clone().requires_grad_()
    v = v0.clone().requires_grad_()

    def surrogate(p, v):
        return EdgeWeightedMatmul.apply(p, v, w) + _Frozen.apply(p, v, w, p0, v0)

    assert torch.autograd.gradcheck(surrogate, (p, v), eps=1e-6, atol=1e-7)


def test_backward_is_the_surrogate_gradient_and_forward_is_unchanged():
    T = 9
    p = probabilities(3, 2, T).requires_grad_()
    v = torch.randn(3, 2, T, 4, dtype=torch.float64, requires_grad=True)
    w = band_weights(T, [2, 5], [0.3, 1.7, 4.0])
    out = EdgeWeightedMatmul.apply(p, v, w)
    assert torch.equal(out, p.detach() @ v.detach())
    d = torch.randn_like(out)
    gp, gv = torch.autograd.grad(out, (p, v), d)
    # The surrogate written with autograd: O = (W⊙P)V + stopgrad(((1 − W)⊙P)V).
    p2, v2 = p.detach().clone().requires_grad_(), v.detach().clone().requires_grad_()
    sur = (w * p2) @ v2 + (((1 - w) * p2) @ v2).detach()
    torch.testing.assert_close(sur, out, rtol=0, atol=1e-12)
    ep, ev = torch.autograd.grad(sur, (p2, v2), d)
    torch.testing.assert_close(gp, ep, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gv, ev, rtol=1e-12, atol=1e-12)
    # METHOD.md's form: dP' = W ⊙ dO Vᵀ, dV' = (W ⊙ P)ᵀ dO.
    torch.testing.assert_close(gp, w * (d @ v.detach().transpose(-2, -1)), rtol=1e-12, atol=1e-12)


def test_module_backward_through_softmax_matches_the_surrogate():
    """The whole attention (q, k, v → O) with band weights, in float64, against the surrogate."""
    torch.manual_seed(0)
    T, C, H = 12, 8, 2
    att = BandedCausalSelfAttention(C, H, T).double()
    plain = PlainCausalSelfAttention(C, H, T).double()
    plain.load_state_dict(att.state_dict())
    weights = [0.5, 2.0, 3.0]

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = att

    r = Refiner(Model(), weights={"context": weights}, context_bands=(2, 6), measure=False)
    x = torch.randn(2, T, C, dtype=torch.float64)
    out = att(x)
    d = torch.randn_like(out)
    grads = torch.autograd.grad(out, list(att.parameters()), d)
    # Reference: the plain module's math with O = (W⊙P)V + stopgrad(((1 − W)⊙P)V).
    W = band_weights(T, [2, 6], weights)
    q, k, v = plain.c_attn(x).split(C, dim=2)
    q, k, v = (t.view(2, T, H, C // H).transpose(1, 2) for t in (q, k, v))
    s = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)
    P = torch.softmax(s.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf")), -1)
    y = (W * P) @ v + (((1 - W) * P) @ v).detach()
    ref = plain.c_proj(y.transpose(1, 2).reshape(2, T, C))
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    expected = torch.autograd.grad(ref, list(plain.parameters()), d)
    for a, b in zip(grads, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert r.weights("context") == [weights]


def test_unit_weights_and_measuring_are_the_plain_path_bit_for_bit():
    torch.manual_seed(1)
    model = GPT(block_size=16, n_layer=2, n_head=2, n_embd=16)
    plain = GPT(block_size=16, n_layer=2, n_head=2, n_embd=16, attention="plain")
    plain.load_state_dict(model.state_dict())
    Refiner(model, axes="context", weights={"context": [[1.0, 1.0], [1.0, 1.0]]})
    x = torch.randint(0, 256, (3, 16))
    la, lb = model(x, x)[1], plain(x, x)[1]
    la.backward(); lb.backward()
    assert torch.equal(la, lb)
    for a, b in zip(model.parameters(), plain.parameters()):
        assert torch.equal(a.grad, b.grad)


def naive_statistics(P, dP, bands):
    """Loops as in Sources/Kernels/Attention.swift: mass per head and band over batch and queries,
    energy Σ_heads Σ_(i,j)∈b (P·dP)²."""
    B, H, T, _ = P.shape
    mass = torch.zeros(H, bands.count, dtype=torch.float64)
    energy = torch.zeros(bands.count, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            for i in range(T):
                for j in range(i + 1):
                    k = bands.band_of_distance(i - j)
                    mass[h, k] += float(P[b, h, i, j])
                    energy[k] += float(P[b, h, i, j] * dP[b, h, i, j]) ** 2
    return mass / (B * T), energy


@pytest.mark.parametrize("weights", [None, [0.5, 1.0, 2.0]])
def test_mass_and_energy_are_the_kernels_definitions(weights):
    torch.manual_seed(2)
    T, C, H, B = 20, 8, 2, 3

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([BandedCausalSelfAttention(C, H, T, layer=0)])

        def forward(self, x):
            return self.blocks[0](x)

    model = Model()
    kw = {"weights": {"context": weights}} if weights else {"axes": "context"}
    r = Refiner(model, context_bands=(3, 9), **kw)
    captured = {}
    orig = r.context.attend

    def spy(layer, att, v, dropout, training):
        captured["P"] = att
        return orig(layer, att, v, dropout, training)

    r.context.attend = spy
    x = torch.randn(B, T, C)
    out = model(x)
    d = torch.randn_like(out)
    # dP (plain, before weighting) from the same forward: dO Vᵀ.
    out.backward(d)
    att = model.blocks[0]
    q, k, v = att.c_attn(x).split(C, dim=2)
    v = v.view(B, T, H, C // H).transpose(1, 2)
    # The gradient reaching O (per head) is dOut · W_projᵀ.
    dO = (d @ att.c_proj.weight).view(B, T, H, C // H).transpose(1, 2)
    dP = dO @ v.transpose(-2, -1)
    mass, energy = naive_statistics(captured["P"].detach(), dP.detach(), r.context_bands)
    opt = torch.optim.SGD(r.param_groups(), lr=0.0)
    r.before_optimizer(0)
    r.apply_depth(opt)
    rec = r.finish_step(0, 1.0)
    torch.testing.assert_close(torch.tensor(rec["attention_mass_by_head"][0], dtype=torch.float64), mass,
                               rtol=1e-5, atol=1e-7)
    assert rec["attention_mass"][0] == pytest.approx(mass.mean(0).tolist(), rel=1e-5)
    assert sum(rec["attention_mass"][0]) == pytest.approx(1.0, rel=1e-5)
    assert rec["context_energy"][0] == pytest.approx(energy.tolist(), rel=1e-4)
    assert rec["axes"]["context"]["energy"] == pytest.approx(energy.tolist(), rel=1e-4)
    # The next step starts from zero.
    assert r.context.energy.abs().sum() == 0 and r.context.queries == [0]


def test_no_statistics_in_eval_or_no_grad():
    model = GPT(block_size=16, n_layer=1, n_head=2, n_embd=16)
    r = Refiner(model)
    with torch.no_grad():
        model(torch.randint(0, 256, (2, 16)))
    model.eval()
    model(torch.randint(0, 256, (2, 16)))
    assert r.context.queries == [0]
