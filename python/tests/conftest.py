"""Shared helpers: the Swift `gradflow` binary (env GRADFLOW_BIN, else the repository's
.build/release/gradflow) and small models."""

import os
import subprocess

import pytest
import torch

# One thread: on a shared machine, torch's intra-op threads spin and a tiny step costs 20× more.
torch.set_num_threads(1)

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def gradflow_bin():
    path = os.environ.get("GRADFLOW_BIN") or os.path.join(REPO, ".build", "release", "gradflow")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


@pytest.fixture
def gf():
    """Runs the Swift `gradflow` with arguments; skips when the binary is absent."""
    path = gradflow_bin()
    if path is None:
        pytest.skip("no gradflow binary: set GRADFLOW_BIN or build it (swift build -c release)")

    def call(*args):
        return subprocess.run([path, *map(str, args)], capture_output=True, text=True, timeout=60)

    return call


class TinyLM(torch.nn.Module):
    """A two-layer byte model, fast enough for many steps in a test."""

    def __init__(self, vocab=256, dim=16, context=8):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, dim)
        self.out = torch.nn.Linear(dim * context, vocab)

    def forward(self, x):
        return self.out(self.emb(x).flatten(1))


def tiny_step(model, opt, run, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (4, 8), generator=g)
    y = torch.randint(0, 256, (4,), generator=g)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    run.clip_grad(1.0)
    opt.step()
    run.step(loss=loss, tokens=x.numel())
    return loss.item()


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    model = TinyLM()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return model, opt
