"""examples/train_gpt.py trains preset S for 3 steps and writes a complete run file."""

import json
import os
import subprocess
import sys

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "train_gpt.py")


def test_example_runs_three_steps(tmp_path):
    out = str(tmp_path / "gpt")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, EXAMPLE, "--steps", "3", "--out", out, "--device", "cpu", "--threads", "1",
                        "--eval-windows", "2", "--sample-bytes", "4", "--axes", "all", "--adaptive", "depth"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    rs = [json.loads(l) for l in open(os.path.join(out, "run.jsonl"))]
    h = rs[0]
    assert h["preset"] == "S" and h["parameters"] == 842496 and h["total_steps"] == 3
    assert h["data"][0]["name"] == "train:shakespeare" and [a["axis"] for a in h["axes"]] == ["context", "time", "depth"]
    steps = [r for r in rs if r["type"] == "step"]
    assert [s["step"] for s in steps] == [0, 1, 2]
    assert list(steps[0]["axes"]) == ["context", "time", "depth"] and len(steps[0]["attention_mass"]) == 4
    assert steps[-1]["loss"] < steps[0]["loss"]
    evals = [r for r in rs if r["type"] == "eval"]
    assert len(evals) == 1 and evals[0]["domains"][0]["name"] == "val:shakespeare"
    assert [g["window"] for g in evals[0]["context_gain"]] == [8, 32, 64] and len(evals[0]["loss_by_position"]) == 32
    assert [r["type"] for r in rs[-2:]] == ["checkpoint", "end"] and rs[-1]["reason"] == "completed"
    assert os.path.exists(os.path.join(out, "ckpt-000003.pt"))


def test_example_resume_keeps_the_runs_settings(tmp_path):
    # --resume takes the run's settings for the flags not given and refuses one given with another
    # value (as the Swift trainer does); a refusal writes nothing.
    import argparse
    import importlib.util
    import pytest
    import gradflow
    spec = importlib.util.spec_from_file_location("train_gpt", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = str(tmp_path / "r")
    source = gradflow.data_source(example.DEFAULT_CORPUS, name="shakespeare", training=True)
    with gradflow.Run(out, total_steps=10, config={"lr": 1e-3, "batch": 4, "init_seed": 7, "channels": 64},
                      data=[source], handle_signals=False) as run:
        run.step(loss=1.0)
    before = open(os.path.join(out, "run.jsonl"), "rb").read()
    parser = argparse.ArgumentParser()
    args = argparse.Namespace(out=out, lr=3e-3, batch=8, seed=1, dim=128, data=example.DEFAULT_CORPUS, layers=4)
    example.take_run_settings(parser, args, ["--out", out, "--resume"])
    assert (args.lr, args.batch, args.seed, args.dim, args.layers) == (1e-3, 4, 7, 64, 4)
    args.lr = 0.01
    with pytest.raises(SystemExit):
        example.take_run_settings(parser, args, ["--out", out, "--resume", "--lr=0.01"])
    assert open(os.path.join(out, "run.jsonl"), "rb").read() == before


def test_example_on_two_processes_trains_as_one(tmp_path):
    # torchrun with two CPU processes (DDP over gloo): the global batch split over the ranks, so the
    # losses are the single process's up to float rounding; rank 0 alone writes the run.
    import pytest
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("this torch build has no gloo backend")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    options = ["--steps", "3", "--device", "cpu", "--threads", "1", "--eval-every", "3", "--eval-windows", "2",
               "--sample-bytes", "0", "--axes", "all"]
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    r = subprocess.run([sys.executable, EXAMPLE, "--out", one, *options], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        EXAMPLE, "--out", two, *options], capture_output=True, text=True, timeout=300, env=env)
    # On failure, the ranks' own error lines first: torchrun's summary at the end hides them.
    assert r.returncode == 0, "\n".join(l for l in r.stderr.splitlines()
                                        if any(w in l for w in ("Error", "error", "terminate", "what()"))) + \
        "\n---\n" + r.stdout[-3000:] + r.stderr[-6000:]
    a, b = ([json.loads(l) for l in open(os.path.join(d, "run.jsonl"))] for d in (one, two))
    assert "ranks" not in a[0] and b[0]["ranks"] == 2 and [r["type"] for r in b].count("header") == 1
    la, lb = ([r["loss"] for r in rs if r["type"] == "step"] for rs in (a, b))
    assert len(la) == len(lb) == 3 and all(abs(x - y) < 1e-4 for x, y in zip(la, lb)), (la, lb)
    ea, eb = ([r["domains"][0]["loss"] for r in rs if r["type"] == "eval"] for rs in (a, b))
    assert len(eb) == 1 and abs(ea[0] - eb[0]) < 1e-4
    assert b[-1]["type"] == "end" and b[-1]["reason"] == "completed"
