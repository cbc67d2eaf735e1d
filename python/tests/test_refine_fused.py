"""The fused kernels (gradflow/refine/_fused.c) against the torch operations that define the
statistics: the same records up to float rounding, the same training where the weights are 1, and
the torch path wherever a kernel does not apply."""

import os

import pytest
import torch

from gradflow.refine import Refiner, fused
from gradflow.refine.core import ContextBands
from gradflow.refine.gpt import GPT

torch.set_num_threads(1)

T = 30   # not a multiple of the kernels' vector width

needs_kernels = pytest.mark.skipif(fused.kernels is None, reason="the C module gradflow.refine._fused was not built")


def test_the_kernels_were_built_where_required():
    # scripts/test-python.sh sets this: CI must not pass by silently testing the torch path only.
    if os.environ.get("GRADFLOW_REQUIRE_FUSED") == "1":
        assert fused.kernels is not None, "pip install ./python did not build gradflow.refine._fused"


def batches(n, B=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(0, 256, (B, T), generator=g), torch.randint(0, 256, (B, T), generator=g))
            for _ in range(n)]


def run(use_fused, data, dtype=torch.float32, after_before_optimizer=None, **options):
    """Trains a small GPT with every axis and statistic on; returns the records and parameters.
    ``after_before_optimizer(model)``, if given, runs between ``before_optimizer`` and the step."""
    saved = fused.enabled
    fused.enabled = use_fused
    try:
        torch.manual_seed(0)
        model = GPT(block_size=T, n_layer=3, n_head=2, n_embd=24, attention="banded").to(dtype)
        options.setdefault("context_bands", (3, 12))
        refiner = Refiner(model, axes=("context", "time", "depth"), **options)
        opt = torch.optim.AdamW(refiner.param_groups(weight_decay=0.1), lr=3e-3, betas=(0.9, 0.95))
        records = []
        for step, (x, y) in enumerate(data):
            _, loss = model(x, y)
            loss.backward()
            refiner.before_optimizer(step)
            if after_before_optimizer is not None:
                after_before_optimizer(model)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            refiner.apply_depth(opt)
            opt.step()
            records.append(refiner.finish_step(step, loss.item()))
            opt.zero_grad(set_to_none=True)
        return records, [p.detach().clone() for p in model.parameters()]
    finally:
        fused.enabled = saved


def numbers(record):
    """Every number of a finish_step record, flattened in a fixed order."""
    out = []

    def walk(x):
        if isinstance(x, dict):
            for k in sorted(x):
                walk(x[k])
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            out.append(float(x))
    walk(record)
    return out


@needs_kernels
def test_unit_weights_train_identically_and_measure_the_same():
    data = batches(5)
    a, pa = run(True, data)
    b, pb = run(False, data)
    for x, y in zip(pa, pb):
        assert torch.equal(x, y)
    for ra, rb in zip(a, b):
        na, nb = numbers(ra), numbers(rb)
        assert len(na) == len(nb)
        assert na == pytest.approx(nb, rel=1e-4, abs=1e-7)


@needs_kernels
def test_non_unit_weights_measure_the_same_up_to_rounding():
    data = batches(5)
    weights = {"context": [1.0, 0.5, 1.5], "time": [0.8, 1.0, 1.3], "depth": [1.2, 0.9]}
    a, pa = run(True, data, depth_groups=2, weights=weights)
    b, pb = run(False, data, depth_groups=2, weights=weights)
    for x, y in zip(pa, pb):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)   # AdamW amplifies rounding near g = 0
    # The trajectories differ by rounding (the EMAs' lerp), so a few near-zero update entries can
    # flip sign on one path only: the flip rates agree to a few parts in a thousand.
    for ra, rb in zip(a, b):
        assert numbers(ra) == pytest.approx(numbers(rb), rel=5e-3, abs=1e-6)


@needs_kernels
def test_a_gradient_the_kernel_cannot_read_after_the_snapshot_takes_the_torch_measure():
    # The depth snapshot (before the step) ran fused; then a .grad became non-contiguous, so the
    # depth meter measures on the torch path with the snapshot's ‖θ‖²: the records must still agree
    # with an all-torch run to rounding.
    def transpose_a_gradient(model):
        p = next(q for q in model.parameters() if q.dim() == 2 and q.size(0) != q.size(1))
        p.grad = p.grad.t().contiguous().t()
        assert not p.grad.is_contiguous()
    data = batches(4)
    a, _ = run(True, data, depth_groups=2, after_before_optimizer=transpose_a_gradient)
    b, _ = run(False, data, depth_groups=2, after_before_optimizer=transpose_a_gradient)
    assert a[-1]["axes"]["depth"]["energy"][0] > 0
    for ra, rb in zip(a, b):
        assert numbers(ra) == pytest.approx(numbers(rb), rel=1e-4, abs=1e-7)


def test_float64_models_use_the_torch_path_and_still_measure():
    # The kernels take float32 only: a float64 model must take the torch path, not fail.
    data = batches(3)
    records, _ = run(True, data, dtype=torch.float64)
    assert all(r["axes"]["context"]["energy"][0] > 0 for r in records)


def test_more_bands_than_the_kernel_takes_use_the_torch_path():
    # 17 context bands (edges 1…16): beyond fused.MAX_BANDS, the attention statistics must come
    # from the torch operations, the same on both settings of the switch, not from an error in the
    # hook (the time and depth statistics still take their kernels: equal up to rounding only).
    data = batches(2)
    many = {"context_bands": tuple(range(1, 17))}
    with_kernels, _ = run(True, data, **many)
    without, _ = run(False, data, **many)
    assert len(with_kernels[-1]["axes"]["context"]["energy"]) == 17
    assert [r["axes"]["context"] for r in with_kernels] == [r["axes"]["context"] for r in without]
    for key in ("context_energy", "attention_mass", "attention_mass_by_head"):
        assert [r[key] for r in with_kernels] == [r[key] for r in without], key


@needs_kernels
def test_attention_sums_match_a_direct_sum_in_float64():
    B, H = 2, 3
    g = torch.Generator().manual_seed(3)
    p = torch.softmax(torch.randn(B, H, T, T, generator=g).masked_fill(
        ~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf")), -1)
    d = torch.randn(B, H, T, T, generator=g)
    bands = ContextBands([3, 12], T)
    lows = [bands.distance_range(k)[0] for k in range(3)]
    highs = [bands.distance_range(k)[1] for k in range(3)]
    i = torch.arange(T)
    dist = i.view(T, 1) - i.view(1, T)
    masks = [(dist >= lo) & (dist <= hi) for lo, hi in zip(lows, highs)]
    for out_dtype in (torch.float64, torch.float32):
        mass = torch.full((H, 3), 0.5, dtype=out_dtype)     # the kernel adds to what is there
        fused.kernels.attention_sums(p.data_ptr(), 0, B * H, T, H, lows, highs, mass.data_ptr(), 0,
                                     out_dtype == torch.float64)
        expected = torch.stack([(p.double() * m).sum(dim=(0, 2, 3)) for m in masks], dim=1) + 0.5
        torch.testing.assert_close(mass.double(), expected, rtol=1e-6, atol=1e-6)
    x = (p.double() * d.double()) ** 2
    expected_energy = torch.stack([(x * m).sum() for m in masks])
    energy = torch.zeros(3, dtype=torch.float64)
    fused.kernels.attention_sums(p.data_ptr(), d.data_ptr(), B * H, T, H, lows, highs, 0, energy.data_ptr(), True)
    torch.testing.assert_close(energy, expected_energy, rtol=1e-6, atol=0)
    # Both in one pass: the same sums.
    mass2, energy2 = torch.zeros(H, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    fused.kernels.attention_sums(p.data_ptr(), d.data_ptr(), B * H, T, H, lows, highs, mass2.data_ptr(),
                                 energy2.data_ptr(), True)
    torch.testing.assert_close(mass2, expected - 0.5, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(energy2, expected_energy, rtol=1e-6, atol=0)


@needs_kernels
def test_depth_kernels_treat_a_missing_gradient_as_zeros():
    params = [torch.randn(5, 3), torch.randn(7)]
    grads = [torch.randn(5, 3), None]
    counts = [15, 7]
    rows = torch.randn(4, 22)
    theta_before = torch.cat([q.view(-1) for q in params])
    param_sq = fused.kernels.depth_snapshot([q.data_ptr() for q in params], counts, [0, 0], 1, rows[2].data_ptr())
    assert param_sq[0] == pytest.approx(theta_before.double().square().sum().item(), rel=1e-6)
    assert torch.equal(rows[2], theta_before)
    for q in params:
        q.sub_(0.01)
    g_prev, u_prev = rows[1].clone(), rows[3].clone()
    gg, gdot, uu, udot, flips = fused.kernels.depth_measure(
        [grads[0].data_ptr(), 0], [q.data_ptr() for q in params], counts, [0, 0], 1,
        rows[0].data_ptr(), rows[1].data_ptr(), rows[2].data_ptr(), rows[3].data_ptr())
    g = torch.cat([grads[0].view(-1), torch.zeros(7)])
    u = theta_before - torch.cat([q.view(-1) for q in params])
    assert torch.equal(rows[0], g)
    assert torch.equal(rows[2], u)
    assert gg == pytest.approx(g.double().square().sum().item(), rel=1e-6)
    assert gdot == pytest.approx((g.double() * g_prev.double()).sum().item(), rel=1e-5)
    assert uu == pytest.approx(u.double().square().sum().item(), rel=1e-5)
    assert udot == pytest.approx((u.double() * u_prev.double()).sum().item(), rel=1e-5)
    assert flips == float(((u * u_prev) < 0).sum().item())


@needs_kernels
def test_every_kernel_gives_the_same_bits_at_every_thread_count():
    # The work is split over torch's threads (blocks of tensors, ranges of query rows) and the
    # partial sums added in one fixed order: 1, 2 and 3 threads must agree bit for bit, in the sums
    # and in every row the kernels write.
    g = torch.Generator().manual_seed(5)
    sizes = [3000, 17, 4096, 1500]                     # several blocks of 1,024, and partial ones
    counts, groups = sizes, [0, 1, 1, 2]
    params = [torch.randn(n, generator=g) for n in sizes]
    grads = [torch.randn(n, generator=g) for n in sizes]
    n = sum(sizes)
    base_rows = torch.randn(5, n, generator=g)
    B, H, TT = 2, 3, 40                                 # 40 query rows: uneven ranges at 3 threads
    p = torch.rand(B, H, TT, TT, generator=g)
    d = torch.randn(B, H, TT, TT, generator=g)
    lows, highs = [0, 4, 16], [3, 15, TT - 1]
    results = []
    for threads in (1, 2, 3):
        rows = base_rows.clone()
        time_sums = fused.kernels.time_filter([t.data_ptr() for t in grads], counts, rows[0].data_ptr(),
                                              rows[1].data_ptr(), rows[4].data_ptr(), 0.1, 0.01, threads)
        snap = fused.kernels.depth_snapshot([q.data_ptr() for q in params], counts, groups, 3,
                                            rows[2].data_ptr(), threads)
        measure = fused.kernels.depth_measure([t.data_ptr() for t in grads], [q.data_ptr() for q in params],
                                              counts, groups, 3, rows[3].data_ptr(), rows[4].data_ptr(),
                                              rows[2].data_ptr(), rows[0].data_ptr(), threads)
        mass, energy = torch.zeros(H, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
        fused.kernels.attention_sums(p.data_ptr(), d.data_ptr(), B * H, TT, H, lows, highs, mass.data_ptr(),
                                     energy.data_ptr(), True, threads)
        results.append((time_sums, snap, measure, rows, mass, energy))
    first = results[0]
    assert all(v > 0 for v in first[0]) and all(v > 0 for v in first[1]) and first[5].min() > 0
    for other in results[1:]:
        assert other[:3] == first[:3]
        for a, b in zip(other[3:], first[3:]):
            assert torch.equal(a, b)


@needs_kernels
def test_kernels_refuse_bad_arguments_with_an_error():
    with pytest.raises(ValueError):
        fused.kernels.depth_snapshot([0], [1, 2], [0], 1, 0)          # counts of another length
    with pytest.raises(ValueError):
        fused.kernels.depth_measure([0], [0], [1], [5], 1, 0, 0, 0, 0)  # a group out of range
    with pytest.raises(ValueError):
        fused.kernels.attention_sums(0, 0, 3, 4, 2, [0], [3], 0, 0, True)  # rows not a multiple of heads
    with pytest.raises(ValueError):
        fused.kernels.attention_sums(0, 0, 4, 4, 2, [0], [3], 0, 8, True)  # an energy without d
