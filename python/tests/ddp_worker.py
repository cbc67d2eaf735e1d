"""One rank of the two-process DDP jobs in test_distributed.py (gloo, CPU):

    python ddp_worker.py SCENARIO RANK WORLD STOREFILE RUNDIR RESULT.json

The ranks meet through a file store (STOREFILE, fresh for each job): no port is chosen ahead, so
none can be taken by another process between the choice and the bind.

``steer``: trains a small banded GPT wrapped in DistributedDataParallel with a Refiner on every
axis and a gradflow.Run on every rank. Rank 0 sends commands into the run's channel before the
first step (a context weight, an lr scale and a pause; a timer sends resume a second later); rank 1
sends itself SIGTERM after its third step. Each rank writes its steps, a checksum of its
parameters and its last context statistics to RESULT.json.

``rank0-only``: only rank 0 makes a Run (the meeting times out after 2 s), then one with
``distributed=False``, which records alone; ``refiner-rank0-only``:
only rank 0 makes a Refiner with the context axis. ``bad-resume``: both
ranks ask to resume a run that does not exist. Each rank writes the RunError it got, or null.

``peer-killed``: both ranks train the ``steer`` model under a Run used as a context manager until
they are stopped; the test kills rank 1 with SIGKILL, and rank 0's next all-reduce fails.

``resume``: after a ``steer``-like first part (``start``: 3 steps, an lr scale, a default checkpoint
at the end) every rank resumes the run from that checkpoint (``resume``: both ranks load it from
the shared folder) and trains 2 more steps."""

import json
import os
import signal
import sys
import threading

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import gradflow
import gradflow.ranks
from gradflow import commands
from gradflow.refine import RefineError, Refiner
from gradflow.refine.gpt import GPT

T = 30


def main():
    scenario, rank, world, store, rundir, result = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4],
                                                    sys.argv[5], sys.argv[6])
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="file://" + store, rank=rank, world_size=world)
    if scenario == "steer":
        steer(rank, rundir, result)
    elif scenario in ("start", "resume"):
        resume_part(scenario, rank, rundir, result)
    elif scenario == "peer-killed":
        until_stopped(rundir)
    else:
        fail_to_start(scenario, rank, rundir, result)
    # Both ranks tear down together: without this barrier about one run in ten aborted a rank at exit
    # ("terminate called without an active exception") when its peer destroyed the group first.
    dist.barrier()
    dist.destroy_process_group()


def fail_to_start(scenario, rank, rundir, result):
    model = GPT(block_size=T, n_layer=1, n_head=2, n_embd=16, attention="plain")
    error = None
    if scenario == "rank0-only":
        gradflow.ranks.Ranks.MEET_TIMEOUT = 2.0
        if rank == 0:
            try:   # distributed=True, the default, said outright
                gradflow.Run(rundir, model=model, total_steps=5, handle_signals=False, distributed=True)
            except gradflow.RunError as e:
                error = str(e)
            # distributed=False: this rank records alone, without waiting for the others.
            with gradflow.Run(rundir + "-alone", model=model, total_steps=5, handle_signals=False,
                              checkpoint_at_end=False, distributed=False) as alone:
                alone.step(loss=1.0)
    elif scenario == "refiner-rank0-only":
        gradflow.ranks.Ranks.MEET_TIMEOUT = 2.0
        if rank == 0:
            try:
                Refiner(GPT(block_size=T, n_layer=1, n_head=2, n_embd=16), axes=("context",))
            except RefineError as e:
                error = str(e)
    else:
        try:
            gradflow.Run(rundir, model=model, total_steps=5, handle_signals=False, resume=True)
        except gradflow.RunError as e:
            error = str(e)
    with open(result, "w") as f:
        json.dump({"error": error}, f)


def replica(axes):
    """The same small banded GPT on every rank (seed 0), its refiner, DDP wrapper and AdamW."""
    torch.manual_seed(0)
    model = GPT(block_size=T, n_layer=2, n_head=2, n_embd=16, attention="banded")
    refiner = Refiner(model, axes=axes)
    return model, refiner, DistributedDataParallel(model), torch.optim.AdamW(
        refiner.param_groups(weight_decay=0.1), lr=3e-3)


def train_step(ddp, opt, run, g):
    """One step on this rank's own batch, the order a gradflow loop keeps."""
    x = torch.randint(0, 256, (3, T), generator=g)
    y = torch.randint(0, 256, (3, T), generator=g)
    opt.zero_grad(set_to_none=True)
    _, loss = ddp(x, y)
    loss.backward()
    run.clip_grad(1.0)
    opt.step()
    run.step(loss=loss, tokens=x.numel())


def parameters(model):
    """Checksum and norm of the parameters (equal on every rank when the replicas agree)."""
    flat = torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])
    return {"checksum": float(flat.sum()), "norm": float(flat.norm())}


def resume_part(scenario, rank, rundir, result):
    model, refiner, ddp, opt = replica(("time", "depth"))
    resume = scenario == "resume"
    run = gradflow.Run(rundir, model=model, optimizer=opt, refine=refiner, total_steps=5, resume=resume,
                       handle_signals=False)
    start = run.start_step
    if rank == 0 and not resume:
        commands.send(rundir, "lr_scale", value=0.5)
    g = torch.Generator().manual_seed(100 + rank + 10 * start)
    for _ in range(2 if resume else 3):
        train_step(ddp, opt, run, g)
    run.close()
    with open(result, "w") as f:
        json.dump({"start": start, "steps": run.steps_done, "lr_scale": run.lr_scale, **parameters(model),
                   "adam_steps": sorted({int(s["step"]) for s in opt.state.values()})}, f)


def until_stopped(rundir):
    model, refiner, ddp, opt = replica(("context", "time", "depth"))
    g = torch.Generator().manual_seed(100 + dist.get_rank())
    with gradflow.Run(rundir, model=model, optimizer=opt, refine=refiner, total_steps=1_000_000,
                      checkpoint_at_end=False, handle_signals=False) as run:
        while not run.should_stop:
            train_step(ddp, opt, run, g)


def steer(rank, rundir, result):
    model, refiner, ddp, opt = replica(("context", "time", "depth"))
    last = {}
    finish = refiner.finish_step

    def keep(step, loss):
        out = finish(step, loss)
        last.update(energy=out["context_energy"], mass=out["attention_mass"])
        return out

    refiner.finish_step = keep
    run = gradflow.Run(rundir, model=model, optimizer=opt, refine=refiner, total_steps=20,
                       checkpoint_at_end=False, handle_signals=True, pause_poll=0.05)
    if rank == 0:
        commands.send(rundir, "set_weight", axis="context", band=1, value=2.5)
        commands.send(rundir, "lr_scale", value=0.5)
        commands.send(rundir, "pause")
        threading.Timer(1.0, commands.send, (rundir, "resume")).start()
    g = torch.Generator().manual_seed(100 + rank)   # each rank its own batches
    step = 0
    while step < 20 and not run.should_stop:
        train_step(ddp, opt, run, g)
        step += 1
        if rank == 1 and step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
    run.close()
    with open(result, "w") as f:
        json.dump({"steps": run.steps_done, **parameters(model), "lr_scale": run.lr_scale,
                   "context_weights": refiner.weights("context"), "last": last}, f)


if __name__ == "__main__":
    main()
