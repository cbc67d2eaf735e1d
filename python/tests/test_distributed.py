"""gradflow.Run under torch.distributed (gradflow/ranks.py): two processes with gloo on the CPU,
DDP, a Refiner and a Run on each rank (python/tests/ddp_worker.py). Rank 0 alone writes the run
folder; both ranks apply the same commands at the same step (their parameters stay identical), a
pause holds both, a signal to one rank stops both at the same step, and the context statistics
are summed over the ranks. A Run made on rank 0 alone, or a rank that cannot start, is an error on
every rank, not a hang. A rank killed mid-run ends the job: the other rank fails within seconds and
the run file ends with the failure."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="this torch build has no gloo backend")


def job(tmp_path, scenario, results="rank"):
    """Runs ddp_worker.py SCENARIO on two ranks; returns the run folder and both ranks' results."""
    rundir, store = str(tmp_path / "run"), str(tmp_path / ("%s-store" % results))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "ddp_worker.py"), scenario, str(rank), "2", store,
                               rundir, str(tmp_path / ("%s%d.json" % (results, rank)))], env=env,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outputs = []
    for p in procs:
        try:
            outputs.append(p.communicate(timeout=240)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("the two-rank job did not finish in 240 s")
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out
    return rundir, [json.load(open(tmp_path / ("%s%d.json" % (results, rank)))) for rank in (0, 1)]


def test_two_ranks_apply_the_same_commands_and_stop_together(tmp_path):
    rundir, (r0, r1) = job(tmp_path, "steer")

    # Rank 1's SIGTERM after its third step stops both ranks at the next boundary.
    assert r0["steps"] == r1["steps"] == 4
    # Both applied the weight and the lr scale: the replicas' parameters are the same.
    assert r0["lr_scale"] == r1["lr_scale"] == 0.5
    assert r0["context_weights"] == r1["context_weights"]
    assert r0["checksum"] == r1["checksum"] and r0["norm"] == r1["norm"]
    # The context statistics are the whole batch's, the same on both ranks: each layer's mass is a
    # share of the summed queries (it would add up to 2, the rank count, with local counts).
    assert r0["last"] == r1["last"] and r0["last"]["energy"]
    assert all(abs(sum(layer) - 1) < 1e-6 for layer in r0["last"]["mass"])

    # One writer: a single header, one record per step, every command answered once.
    lines = [json.loads(l) for l in open(os.path.join(rundir, "run.jsonl"))]
    types = [r["type"] for r in lines]
    assert types.count("header") == 1 and types[-1] == "end" and lines[-1]["reason"] == "interrupted"
    assert [r["step"] for r in lines if r["type"] == "step"] == [0, 1, 2, 3]
    events = [r for r in lines if r["type"] == "event"]
    attach = [e["kind"] for e in events if e.get("source") == "attach"]
    assert sorted(attach) == ["lr", "pause", "resume", "weight"]
    weight = next(e for e in events if e["kind"] == "weight")
    assert weight["step"] == 1 and weight["new"] == 2.5
    assert [s["axes"]["context"]["weight"][1] for s in lines if s["type"] == "step"][1:] != [1.0] * 3
    stops = [e for e in events if e["kind"] == "stop"]
    assert len(stops) == 1 and stops[0]["message"].startswith("rank 1 (SIGTERM)") and stops[0]["source"] == "signal"
    assert sorted(os.listdir(rundir)) == ["commands.jsonl", "run.jsonl"]


def test_a_run_on_rank_0_alone_is_an_error_not_a_hang(tmp_path):
    rundir, (r0, r1) = job(tmp_path, "rank0-only")
    assert "only 1 of the 2 ranks made a gradflow.Run" in r0["error"] and r1["error"] is None
    # With distributed=False rank 0 records alone, without waiting for rank 1: a header, its step, the end.
    alone = [json.loads(l) for l in open(rundir + "-alone/run.jsonl")]
    assert [r["type"] for r in alone if r["type"] != "system"] == ["header", "step", "end"]


def test_a_refiner_on_rank_0_alone_is_an_error_not_a_hang(tmp_path):
    # Its context statistics are summed over the ranks each step: without the meeting, rank 0's first
    # finish_step would wait forever in that all-reduce.
    _, (r0, r1) = job(tmp_path, "refiner-rank0-only")
    assert "rank 0: only 1 of the 2 ranks made a Refiner" in r0["error"] and r1["error"] is None


def test_a_rank_that_cannot_start_stops_every_rank(tmp_path):
    # Rank 0 finds no run file, rank 1 no checkpoint: both raise the same error naming both.
    _, (r0, r1) = job(tmp_path, "bad-resume")
    assert r0["error"] == r1["error"]
    assert "rank 0: " in r0["error"] and "no run to resume" in r0["error"]
    assert "rank 1: " in r0["error"] and "found no ckpt-*.pt" in r0["error"]


def test_every_rank_resumes_from_the_checkpoint(tmp_path):
    # Rank 0 writes the checkpoint at the end of the first part; in the second, both ranks load it
    # from the shared folder and go on from step 3 with the lr scale the checkpoint holds.
    rundir, first = job(tmp_path, "start", results="first")
    assert [r["steps"] for r in first] == [3, 3] and [r["lr_scale"] for r in first] == [0.5, 0.5]
    _, second = job(tmp_path, "resume", results="second")
    assert [r["start"] for r in second] == [3, 3] and [r["steps"] for r in second] == [5, 5]
    assert [r["lr_scale"] for r in second] == [0.5, 0.5] and second[0]["adam_steps"] == second[1]["adam_steps"] == [5]
    assert second[0]["checksum"] == second[1]["checksum"]
    lines = [json.loads(l) for l in open(os.path.join(rundir, "run.jsonl"))]
    assert [r["type"] for r in lines].count("header") == 1
    assert [r["step"] for r in lines if r["type"] == "step"] == [0, 1, 2, 3, 4]
    assert [e["kind"] for e in lines if e["type"] == "event" and e.get("source") == "attach"] == ["lr"]
    assert sorted(n for n in os.listdir(rundir) if n.endswith(".pt")) == ["ckpt-000003.pt", "ckpt-000005.pt"]


def test_a_rank_killed_mid_run_fails_the_job_and_the_run_file_says_so(tmp_path):
    rundir, store = str(tmp_path / "run"), str(tmp_path / "store")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "ddp_worker.py"), "peer-killed", str(rank), "2",
                               store, rundir, str(tmp_path / "unused.json")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    runfile = os.path.join(rundir, "run.jsonl")
    try:
        deadline = time.monotonic() + 120
        while True:   # until rank 0 has written three steps
            steps = 0
            if os.path.exists(runfile):
                with open(runfile) as f:
                    steps = sum('"type":"step"' in line for line in f)
            if steps >= 3:
                break
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), \
                "the job did not reach step 3: " + "".join(p.communicate()[0] for p in procs if p.poll() is not None)
            time.sleep(0.05)
        procs[1].kill()
        killed = time.monotonic()
        out = procs[0].communicate(timeout=60)[0]
        waited = time.monotonic() - killed
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
    # Rank 0's next all-reduce fails (gloo sees the closed connection); the Run records why.
    assert procs[0].returncode == 1, out
    assert waited < 30, "rank 0 took %.1f s to fail" % waited
    with open(runfile) as f:
        records = [json.loads(line) for line in f]   # every line whole
    end = records[-1]
    assert end["type"] == "end" and end["reason"] == "failed" and end["message"].startswith("RuntimeError"), end
    assert sum(r["type"] == "end" for r in records) == 1
    assert end["step"] >= 3
