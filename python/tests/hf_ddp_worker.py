"""One process of the two-process Hugging Face Trainer job in test_hf.py (started by
``python -m torch.distributed.run --standalone --nproc_per_node 2``, gloo on the CPU):

    hf_ddp_worker.py RUNDIR RESULTS

A tiny GPT-2 from a config, GradflowCallback with the time axis on every rank; rank 0 sends an lr
scale after step 1 and a stop after step 3. Writes the rank's steps, lr scale and a checksum of
its parameters to RESULTS/rankN.json (a file each: the two processes' stdout lines can mix)."""

import gc
import json
import os
import sys
import weakref

import torch
import transformers

from gradflow import commands
from gradflow.hf import GradflowCallback
from gradflow.refine import Refiner


class SendAt(transformers.TrainerCallback):
    """Rank 0 sends a command at the end of a given step (before GradflowCallback reads the file)."""

    def __init__(self, rundir, step, command, **members):
        self.rundir, self.step, self.command, self.members = rundir, step, command, members

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step and state.is_world_process_zero:
            commands.send(self.rundir, self.command, **self.members)


def main():
    rundir, results = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=256, n_positions=16, n_embd=32, n_layer=1, n_head=2)
    model = transformers.GPT2LMHeadModel(config)
    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": ids, "labels": ids} for ids in torch.randint(0, 256, (32, 16), generator=g)]
    args = transformers.TrainingArguments(
        output_dir=rundir + "-out", max_steps=6, per_device_train_batch_size=2, learning_rate=1e-3,
        lr_scheduler_type="constant", logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, seed=3)
    callback = GradflowCallback(rundir, refine=Refiner(model, axes=("time",)), handle_signals=False)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data,
                                   callbacks=[SendAt(rundir, 1, "lr_scale", value=0.5), SendAt(rundir, 3, "stop"),
                                              callback])
    trainer.train()
    flat = torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])
    rank = int(os.environ["RANK"])
    with open(os.path.join(results, "rank%d.json" % rank), "w") as f:
        json.dump({"rank": rank, "steps": trainer.state.global_step, "lr_scale": callback.run.lr_scale,
                   "checksum": float(flat.sum())}, f)
    # The Trainer (and the DDP model in it) goes before the group: freed after it, it hung at exit
    # about one run in twenty (python/README.md, "Tearing down DDP with gloo"). Then both ranks tear
    # down together (gloo aborts a rank whose peer destroyed the group first).
    wrapped = weakref.ref(trainer.model_wrapped)
    del trainer, model, callback
    gc.collect()
    assert wrapped() is None, "the Trainer's DDP model outlived the Trainer"
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
