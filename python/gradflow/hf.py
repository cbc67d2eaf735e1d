"""``GradflowCallback``: records a Hugging Face ``Trainer`` run in Gradflow's run format and lets
``RUNDIR/commands.jsonl`` steer it. The only module of the package that imports transformers.

    from gradflow.hf import GradflowCallback
    trainer = Trainer(model=model, args=args, train_dataset=..., eval_dataset=...,
                      callbacks=[GradflowCallback("runs/hf-a")])
    trainer.train()

What it writes: the header at ``on_train_begin`` (``total_steps`` = ``state.max_steps``, the
``TrainingArguments`` as ``config``), one step record per optimizer step at ``on_step_end`` (the
loss is the mean over the step's micro-batches, read from the model's output by a forward hook;
a model whose output has no ``loss`` gets step records from ``on_log`` instead, at the logged
steps), an eval record per ``on_evaluate`` (``eval_loss`` as domain ``val``, ``eval_NAME_loss`` as
``NAME``), a checkpoint record per save (and ``gradflow_state.pt`` in the checkpoint folder: the
lr scale, the refiner's state and the commands answered, which a resume from that folder takes
back), and the end record at ``on_train_end``.

Commands, read at each step end: ``stop`` → ``control.should_training_stop``, and a save at that
step where the Trainer saves checkpoints at all (``save_strategy`` not ``"no"``), so that the run
can be resumed from where it stopped, as a stopped Swift run can (a signal stops it the same way);
``checkpoint`` →
``control.should_save`` (its record follows at ``on_save``); ``lr_scale`` scales the rate the
scheduler sets, through the optimizer's step hooks; ``pause`` holds the loop at the step end until
``resume`` or ``stop``; the weight commands go to ``refine`` (a ``gradflow.refine.Refiner``).

Clipping: with a refiner the time axis must act before the gradient is clipped, as in the Swift
trainer; so (unless ``args.fp16``, whose loss scaling the Trainer undoes inside its own clipping)
the callback takes clipping over: it sets ``args.max_grad_norm`` to 0 for the run and clips to the
original value itself in ``on_pre_optimizer_step``, recording the norm before clipping. Without
taking over, the step record's ``grad_norm`` is the norm after the Trainer's clipping and
``clip_scale`` is null (unknown) on steps where that clipping acted.

Several processes (``torchrun``, ``accelerate launch``): the Trainer runs the callback in every
process; rank 0 writes the folder and every rank applies the same commands (gradflow/ranks.py).
"""

import math
import os
import time

from transformers import TrainerCallback

from .ranks import Ranks
from .run import Run, RunError, _scalar

__all__ = ["GradflowCallback"]

#: The file ``on_save`` adds to each Trainer checkpoint folder: ``Run.run_state()``.
STATE_FILE = "gradflow_state.pt"


class GradflowCallback(TrainerCallback):
    """A ``transformers.TrainerCallback`` that writes ``OUT/run.jsonl`` and reads
    ``OUT/commands.jsonl``.

    ``refine``: a ``gradflow.refine.Refiner`` for the model (None: plain training). ``data``:
    header ``data`` entries (:func:`gradflow.data_source`). ``config``: extra members for the
    header's ``config``. ``eval_name``: the domain name of ``eval_loss`` (default ``"val"``).
    ``take_over_clipping``: see the module's doc. A run folder that already holds a run is
    continued only when the Trainer resumes from a checkpoint (``state.global_step`` > 0)."""

    def __init__(self, out, *, refine=None, data=(), config=None, run_name=None, preset="custom",
                 eval_name="val", take_over_clipping=True, system_every=5.0, pause_poll=0.2,
                 handle_signals=True):
        self.out = str(out)
        self.refine = refine
        self.data = list(data)
        self.extra_config = dict(config or {})
        self.run_name = run_name
        self.preset = preset
        self.eval_name = eval_name
        self.take_over_clipping = take_over_clipping
        self.system_every = system_every
        self.pause_poll = pause_poll
        self.handle_signals = handle_signals
        self.run = None
        self._clip = None
        self._saved_max_grad_norm = None
        self._losses = []
        self._tokens = 0
        self._hooks = []
        self._save_requested = False
        self._save_started = None
        self._saves = False      # whether the Trainer saves checkpoints (save_strategy not "no")
        self._stop_saved = False
        self._saw_forward_loss = False
        self._loss_is_share = False

    # MARK: - Start

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        if self.run is not None and not self.run.closed:
            # An earlier train() never reached on_train_end (it raised): that session failed, and
            # what the callback changed goes back before this one starts.
            self._finish(args)
            self.run.close(reason="failed", message="train() ended without on_train_end (it raised)")
        path = os.path.join(self.out, "run.jsonl")
        # Rank 0 alone looks at the folder and the other ranks follow its answer, so that all
        # resume, start or raise below together.
        ranks = Ranks.current()
        resume = os.path.exists(path) if ranks is None or ranks.writes else None
        if ranks is not None:
            resume = ranks.share(resume)
        if resume and state.global_step == 0:
            raise RunError("%s already exists; a recorder never overwrites a run file (resume the Trainer "
                           "from a checkpoint to continue it, or choose another folder)" % path)
        config = {"trainer": _arguments(args)}
        config.update(self.extra_config)
        saved, state_file = None, None
        if resume:
            # The Trainer resumes from OUTPUT_DIR/checkpoint-STEP; on_save left the run's state there.
            # (The Trainer does not tell a callback which folder it resumed from: a checkpoint
            # outside output_dir is not found, and the warning below says so.)
            state_file = os.path.join(args.output_dir, "checkpoint-%d" % state.global_step, STATE_FILE)
            if (ranks is None or ranks.writes) and os.path.exists(state_file):
                import torch
                try:
                    saved = torch.load(state_file, map_location="cpu", weights_only=False)
                except Exception as e:
                    raise RunError("%s: cannot load the run's state: %s" % (state_file, e)) from None
            if ranks is not None:
                saved = ranks.share(saved)  # rank 0's, so every rank restores the same state
        self.run = Run(self.out, model=model, optimizer=optimizer, total_steps=state.max_steps, config=config,
                       data=self.data, refine=self.refine, run_name=self.run_name, preset=self.preset,
                       seed=args.seed, checkpoint_at_end=False, checkpoint_request=self._request_save,
                       resume=resume, start_step=state.global_step if resume else None, resume_state=saved,
                       system_every=self.system_every, handle_signals=self.handle_signals,
                       pause_poll=self.pause_poll)
        if resume and saved is None:
            self.run.event("warning", "resumed without the run's state (no %s): the lr scale, the weights and the "
                           "modes start from their defaults, not from the checkpoint's" % state_file, source="trainer")
        self._saves = str(getattr(args.save_strategy, "value", args.save_strategy)) != "no"
        self._stop_saved = False
        if self.take_over_clipping and args.max_grad_norm and args.max_grad_norm > 0 and not args.fp16:
            self._clip = float(args.max_grad_norm)
            self._saved_max_grad_norm = args.max_grad_norm
            args.max_grad_norm = 0.0
        if model is not None:
            self._hooks = [model.register_forward_pre_hook(self._count_tokens, with_kwargs=True),
                           model.register_forward_hook(self._capture_loss)]

    def _count_tokens(self, module, args, kwargs):
        if not module.training:
            return
        if kwargs.get("num_items_in_batch") is not None:
            # The Trainer passes the whole step's token count: each micro-batch's loss is its share
            # of the step's mean, so the step's loss is their sum.
            self._loss_is_share = True
        ids = kwargs.get("input_ids")
        if ids is None and args:
            ids = args[0]
        if hasattr(ids, "numel"):
            self._tokens += int(ids.numel())

    def _capture_loss(self, module, args, output):
        if not module.training:
            return
        loss = output.get("loss") if isinstance(output, dict) else getattr(output, "loss", None)
        if loss is not None and hasattr(loss, "detach"):
            self._losses.append(loss.detach())
            self._saw_forward_loss = True

    # MARK: - Steps

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        run = self.run
        if run is None:
            return
        if self._clip is not None:
            run.clip_grad(self._clip)  # the time axis first, then clipping (the Swift order)

    def on_step_end(self, args, state, control, **kwargs):
        run = self.run
        if run is None or run.closed:
            return
        if self._losses:
            import torch
            losses = torch.stack([l.float() for l in self._losses])
            loss = float(losses.sum() if self._loss_is_share else losses.mean())
            clip_scale = None
            if self._clip is None and args.max_grad_norm and args.max_grad_norm > 0:
                norm = run._grad_norm
                if norm is not None and math.isfinite(norm) and norm < args.max_grad_norm * (1 - 1e-4):
                    clip_scale = 1.0
                else:
                    clip_scale = float("nan")  # the Trainer clipped: the norm before it is unknown here
            run.step(loss=loss, tokens=self._tokens or None, clip_scale=clip_scale, index=state.global_step - 1)
        elif not self._saw_forward_loss:
            run.steps_done = state.global_step  # step records come from on_log
            run._boundary()  # (the step's measures stay for on_log, which comes next when it logs)
        self._losses = []
        self._tokens = 0
        self._loss_is_share = False
        self._control(control)

    def on_log(self, args, state, control, logs=None, **kwargs):
        run = self.run
        if run is None or run.closed or self._saw_forward_loss or not logs or "loss" not in logs:
            return
        # The rate the optimizer used and the norm the callback measured, when the hooks saw them
        # (the logged rate is the scheduler's, without the lr scale).
        run.step(loss=logs["loss"], lr=None if run._lr_used is not None else logs.get("learning_rate"),
                 grad_norm=None if run._grad_norm is not None else logs.get("grad_norm"),
                 index=state.global_step - 1)
        self._control(control)

    def _control(self, control):
        if self.run.should_stop:
            control.should_training_stop = True
            if self._saves and not self._stop_saved:
                self._stop_saved = True
                self._save_requested = True
        if self._save_requested:
            control.should_save = True
            self._save_requested = False
            self._save_started = time.perf_counter()

    def _request_save(self, run):
        self._save_requested = True

    # MARK: - Evaluations and saves

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        run = self.run
        if run is None or run.closed or not metrics:
            return
        domains = []
        if "eval_loss" in metrics:
            domains.append((self.eval_name, _scalar(metrics["eval_loss"])))
        for key, value in metrics.items():
            if key.startswith("eval_") and key.endswith("_loss") and key != "eval_loss":
                domains.append((key[len("eval_"):-len("_loss")], _scalar(value)))
        if domains:
            run.eval(domains)

    def on_save(self, args, state, control, **kwargs):
        run = self.run
        if run is None or run.closed:
            return
        folder = os.path.join(args.output_dir, "checkpoint-%d" % state.global_step)
        started = self._save_started
        self._save_started = None
        ms = (time.perf_counter() - started) * 1000.0 if started is not None else 0.0
        if run._writes and os.path.isdir(folder):
            # What the Trainer's checkpoint does not hold (the lr scale, the refiner, the commands
            # answered), for a resume from this folder to go on as the run was.
            import torch
            target = os.path.join(folder, STATE_FILE)
            torch.save(run.run_state(), target + ".tmp")
            os.replace(target + ".tmp", target)
        run.record_checkpoint(folder, ms)

    # MARK: - End

    def on_train_end(self, args, state, control, **kwargs):
        run = self.run
        if run is None:
            return
        self._finish(args)
        run.close(reason="completed" if state.global_step >= state.max_steps else "interrupted")

    def _finish(self, args):
        """Gives back the clipping and removes the model hooks."""
        if self._saved_max_grad_norm is not None:
            args.max_grad_norm = self._saved_max_grad_norm
            self._saved_max_grad_norm = None
        self._clip = None
        for h in self._hooks:
            h.remove()
        self._hooks = []
        self._losses = []
        self._tokens = 0


def _arguments(args):
    """The TrainingArguments as a JSON-shaped dict (tokens and other secrets left out)."""
    try:
        d = args.to_dict()
    except Exception:
        d = dict(vars(args))
    return {k: v for k, v in d.items() if "token" not in k.lower() and not k.startswith("_")}
