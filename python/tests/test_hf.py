"""GradflowCallback on a Hugging Face Trainer with a tiny GPT-2 built from a config (nothing is
downloaded): step, eval, checkpoint, event and end records, and the commands."""

import json
import os

import pytest
import torch

transformers = pytest.importorskip("transformers")

import gradflow
from gradflow import commands


def records(rundir):
    return [json.loads(l) for l in open(os.path.join(rundir, "run.jsonl"))]


class SendAt(transformers.TrainerCallback):
    """Sends a command at the end of a given step (before GradflowCallback reads the file)."""

    def __init__(self, rundir, step, command, **members):
        self.rundir, self.step, self.command, self.members = rundir, step, command, members

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            commands.send(self.rundir, self.command, **self.members)


def test_trainer_callback(tmp_path):
    from gradflow.hf import GradflowCallback
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=256, n_positions=16, n_embd=32, n_layer=1, n_head=2)
    model = transformers.GPT2LMHeadModel(config)
    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": ids, "labels": ids} for ids in torch.randint(0, 256, (16, 16), generator=g)]
    rundir = str(tmp_path / "hf-run")
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=2, learning_rate=1e-3,
        lr_scheduler_type="constant", logging_steps=1, eval_strategy="steps", eval_steps=1, save_strategy="no",
        report_to=[], use_cpu=True, disable_tqdm=True, seed=3, max_grad_norm=1.0)
    from gradflow.refine import Refiner
    refiner = Refiner(model, axes=("time",))  # the time axis acts in on_pre_optimizer_step, before clipping
    callback = GradflowCallback(rundir, refine=refiner, handle_signals=False)
    os.makedirs(rundir)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data, eval_dataset=data[:4],
                                   callbacks=[SendAt(rundir, 1, "lr_scale", value=0.5),
                                              SendAt(rundir, 1, "set_weight", axis="time", band=0, value=0.5),
                                              SendAt(rundir, 2, "checkpoint"),
                                              SendAt(rundir, 3, "stop"), callback])
    trainer.train()

    rs = records(rundir)
    assert rs[0]["type"] == "header" and rs[0]["total_steps"] == 4 and rs[0]["config"]["trainer"]["seed"] == 3
    steps = [r for r in rs if r["type"] == "step"]
    assert [s["step"] for s in steps] == [0, 1, 2]
    assert [s["lr"] for s in steps] == [1e-3, 5e-4, 5e-4]
    assert all(s["loss"] > 4 and s["tokens_per_s"] > 0 and s["grad_norm"] > 0 for s in steps)
    assert all(0 < s["clip_scale"] <= 1 for s in steps)
    evals = [r for r in rs if r["type"] == "eval"]
    assert [e["step"] for e in evals] == [1, 2, 3] and evals[0]["domains"][0]["name"] == "val"
    answers = [(r["kind"], r["step"]) for r in rs if r.get("source") == "attach"]
    assert answers == [("lr", 1), ("weight", 1), ("command", 2), ("stop", 3)]
    assert [s["axes"]["time"]["weight"][0] for s in steps] == [1, 0.5, 0.5]
    assert [a["axis"] for a in rs[0]["axes"]] == ["time", "depth"]
    checkpoints = [r for r in rs if r["type"] == "checkpoint"]
    assert len(checkpoints) == 1 and checkpoints[0]["path"].endswith("checkpoint-2") and checkpoints[0]["bytes"] > 0
    assert rs[-1]["type"] == "end" and rs[-1]["reason"] == "interrupted" and rs[-1]["step"] == 3
    assert args.max_grad_norm == 1.0  # the callback hands clipping back


def test_a_stop_saves_a_checkpoint_where_the_trainer_saves(tmp_path):
    # save_strategy "steps" every 100 steps: none would come before the stop at step 3 but the
    # stop's own, from which the run can be resumed; with save_strategy "no" a stop saves nothing.
    for strategy, expected in (("steps", ["checkpoint-3"]), ("no", [])):
        rundir = str(tmp_path / strategy / "hf-run")
        os.makedirs(rundir)
        trainer, args = _tiny_trainer(tmp_path / strategy, rundir, [SendAt(rundir, 3, "stop")], max_steps=6,
                                      save_strategy=strategy)
        trainer.train()
        rs = records(rundir)
        saved = sorted(os.listdir(args.output_dir)) if os.path.isdir(args.output_dir) else []
        assert saved == expected, (strategy, saved)
        assert [os.path.basename(r["path"]) for r in rs if r["type"] == "checkpoint"] == expected
        assert rs[-1]["type"] == "end" and rs[-1]["reason"] == "interrupted" and rs[-1]["step"] == 3
        if expected:
            assert os.path.exists(os.path.join(args.output_dir, "checkpoint-3", "gradflow_state.pt"))


def test_trainer_callback_on_two_processes(tmp_path):
    # torchrun with two CPU processes (gloo): the callback runs in both, rank 0 alone writes the
    # folder, and both apply the lr scale and stop at the same step (hf_ddp_worker.py).
    import subprocess
    import sys
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("this torch build has no gloo backend")
    rundir = str(tmp_path / "run")
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_ddp_worker.py")
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          worker, rundir, str(tmp_path)], env=dict(os.environ, OMP_NUM_THREADS="1"),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    results = [json.load(open(tmp_path / ("rank%d.json" % rank))) for rank in (0, 1)]
    assert [r["steps"] for r in results] == [3, 3] and [r["lr_scale"] for r in results] == [0.5, 0.5]
    assert results[0]["checksum"] == results[1]["checksum"]
    rs = records(rundir)
    assert [r["type"] for r in rs].count("header") == 1 and rs[-1]["type"] == "end"
    assert [r["step"] for r in rs if r["type"] == "step"] == [0, 1, 2]
    assert [(r["kind"], r["step"]) for r in rs if r.get("source") == "attach"] == [("lr", 1), ("stop", 3)]
    assert sorted(os.listdir(rundir)) == ["commands.jsonl", "run.jsonl"]


def _tiny_trainer(tmp_path, rundir, extra_callbacks, *, max_steps, resume_step=None, seed=0, save_strategy="no"):
    from gradflow.hf import GradflowCallback
    from gradflow.refine import Refiner
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=256, n_positions=16, n_embd=32, n_layer=1, n_head=2)
    model = transformers.GPT2LMHeadModel(config)
    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": ids, "labels": ids} for ids in torch.randint(0, 256, (16, 16), generator=g)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=max_steps, per_device_train_batch_size=2, learning_rate=1e-3,
        lr_scheduler_type="constant", logging_steps=1, save_strategy=save_strategy, save_steps=100, report_to=[], use_cpu=True,
        disable_tqdm=True, seed=3, max_grad_norm=1.0)
    callback = GradflowCallback(rundir, refine=Refiner(model, axes=("time",)), handle_signals=False)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=[*extra_callbacks, callback])
    return trainer, args


def test_a_resumed_trainer_goes_on_with_the_runs_lr_scale_weights_and_commands(tmp_path):
    rundir = str(tmp_path / "hf-run")
    os.makedirs(rundir)
    trainer, _ = _tiny_trainer(tmp_path, rundir, [SendAt(rundir, 1, "lr_scale", value=0.5),
                                                  SendAt(rundir, 1, "set_weight", axis="time", band=0, value=0.5),
                                                  SendAt(rundir, 2, "checkpoint"), SendAt(rundir, 3, "stop")],
                               max_steps=6)
    trainer.train()
    assert os.path.exists(str(tmp_path / "out" / "checkpoint-2" / "gradflow_state.pt"))
    trainer, _ = _tiny_trainer(tmp_path, rundir, [], max_steps=6)
    trainer.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-2"))
    rs = records(rundir)
    resumed = [i for i, r in enumerate(rs) if r.get("kind") == "resume-run"]
    assert len(resumed) == 1 and not any(r.get("kind") == "warning" for r in rs[resumed[0]:])
    after = [r for r in rs[resumed[0]:] if r["type"] == "step"]
    assert [s["step"] for s in after] == [2, 3, 4, 5]
    assert all(s["lr"] == 5e-4 and s["axes"]["time"]["weight"][0] == 0.5 for s in after)
    # The stop answered before the checkpoint's step was not; it is not applied again, nor is anything else.
    assert [r["kind"] for r in rs[resumed[0]:] if r.get("source") == "attach"] == []
    assert rs[-1]["type"] == "end" and rs[-1]["reason"] == "completed"


def test_a_train_call_that_raised_leaves_no_open_run_and_no_clipping_taken(tmp_path):
    class Boom(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise RuntimeError("boom")

    rundir = str(tmp_path / "hf-run")
    trainer, args = _tiny_trainer(tmp_path, rundir, [Boom()], max_steps=4)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.train()
    assert args.max_grad_norm == 0  # the callback clips itself while a run is open
    # Calling train() again (a notebook's retry) ends the first session as failed, gives the
    # clipping back, and refuses to write a second run into the same file.
    with pytest.raises(gradflow.RunError, match="already exists"):
        trainer.train()
    assert args.max_grad_norm == 1.0
    rs = records(rundir)
    assert [r["step"] for r in rs if r["type"] == "step"] == [0]  # Boom raised before step 1 was recorded
    assert rs[-1]["type"] == "end" and rs[-1]["reason"] == "failed" and "without on_train_end" in rs[-1]["message"]


def test_a_model_whose_output_has_no_loss_is_recorded_from_the_logs(tmp_path):
    # A Trainer whose compute_loss works the loss out itself: the model's output carries none, so
    # the step records come from on_log, at the logged steps (here every second step).
    from gradflow.hf import GradflowCallback

    class OwnLoss(transformers.Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            ids = inputs["input_ids"]
            logits = model(input_ids=ids).logits
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))
            return (loss, logits) if return_outputs else loss

    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=256, n_positions=16, n_embd=32, n_layer=1, n_head=2)
    model = transformers.GPT2LMHeadModel(config)
    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": ids} for ids in torch.randint(0, 256, (16, 16), generator=g)]
    rundir = str(tmp_path / "hf-run")
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=6, per_device_train_batch_size=2, learning_rate=1e-3,
        lr_scheduler_type="constant", logging_steps=2, save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, seed=3)
    os.makedirs(rundir)
    OwnLoss(model=model, args=args, train_dataset=data,
            callbacks=[SendAt(rundir, 2, "lr_scale", value=0.5), GradflowCallback(rundir, handle_signals=False)]).train()
    rs = records(rundir)
    steps = [r for r in rs if r["type"] == "step"]
    assert [r["step"] for r in steps] == [1, 3, 5]
    assert all(r["loss"] > 4 for r in steps)
    # The rate the optimizer used (the lr scale applied from step 2 on), not the scheduler's.
    assert [r["lr"] for r in steps] == [1e-3, 5e-4, 5e-4]
    assert rs[-1]["type"] == "end" and rs[-1]["reason"] == "completed" and rs[-1]["step"] == 6
