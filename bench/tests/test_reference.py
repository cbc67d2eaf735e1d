"""Tests of bench/reference.py: shapes, parameter counts, schedule, data policy.

Needs torch and numpy (run with bench/.venv/bin/python); skipped under a Python without them."""
import math
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
try:
    import numpy as np
    import torch
    import reference as ref
except ImportError as e:  # plain python3 without bench/.venv
    raise unittest.SkipTest(f"needs torch and numpy (bench/setup.sh): {e}")


class ModelTests(unittest.TestCase):
    def test_parameter_counts_match_design(self):
        self.assertEqual(ref.count_params(ref.build("S", "plain", 0)), 842_496)
        self.assertEqual(ref.count_params(ref.build("M", "sdpa", 0)), 10_844_160)

    def test_output_embedding_is_tied(self):
        m = ref.build("S", "plain", 0)
        self.assertNotIn("lm_head.weight", dict(m.named_parameters()))
        logits = m(torch.zeros(1, 4, dtype=torch.long))
        self.assertEqual(tuple(logits.shape), (1, 4, 256))

    def test_initial_loss_is_near_uniform(self):
        m = ref.build("S", "plain", 0)
        w = torch.randint(0, 256, (4, 129), generator=torch.Generator().manual_seed(0))
        self.assertAlmostEqual(ref.loss_of(m, w).item(), math.log(256), delta=0.1)

    def test_plain_and_sdpa_attention_agree(self):
        a, b = ref.build("S", "plain", 3), ref.build("S", "sdpa", 3)
        w = torch.randint(0, 256, (2, 129), generator=torch.Generator().manual_seed(1))
        la, lb = ref.loss_of(a, w), ref.loss_of(b, w)
        la.backward()
        lb.backward()
        self.assertAlmostEqual(la.item(), lb.item(), places=5)
        for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
            torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-4, atol=1e-6, msg=name)

    def test_attention_is_causal(self):
        m = ref.build("S", "plain", 0)
        x = torch.randint(0, 256, (1, 16), generator=torch.Generator().manual_seed(2))
        y = x.clone()
        y[0, 10:] = (y[0, 10:] + 1) % 256
        torch.testing.assert_close(m(x)[0, :10], m(y)[0, :10])

    def test_residual_projections_are_scaled(self):
        m = ref.build("M", "plain", 0)
        std = m.blocks[0].mlp.proj.weight.std().item()
        self.assertAlmostEqual(std, 0.02 / math.sqrt(12), delta=0.0005)
        self.assertAlmostEqual(m.blocks[0].mlp.fc.weight.std().item(), 0.02, delta=0.0005)
        self.assertEqual(m.blocks[0].attn.qkv.bias.abs().max().item(), 0.0)

    def test_weight_decay_only_on_matrices_but_not_positions(self):
        m = ref.build("S", "plain", 0)
        opt = ref.make_adamw(m, 1e-3, "foreach")
        names = {id(p): n for n, p in m.named_parameters()}
        decayed = sorted(names[id(p)] for p in opt.param_groups[0]["params"])
        self.assertEqual(opt.param_groups[0]["weight_decay"], 0.1)
        self.assertEqual(opt.param_groups[1]["weight_decay"], 0.0)
        self.assertIn("wte.weight", decayed)
        self.assertNotIn("wpe.weight", decayed)
        self.assertEqual(len(decayed), 1 + 4 * 4)


class ScheduleTests(unittest.TestCase):
    def test_warmup_then_cosine_to_a_tenth(self):
        self.assertEqual(ref.warmup_steps(2000), 100)
        self.assertEqual(ref.warmup_steps(500), 50)
        self.assertAlmostEqual(ref.lr_at(0, 2000, 1e-3), 1e-5)
        self.assertAlmostEqual(ref.lr_at(99, 2000, 1e-3), 1e-3)
        self.assertAlmostEqual(ref.lr_at(100, 2000, 1e-3), 1e-3)
        self.assertAlmostEqual(ref.lr_at(1999, 2000, 1e-3), 1e-4)
        mid = 100 + (1999 - 100) / 2
        self.assertAlmostEqual(ref.lr_at(int(mid), 2000, 1e-3), 1e-3 * 0.55, delta=1e-6)


class DataTests(unittest.TestCase):
    def test_split_is_ninety_ten(self):
        train, val = ref.split_bytes(np.arange(1005, dtype=np.int64) % 256)
        self.assertEqual((len(train), len(val)), (904, 101))

    def test_eval_windows_stride_t(self):
        val = np.arange(100, dtype=np.int64)
        w = ref.eval_windows(val, 8, 64)
        self.assertEqual(w.shape, (12, 9))  # (100 − 1) // 8 windows fit
        self.assertEqual(list(w[1]), list(range(8, 17)))

    def test_random_windows_stay_in_training_split(self):
        train = np.arange(20, dtype=np.uint8)
        rng = np.random.Generator(np.random.PCG64(1))
        for _ in range(200):
            w = ref.random_windows(train, rng, 4, 8)
            self.assertEqual(w.shape, (4, 9))
            self.assertTrue(((w[:, 1:] - w[:, :-1]) == 1).all())
            self.assertLessEqual(int(w.max()), 19)


if __name__ == "__main__":
    unittest.main()
