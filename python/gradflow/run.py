"""``gradflow.Run``: what a PyTorch training loop uses to record a run and be steered.

    run = gradflow.Run(out="runs/a", model=model, optimizer=opt, total_steps=N,
                       config={"lr": 3e-3}, data=[gradflow.data_source("input.txt", training=True)])
    with run:
        for step in range(run.start_step, N):
            if run.should_stop:
                break
            loss = model(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            run.clip_grad(1.0)          # the time axis (with a refiner), then clipping
            opt.step()                  # the lr scale (and depth axis) act here, through hooks
            run.step(loss=loss, tokens=x.numel())   # step record, system record, commands
            if (step + 1) % 200 == 0:
                run.eval({"val:input": validation_loss()})

The step record's lr is the rate the optimizer used (param group 0, the lr scale included);
``grad_norm`` is the global gradient norm before clipping. Commands from ``RUNDIR/commands.jsonl``
are applied at each :meth:`Run.step` (docs/FORMAT.md, "The command channel"); every one is answered
by one event with ``source`` ``attach``.
"""

import atexit
import collections
import math
import numbers
import re
import os
import signal
import sys
import threading
import time
import weakref

from . import runfile
from ._json import jsonable
from .commands import CommandChannel, Refusal
from .ranks import Ranks
from .system import SystemSampler

__all__ = ["Run", "RunError"]


class RunError(Exception):
    """A run that cannot start or continue; the message names the file."""


_open_runs = weakref.WeakSet()
_uncaught = []
_hooks_installed = False


def _install_exit_hooks():
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def excepthook(exc_type, exc, tb):
        _uncaught.append((exc_type, exc))
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_close_open_runs)


def _close_open_runs():
    for run in list(_open_runs):
        if _uncaught:
            exc_type, exc = _uncaught[-1]
            if issubclass(exc_type, KeyboardInterrupt):
                run.close(reason="interrupted", message="KeyboardInterrupt")
            else:
                run.close(reason="failed", message=_describe(exc_type, exc))
        else:
            run.close()


def _describe(exc_type, exc):
    text = str(exc)
    return "%s: %s" % (exc_type.__name__, text) if text else exc_type.__name__


def _refine_errors():
    try:
        from .refine import RefineError
        return RefineError
    except ImportError:
        return None


class Run:
    """Records one training run to ``OUT/run.jsonl`` and applies commands from
    ``OUT/commands.jsonl``.

    Arguments (all but ``out`` and ``total_steps`` optional):

    - ``model``, ``optimizer``: counted for the header's ``parameters``; the optimizer gets step
      hooks that apply the ``lr_scale`` command (and the refiner's depth axis) to whatever rate the
      loop or its scheduler set; both go into the default checkpoint.
    - ``config``: a dict for the header's ``config`` (anything JSON-like; other values become text).
    - ``data``: header ``data`` entries (:func:`gradflow.data_source`), the training data first.
    - ``refine``: a ``gradflow.refine.Refiner`` or None (plain training; weight commands refused).
    - ``run_name`` (default: the folder's name), ``preset`` (``"S"``, ``"M"`` or ``"custom"``),
      ``seed``, ``threads`` (default ``torch.get_num_threads()``), ``parameters``.
    - ``checkpoint``: a function ``f(run, path)`` that writes a checkpoint to ``path`` (or
      elsewhere, returning that path); default: ``torch.save`` of the model, optimizer, step, lr
      scale and refiner state into ``OUT/ckpt-NNNNNN.pt``.
    - ``checkpoint_at_end``: write a checkpoint when the run closes (as the Swift trainer does).
    - ``checkpoint_request``: a function ``f(run)`` called for a ``checkpoint`` command instead of
      writing one at once, for a framework that saves later (the Hugging Face callback); it then
      calls :meth:`record_checkpoint`.
    - ``resume``: continue the run in ``OUT``: its file is appended to (a ``resume-run`` event),
      its ``run_id`` and clock are kept, and commands it already answered are never applied again.
      With the default checkpoint, the latest ``ckpt-*.pt`` is loaded into the model and optimizer;
      otherwise pass ``start_step`` (steps already done), and ``resume_state``: what
      :meth:`run_state` returned when that checkpoint was saved (the lr scale, the refiner's state
      and the commands it holds), so the run goes on as it was.
    - ``system_every``: seconds between ``system`` records (5).
    - ``handle_signals``: SIGINT, SIGTERM and SIGHUP (unless ignored, as under nohup) ask the
      loop to stop at the step boundary (:attr:`should_stop`; a ``stop`` event, ``source``
      ``signal``); a second SIGINT raises KeyboardInterrupt. Only in the main thread.

    Under ``torch.distributed`` (more than one process) make the ``Run`` on every rank, after
    ``init_process_group`` and at the same point of the loop: rank 0 writes the folder and reads the
    commands, the other ranks write nothing, and every rank applies the same commands at the same
    step and stops at the same step (gradflow/ranks.py). :meth:`step` is then a collective, as are
    the constructor and :meth:`poll_commands`; a rank that cannot start or read the channel makes
    every rank raise, and ranks that do not all make a ``Run`` within ``Ranks.MEET_TIMEOUT``
    seconds get an error saying so. Rank 0 writes the checkpoints (a ``checkpoint_request`` function is called on every
    rank), which suits DDP, whose replicas hold the whole model; under FSDP or ZeRO, where saving is
    itself a collective, pass ``checkpoint_request`` and save on every rank. To resume with the
    default checkpoint every rank loads it, so the run folder must be on a filesystem every rank
    sees. With NCCL, call ``torch.cuda.set_device`` first (the exchange uses the current device).
    ``distributed=False`` makes this process record alone, ignoring the other ranks (a ``Run`` on
    rank 0 only: commands then reach rank 0's replica only).
    """

    def __init__(self, out, *, total_steps, model=None, optimizer=None, config=None, data=(), refine=None,
                 run_name=None, preset="custom", seed=0, threads=None, parameters=None, checkpoint=None,
                 checkpoint_at_end=True, checkpoint_request=None, resume=False, start_step=None,
                 system_every=5.0, handle_signals=True, pause_poll=0.2, parent=None, distributed=True,
                 resume_state=None):
        data = list(data) if hasattr(data, "__iter__") and not isinstance(data, (str, bytes, dict)) else data
        _check_arguments(out=out, total_steps=total_steps, model=model, optimizer=optimizer, refine=refine,
                         data=data, parent=parent, system_every=system_every, pause_poll=pause_poll,
                         checkpoint=checkpoint, checkpoint_request=checkpoint_request, start_step=start_step)
        self.out = os.fspath(out)
        self.model = model
        self.optimizer = optimizer
        self.refiner = refine
        self.total_steps = int(total_steps)
        self.pause_poll = float(pause_poll)
        self._checkpoint_fn = checkpoint
        self._checkpoint_at_end = checkpoint_at_end
        self._checkpoint_request = checkpoint_request
        self._closed = False
        self._lock = threading.RLock()
        self.should_stop = False
        self.paused = False
        self.lr_scale = 1.0
        self.steps_done = 0
        self.last_loss = None
        self.best_val_loss = None
        self._last_checkpoint_step = None
        self._losses = collections.deque(maxlen=50)
        self._pending_signal = None
        self._signals_installed = {}
        self._hook_handles = []
        self._reset_step_measures()
        #: Ids of the commands whose effect the current state holds (what a checkpoint lists):
        #: those the loaded checkpoint held, and those answered since.
        self._held = set()
        import torch
        self._torch = torch
        threads = torch.get_num_threads() if threads is None else int(threads)
        path = os.path.join(self.out, "run.jsonl")
        self._ranks = Ranks.current() if distributed else None
        self._writes = self._ranks is None or self._ranks.writes
        self._stops_recorded = set()   # ranks whose stop request has its event
        self._local_stop = None        # a signal this rank received, not yet shared with the others
        self._stop_shared = False      # whether should_stop came from a shared stop

        if self._ranks is not None:
            came = self._ranks.meet("run")
            if came is not None:
                raise RunError("%s: rank %d: only %d of the %d ranks made a gradflow.Run within %g s; under "
                               "torch.distributed make it on every rank, at the same point of the loop "
                               "(or pass distributed=False to record from this process alone)"
                               % (self.out, self._ranks.rank, came, self._ranks.size, Ranks.MEET_TIMEOUT))
        failure = None
        try:
            if not self._writes:
                self._follow(path, resume, start_step, checkpoint, model, resume_state)
            elif resume:
                answered_ids, answered_lines = self._reopen(path, start_step, checkpoint, model, threads, resume_state)
            else:
                if start_step is not None:
                    self.steps_done = int(start_step)
                if parameters is None:
                    parameters = sum(p.numel() for p in model.parameters()) if model is not None else 0
                self._create(path, dict(
                    run_name=run_name or os.path.basename(os.path.normpath(os.path.abspath(self.out))),
                    preset=preset, parameters=parameters, total_steps=self.total_steps, seed=seed, threads=threads,
                    data=list(data), axes=refine.axis_info() if refine is not None else [],
                    config=self._config(config), parent=parent))
                answered_ids, answered_lines = (), ()
            if self._writes:
                self.channel = CommandChannel(self.out, self.run_id, answered_ids, answered_lines)
        except Exception as e:
            if self._ranks is None:
                raise
            failure = e
        if self._ranks is not None:
            self._agree_on_start(failure)
        self.system = SystemSampler(system_every)
        self._write_system()
        if optimizer is not None:
            self._install_optimizer_hooks(optimizer)
        if handle_signals and threading.current_thread() is threading.main_thread():
            self._install_signals()
        _install_exit_hooks()
        _open_runs.add(self)
        self._start_step = self.steps_done
        self._last_index = self.steps_done - 1  # a step record's index must be above it
        self._apply_lost()
        self._step_clock = time.perf_counter()

    def _create(self, path, header):
        """Starts a new run in ``path`` (the writing process): the folder, a new run id, the clock,
        and the file created with its header (``header``: runfile.header's members but the start
        time, the run id and the ranks)."""
        try:
            os.makedirs(self.out, exist_ok=True)
        except OSError as e:
            raise RunError("%s: cannot create the run folder: %s" % (self.out, e.strerror)) from None
        self.run_id = runfile.new_run_id()
        start = time.time()
        self._clock0 = time.monotonic()
        from .system import world_size
        h = runfile.header(start_time=start, run_id=self.run_id, ranks=world_size(), **header)
        try:
            self.writer = runfile.RunFileWriter.create(path, h)
        except runfile.RunFileError as e:
            raise RunError(str(e)) from None
        self._lost = {}

    def _reopen(self, path, start_step, checkpoint, model, threads, resume_state):
        """Continues the run in ``path`` (``resume=True`` on the writing process): its id, clock and
        best loss, the steps done (from the latest default checkpoint unless ``start_step``), the
        file opened to append with a ``resume-run`` event, and the commands to apply again.
        Returns the command ids and lines the file already answers."""
        if not os.path.exists(path):
            raise RunError("%s: no run to resume (resume=True needs an existing run file)" % path)
        # The writer's lock first, before anything of the run is touched (a live writer's
        # checkpoint temporary above all); it is released if the resume fails below.
        try:
            locked = runfile.RunFileWriter.lock_existing(path)
        except runfile.RunFileError as e:
            raise RunError(str(e)) from None
        self.writer = None
        try:
            return self._reopen_locked(path, locked, start_step, checkpoint, model, threads, resume_state)
        except BaseException:
            if self.writer is None:
                os.close(locked)
            raise

    def _reopen_locked(self, path, locked, start_step, checkpoint, model, threads, resume_state):
        """``_reopen`` once the run file's lock is held (``locked``, its descriptor)."""
        try:
            state = runfile.read_state(path)
        except runfile.RunFileError as e:
            raise RunError(str(e)) from None
        planned = state.header.get("total_steps")
        if isinstance(planned, int) and planned != self.total_steps:
            raise RunError("%s:1: the run was started for %d steps and is resumed with total_steps=%d; a resumed run "
                           "keeps its length (start a new run to train longer)" % (path, planned, self.total_steps))
        self.run_id = state.header.get("run_id") or ""
        if not self.run_id:
            raise RunError("%s:1: the header has no run_id (schema before 1.3); it cannot be continued "
                           "with its command channel" % path)
        self._clock0 = time.monotonic() - state.last_t
        held = None  # ids whose effect the loaded checkpoint holds
        if start_step is not None:
            if start_step > min(state.last_step, self.total_steps):  # (its type was checked on entry)
                raise RunError("%s: start_step=%r: expected the steps your checkpoint holds, from 0 to %d (the run "
                               "file ends at step %d of %d)"
                               % (self.out, start_step, min(state.last_step, self.total_steps), state.last_step,
                                  self.total_steps))
            self.steps_done = int(start_step)
            if resume_state is not None:
                held = self._restore_run_state(resume_state, "resume_state")
        elif checkpoint is not None:
            raise RunError("%s: resume=True with a checkpoint function of your own needs start_step (the steps its "
                           "checkpoint holds), since Gradflow cannot read your checkpoints" % self.out)
        elif model is None:
            raise RunError("%s: resume=True needs model= (to load the latest ckpt-*.pt into), or start_step= if "
                           "you restored the state yourself" % self.out)
        elif self._has_checkpoint():
            self._remove_stale_temporaries()
            # Refused by the name's step before anything is loaded into the caller's model.
            self._refuse_completed(path, state, self._checkpoint_step(self._checkpoints()[-1]))
            self.steps_done, held = self._load_latest_checkpoint()
            if self.steps_done > state.last_step:
                raise RunError("%s: the latest checkpoint is at step %d but the run file ends at step %d; a "
                               "checkpoint is written after its steps' records, so it cannot be this run's"
                               % (self.out, self.steps_done, state.last_step))
        else:
            raise RunError("%s: resume=True found no ckpt-*.pt to load (none written yet?), so there is nothing to "
                           "continue from: start the run again in another folder, or pass start_step (steps "
                           "already done) if your own checkpoint holds them" % self.out)
        self._refuse_completed(path, state, self.steps_done)
        # The figures the end record carries, without the evaluations and steps this resume replaces.
        self.best_val_loss, self.last_loss = state.figures_resumed_at(self.steps_done)
        self._last_checkpoint_step = self.steps_done
        self.writer = runfile.RunFileWriter.resume(path, locked_fd=locked)
        self._held = set(held or ())
        self._lost, missing = self._lost_commands(state, held) if held is not None else ({}, {})
        self.writer.write(runfile.event_record(
            step=self.steps_done, t=self.elapsed, kind="resume-run", source="trainer",
            message="resumed from step %d with %s" % (self.steps_done, _process_summary(threads))))
        for cid, step in sorted(missing.items(), key=lambda item: (item[1], item[0])):
            self.writer.write(runfile.event_record(
                step=self.steps_done, t=self.elapsed, kind="warning", source="attach",
                message=LOST_COMMAND_MISSING % {"id": cid, "step": step}))
        return state.answered_ids, state.answered_lines

    def _agree_on_start(self, failure):
        """Under torch.distributed: every rank learns whether every rank could start, and gets rank
        0's run id and the commands to apply again after a resume. When any rank could not start,
        every rank raises the same error (none waits alone in a later collective), and rank 0 ends
        the file it began with a ``failed`` end record."""
        mine = None if failure is None else (str(failure) if isinstance(failure, RunError)
                                             else _describe(type(failure), failure))
        ours = (self.run_id, self._lost) if self._writes and failure is None else None
        statuses = self._ranks.gather((mine, ours))
        failed = [(rank, message) for rank, (message, _) in enumerate(statuses) if message]
        if not failed:
            self.run_id, self._lost = statuses[0][1]
            return
        message = "; ".join("rank %d: %s" % (rank, m) for rank, m in failed)
        if self._writes and failure is None:
            self.writer.write(runfile.end_record(step=self.steps_done, t=self.elapsed, reason="failed",
                                                 final_loss=None, best_val_loss=self.best_val_loss, message=message))
            self.writer.close()
            self.channel.close()
        raise RunError(message) from failure

    def _follow(self, path, resume, start_step, checkpoint, model, resume_state):
        """A rank other than 0: no files written, commands come from rank 0 (gradflow/ranks.py)."""
        self.run_id = None
        self._clock0 = time.monotonic()
        self._lost = {}
        if start_step is not None:
            self.steps_done = int(start_step)
            if resume and resume_state is not None:
                self._restore_run_state(resume_state, "resume_state")
        elif resume:
            if checkpoint is not None or model is None or not os.path.isdir(self.out) or not self._has_checkpoint():
                raise RunError("%s: rank %d: resume=True found no ckpt-*.pt to load (under torch.distributed every "
                               "rank loads the checkpoint: the run folder must be on a filesystem every rank "
                               "sees); pass start_step (steps already done)" % (self.out, self._ranks.rank))
            self.steps_done, _ = self._load_latest_checkpoint()
        self._last_checkpoint_step = self.steps_done if resume else None
        self.writer = _Discard(path)
        self.channel = _NoChannel()

    # MARK: - Properties

    @property
    def start_step(self):
        """Steps already done when this session started (0 unless resumed)."""
        return self._start_step

    @property
    def elapsed(self):
        """Seconds since the start of the run (a resumed run continues its file's clock)."""
        return time.monotonic() - self._clock0

    @property
    def path(self):
        return self.writer.path

    def _config(self, config):
        c = dict(jsonable(config) or {}) if isinstance(config, dict) or config is None else {"value": jsonable(config)}
        c.setdefault("framework", "pytorch")
        c.setdefault("torch", self._torch.__version__)
        if self.optimizer is not None and "optimizer" not in c:
            c["optimizer"] = _describe_optimizer(self.optimizer)
        if self.refiner is not None and "refinement" not in c:
            describe = getattr(self.refiner, "describe", None)
            c["refinement"] = jsonable(describe()) if callable(describe) else type(self.refiner).__name__
        return c

    # MARK: - The optimizer's step

    def _reset_step_measures(self):
        self._grad_norm = None
        self._clip_scale = None
        self._lr_used = None
        self._refined = False

    def _time_axis(self):
        if self.refiner is not None and not self._refined:
            self.refiner.before_optimizer(self.steps_done)
        self._refined = True

    def clip_grad(self, max_norm, parameters=None):
        """Applies the refiner's time axis (if any) to the gradients, then clips their global norm
        to ``max_norm`` (0 or None: measure only). Records the norm before clipping and the clip
        factor for the step record; returns the norm."""
        self._time_axis()
        if parameters is None:
            parameters = self._parameters()
        params = [p for p in parameters if p.grad is not None]
        torch = self._torch
        if max_norm:
            norm = float(torch.nn.utils.clip_grad_norm_(params, float(max_norm)))
            scale = min(1.0, float(max_norm) / (norm + 1e-6)) if math.isfinite(norm) else 1.0
        else:
            norm = float(_grad_norm(params))
            scale = 1.0
        self._grad_norm, self._clip_scale = norm, scale
        return norm

    def _parameters(self):
        if self.model is not None:
            return list(self.model.parameters())
        if self.optimizer is not None:
            return [p for g in _inner_optimizer(self.optimizer).param_groups for p in g["params"]]
        return []

    def _install_optimizer_hooks(self, optimizer):
        opt = _inner_optimizer(optimizer)
        saved, applied = [], []

        def pre(o, args, kwargs):
            self._time_axis()
            if self._grad_norm is None:
                params = [p for g in o.param_groups for p in g["params"] if p.grad is not None]
                self._grad_norm, self._clip_scale = float(_grad_norm(params)), 1.0
            saved[:] = [g["lr"] for g in o.param_groups]
            if self.lr_scale != 1.0:
                for g in o.param_groups:
                    g["lr"] = g["lr"] * self.lr_scale
            self._lr_used = float(o.param_groups[0]["lr"]) if o.param_groups else None
            apply_depth = getattr(self.refiner, "apply_depth", None)
            applied[:] = [apply_depth(o)] if apply_depth is not None else []

        def post(o, args, kwargs):
            for a in applied:  # the depth axis' rates first, then the schedule's own
                a.restore()
            applied.clear()
            for g, lr in zip(o.param_groups, saved):
                g["lr"] = lr
            saved.clear()

        self._hook_handles = [opt.register_step_pre_hook(pre), opt.register_step_post_hook(post)]

    # MARK: - Steps

    def step(self, loss, *, lr=None, grad_norm=None, clip_scale=None, tokens=None, tokens_per_s=None,
             step_ms=None, index=None):
        """Ends a training step: writes its step record (index ``steps_done`` unless ``index``),
        a spike warning, a system record when due, then reads and applies the commands.

        ``loss`` (float or 0-d tensor): the step's mean training loss in nats. ``lr``, ``grad_norm``
        and ``clip_scale`` default to what the optimizer hook and :meth:`clip_grad` saw; ``tokens``
        (tokens in the step's batch) gives ``tokens_per_s``; ``step_ms`` defaults to the wall time
        since the previous step boundary."""
        with self._lock:
            if self._closed:
                raise RunError("%s: the run is closed" % self.path)
            now = time.perf_counter()
            ms = (now - self._step_clock) * 1000.0 if step_ms is None else float(step_ms)
            if loss is None:
                raise RunError("Run.step(loss=...): expected the step's loss (a number or a 0-d tensor), got None")
            loss = _scalar(loss)
            if lr is None:
                lr = self._lr_used
            if lr is None and self.optimizer is not None:
                lr = float(_inner_optimizer(self.optimizer).param_groups[0]["lr"]) * self.lr_scale
            if grad_norm is None:
                grad_norm = self._grad_norm
            if clip_scale is None:
                clip_scale = self._clip_scale if self._clip_scale is not None else 1.0
            if tokens_per_s is None:
                tokens_per_s = _scalar(tokens) / (ms / 1000.0) if tokens is not None and ms > 0 else None
            index = self.steps_done if index is None else _index(index)
            if index <= self._last_index:
                raise RunError("%s: step index %d does not come after the last one recorded, %d (records go forward)"
                               % (self.path, index, self._last_index))
            extra = {}
            if self.refiner is not None:
                extra = dict(self.refiner.finish_step(index, loss) or {})
            spike = self._spike(loss)
            if "spike" in extra:
                spike = bool(extra["spike"])
            if self._writes:  # the other ranks of a torch.distributed job write nothing
                self.writer.write(runfile.step_record(
                    step=index, t=self.elapsed, loss=loss, lr=lr, grad_norm=_scalar(grad_norm),
                    clip_scale=_scalar(clip_scale), tokens_per_s=tokens_per_s, step_ms=ms,
                    axes=extra.get("axes"), context_energy=extra.get("context_energy", ()),
                    attention_mass=extra.get("attention_mass", ()),
                    attention_mass_by_head=extra.get("attention_mass_by_head", ()),
                    oscillation=extra.get("oscillation"), spike=spike,
                    guard_fallbacks=extra.get("guard_fallbacks", 0)))
            previous, self._last_index = self._last_index, index
            self.steps_done = index + 1
            self.last_loss = loss
            warmup_ends = getattr(self.refiner, "adaptive_warmup_ends", None)
            # Every index since the last record: a loop that records every few steps (the Hugging
            # Face Trainer's logs) must not step over the warm-up's end.
            if callable(warmup_ends) and any(warmup_ends(i) for i in range(max(previous + 1, index - 10_000), index + 1)):
                self.event("adaptive", ADAPTIVE_IN_FORCE, source="policy")
            if spike:
                self.event("warning", source="trainer", step=index,
                           message="loss spike %.3f > 1.2 × median of the previous %d (%.3f)"
                                   % (loss, len(self._losses), _median(self._losses)) if math.isfinite(loss)
                           else "loss is not finite (%r)" % loss)
            if math.isfinite(loss):
                self._losses.append(loss)
            self._reset_step_measures()
            self._boundary()
            self._step_clock = time.perf_counter()

    def _spike(self, loss):
        """The Swift trainer's rule: above 1.2 × the median of the previous 50 (10 at least)."""
        if not math.isfinite(loss):
            return True
        if len(self._losses) < 10:
            return False
        return loss > 1.2 * _median(self._losses)

    def _boundary(self):
        """What happens at a step boundary: signals, system record, commands, pause."""
        self._take_signal()
        if self.system.due():
            self._write_system()
        self._apply_lost()
        self.poll_commands()
        while self.paused and not self.should_stop and not self._closed:
            time.sleep(self.pause_poll)
            self._take_signal()
            if self.system.due():
                self._write_system()
            self.poll_commands()
            self.writer.sync_if_due()
        self.writer.sync_if_due()

    def _write_system(self):
        if not self._writes:
            return
        figures = self.system.sample()
        self.writer.write(runfile.system_record(step=self.steps_done, t=self.elapsed, **figures))

    # MARK: - Evaluations, events, checkpoints

    def eval(self, domains, *, loss_by_position=(), context_gain=(), sample=None, sample_prompt=None):
        """Writes an ``eval`` record at the current step. ``domains``: ``{name: loss}`` (nats) or
        pairs, the training data's held-out split first (the Swift trainer names it ``val:NAME``);
        ``context_gain``: ``{window: delta}``; ``sample``: text the model wrote after
        ``sample_prompt``."""
        with self._lock:
            items = list(domains.items() if isinstance(domains, dict) else domains)
            items = [(n, _scalar(v)) for n, v in items]
            if items and math.isfinite(items[0][1]) and (self.best_val_loss is None or items[0][1] < self.best_val_loss):
                self.best_val_loss = items[0][1]
            self.writer.write(runfile.eval_record(
                step=self.steps_done, t=self.elapsed, domains=items, loss_by_position=loss_by_position,
                context_gain=context_gain, sample=sample, sample_prompt=sample_prompt))
            self._step_clock = time.perf_counter()

    def event(self, kind, message="", *, source="api", step=None, **members):
        """Writes an ``event`` record (``axis``, ``band``, ``layer``, ``old``, ``new``,
        ``command_id`` as keywords) at the current step boundary."""
        if kind not in runfile.EVENT_KINDS:
            raise ValueError("event kind must be one of the format's kinds (%s), got %r"
                             % (", ".join(runfile.EVENT_KINDS), kind))
        with self._lock:
            self.writer.write(runfile.event_record(
                step=self.steps_done if step is None else step, t=self.elapsed, kind=kind, source=source,
                message=message, **members))

    def checkpoint(self):
        """Writes a checkpoint now and its ``checkpoint`` record; returns the path (None on a rank
        other than 0 of a ``torch.distributed`` job, which writes nothing)."""
        with self._lock:
            if not self._writes:
                return None
            if self._checkpoint_fn is None and self.model is None:
                raise RunError("no checkpoint function and no model to save (pass model= or checkpoint=)")
            path = os.path.join(self.out, "ckpt-%06d.pt" % self.steps_done)
            t0 = time.perf_counter()
            # The steps a checkpoint holds reach the disk before it: a resume after a machine crash
            # never finds a checkpoint newer than its run file.
            self.writer.sync()
            if self._checkpoint_fn is not None:
                written = self._checkpoint_fn(self, path)
                path = str(written) if written else path
            else:
                self._save_default(path)
            self.record_checkpoint(path, (time.perf_counter() - t0) * 1000.0)
            return path

    def record_checkpoint(self, path, ms=0.0):
        """Writes the ``checkpoint`` record of a checkpoint saved by someone else (a file, or a
        folder whose files are counted): its path and the milliseconds it took."""
        with self._lock:
            self.writer.write(runfile.checkpoint_record(step=self.steps_done, t=self.elapsed, path=str(path),
                                                        bytes=_size(str(path)), ms=ms))
            self._last_checkpoint_step = self.steps_done
            self._step_clock = time.perf_counter()

    def run_state(self):
        """What a checkpoint must hold besides the model and optimizer for a resume to go on as the
        run was: the run id, the step, the lr scale, the refiner's state, the command ids
        answered so far and the recent losses the spike rule compares with. The default checkpoint holds it; a framework that saves its own
        checkpoints saves this beside them and passes it back as ``resume_state``."""
        state = {"run_id": self.run_id, "step": self.steps_done, "lr_scale": self.lr_scale,
                 "commands": sorted(self._held), "losses": list(self._losses)}
        state_dict = getattr(self.refiner, "state_dict", None)
        if callable(state_dict):
            state["refiner"] = state_dict()
        return state

    def _restore_run_state(self, state, where):
        """Takes back what :meth:`run_state` saved; returns the command ids it holds."""
        if not isinstance(state, dict) or "lr_scale" not in state:
            raise RunError("%s: not a gradflow run state (Run.run_state())" % where)
        if self.run_id is not None and state.get("run_id") != self.run_id:
            raise RunError("%s: this state belongs to run %s, not to this folder's run %s"
                           % (where, state.get("run_id"), self.run_id))
        load = getattr(self.refiner, "load_state_dict", None)
        if callable(load) and "refiner" in state:
            load(state["refiner"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self._losses.clear()
        self._losses.extend(float(x) for x in state.get("losses", ()))   # absent from older states
        return set(state.get("commands", ()))

    def _save_default(self, path):
        state = {"format": "gradflow.torch-checkpoint/1", "model": self.model.state_dict(), **self.run_state()}
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        tmp = path + ".tmp"
        self._torch.save(state, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _checkpoints(self):
        """The folder's default checkpoints (``ckpt-NNNNNN.pt``), by step (a name's digits grow past
        six after step 999,999, so the names do not sort by step)."""
        found = []
        for n in os.listdir(self.out):
            m = _CHECKPOINT_NAME.fullmatch(n)
            if m:
                found.append((int(m.group(1)), n))
        return [n for _, n in sorted(found)]

    def _remove_stale_temporaries(self):
        """Removes ``ckpt-*.pt.tmp`` left by a process killed while it wrote a checkpoint (the
        writer renames a whole file into place, so the temporary is never a checkpoint)."""
        for n in os.listdir(self.out):
            if _CHECKPOINT_TEMPORARY.fullmatch(n):
                try:
                    os.remove(os.path.join(self.out, n))
                except OSError:
                    pass

    def _has_checkpoint(self):
        return bool(self._checkpoints())

    @staticmethod
    def _checkpoint_step(name):
        return int(_CHECKPOINT_NAME.fullmatch(name).group(1))

    def _refuse_completed(self, path, state, start):
        """As the Swift trainer: a run killed between its final checkpoint and its end record can
        still be resumed, to write that record; one that wrote it has nothing left to do."""
        if state.completed and start >= self.total_steps:
            raise RunError("%s: the run completed all its %d steps; there is nothing to resume (start a new run "
                           "to train longer)" % (path, self.total_steps))

    def _load_latest_checkpoint(self):
        """Loads the latest ``ckpt-*.pt`` of the run folder; returns its step."""
        names = self._checkpoints()
        path = os.path.join(self.out, names[-1])
        try:
            state = self._torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise RunError("%s: cannot load the checkpoint: %s" % (path, e)) from None
        if not isinstance(state, dict) or state.get("format") != "gradflow.torch-checkpoint/1":
            raise RunError("%s: not a gradflow checkpoint" % path)
        if self.run_id is not None and state.get("run_id") != self.run_id:
            raise RunError("%s: this checkpoint belongs to run %s, not to this folder's run %s; move it out of %s "
                           "to resume from the run's own checkpoints" % (path, state.get("run_id"), self.run_id, self.out))
        self.model.load_state_dict(state["model"])
        if self.optimizer is not None and "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        return int(state["step"]), self._restore_run_state(state, path)

    # MARK: - Commands

    #: The commands whose effect is state a checkpoint holds (and a resume must restore).
    _STATEFUL = {"weight", "mode", "target", "lr"}

    def _lost_commands(self, state, held):
        """Commands applied after the loaded checkpoint was written (the run file answers them,
        the checkpoint does not hold them), by the step they were applied at: applied again at that
        step, so the resumed run goes through the states of the uninterrupted one. Also the ids of
        those no longer in the commands file (cut or replaced since), with their steps: they cannot
        be applied again, and the resume says so."""
        lost_ids = {cid: step for cid, (step, kind) in state.answers.items()
                    if cid not in held and kind in self._STATEFUL and isinstance(step, int)}
        if not lost_ids:
            return {}, {}
        from .commands import COMMANDS_FILE, parse_line
        out = {}
        try:
            with open(os.path.join(self.out, COMMANDS_FILE), "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        for n, raw in enumerate(data.split(b"\n")[:-1], start=1):
            item = parse_line(raw, n, self.run_id)
            if item.id in lost_ids and not isinstance(item, Refusal):
                out.setdefault(lost_ids.pop(item.id), []).append(item)
        return out, lost_ids

    def _apply_lost(self):
        for step in sorted(s for s in self._lost if s <= self.steps_done):
            for cmd in self._lost.pop(step):
                self._again = APPLIED_AGAIN
                try:
                    self._apply(cmd)
                except Exception as e:
                    self._answer(cmd, "refused", "%s: %s refused: %s" % (cmd.where(), cmd.name, e))
                finally:
                    self._again = None

    def poll_commands(self):
        """Reads and applies the commands added to ``commands.jsonl`` since the last look (done by
        :meth:`step`; call it yourself where a loop waits outside steps)."""
        with self._lock:
            if self._ranks is None:
                items = self.channel.poll()
            else:
                # Rank 0's channel error reaches every rank: all raise it, none waits alone.
                items, error = [], None
                try:
                    items = self.channel.poll()
                except Exception as e:
                    error = _describe(type(e), e)
                items, stops, error = self._ranks.exchange(items, self._stop_reason(), error)
                if error is not None:
                    raise RunError("%s: rank 0 could not read the command channel: %s" % (self.out, error))
                self._stop_for_ranks(stops)
            notices = getattr(self.channel, "notices", None)
            while notices:
                self.event("warning", notices.pop(0), source="attach")
            for item in items:
                if isinstance(item, Refusal):
                    if item.line == 0:
                        self.event("warning", item.message, source="attach")
                    else:
                        self.event("refused", item.message, source="attach", command_id=item.id)
                    continue
                try:
                    self._apply(item)
                except Exception as e:  # a refiner that raised: refuse, never stop the run
                    error = _refine_errors()
                    reason = str(e) if error is not None and isinstance(e, error) else _describe(type(e), e)
                    self._answer(item, "refused", "%s: %s refused: %s" % (item.where(), item.name, reason))

    def _stop_reason(self):
        """Why this rank wants the job to stop at this boundary (a signal, or ``should_stop`` set
        by the loop on this rank alone), or None."""
        if self._local_stop is not None:
            return self._local_stop
        if self.should_stop and not self._stop_shared:
            return "stop requested"
        return None

    def _stop_for_ranks(self, stops):
        """Every rank stops when any rank asks to; rank 0 records another rank's request once."""
        for rank, reason in stops:
            self.should_stop = True
            self._stop_shared = True
            if rank != self._ranks.rank and rank not in self._stops_recorded:
                self._stops_recorded.add(rank)
                self.event("stop", "rank %d (%s): stopping at step %d" % (rank, reason, self.steps_done),
                           source="signal" if reason != "stop requested" else "trainer")

    _again = None

    def _answer(self, cmd, kind, message="", **members):
        if cmd.id is not None:
            self._held.add(cmd.id)  # its effect is in the state from now on
        if self._again:
            message = "%s (%s)" % (message, self._again) if message else self._again
        self.event(kind, message, source="attach", command_id=cmd.id, **members)

    def _apply(self, cmd):
        name = cmd.name
        if name in ("set_weight", "set_adaptive", "set_target"):
            if self.refiner is None:
                self._answer(cmd, "refused", "%s: %s refused: this run trains without the scale axes (no refiner)"
                             % (cmd.where(), name))
                return
            axis = cmd.get("axis")
            # A weight or mode turns an off axis on; the time axis then starts its filter (its event says so).
            starts = axis == "time" and self.refiner.mode("time") == "off"
            if name == "set_weight":
                band, layer = cmd.get("band"), cmd.get("layer")
                old, new = self.refiner.set_weight(axis, band, cmd.get("value"), layer=layer)
                self._answer(cmd, "weight", TIME_AXIS_STARTED if starts else "", axis=axis, band=band, layer=layer,
                             old=_opt(old), new=_opt(new))
            elif name == "set_adaptive":
                on = cmd.get("adaptive")
                old, new = self.refiner.set_adaptive(axis, on)
                message = "%s %s" % (axis, "adaptive" if on else "manual")
                self._answer(cmd, "mode", message + ("; " + TIME_AXIS_STARTED if starts else ""), axis=axis,
                             old=_mode_value(old), new=_mode_value(new))
            else:
                band = cmd.get("band")
                old, new = self.refiner.set_target(band, cmd.get("share"))
                self._answer(cmd, "target", axis="context", band=band, old=_opt(old), new=_opt(new))
        elif name == "lr_scale":
            if self.optimizer is None:
                self._answer(cmd, "refused", "%s: lr_scale refused: the run has no optimizer to scale" % cmd.where())
                return
            old, self.lr_scale = self.lr_scale, float(cmd.get("value"))
            self._answer(cmd, "lr", "learning rate × %g from step %d" % (self.lr_scale, self.steps_done),
                         old=old, new=self.lr_scale)
        elif name == "pause":
            if self.paused:
                self._answer(cmd, "command", "already paused")
            else:
                self.paused = True
                self._answer(cmd, "pause", "paused at step %d" % self.steps_done)
        elif name == "resume":
            if self.paused:
                self.paused = False
                self._answer(cmd, "resume", "resumed at step %d" % self.steps_done)
            else:
                self._answer(cmd, "command", "not paused")
        elif name == "stop":
            self.should_stop = True
            self._stop_shared = True
            self.paused = False
            self._answer(cmd, "stop", "stopping at step %d" % self.steps_done)
        elif name == "checkpoint":
            if self._checkpoint_request is not None:
                self._answer(cmd, "command", "checkpoint requested")
                self._checkpoint_request(self)
            elif self._checkpoint_fn is None and self.model is None:
                self._answer(cmd, "refused", "%s: checkpoint refused: no model and no checkpoint function" % cmd.where())
            else:
                # Saved first, then answered (the Swift trainer's order and words): a save that
                # raises is answered once, by the refusal that poll_commands writes.
                self.checkpoint()
                self._answer(cmd, "command", "checkpoint written")
        elif name in ("open_twin", "revert"):
            self._answer(cmd, "refused", "%s: %s refused: twins are not available in the Python package"
                         % (cmd.where(), name))
        else:  # parse_line knows no other command
            self._answer(cmd, "refused", "%s: unknown command \"%s\"" % (cmd.where(), name))

    # MARK: - Signals

    def _install_signals(self):
        # SIGHUP is the terminal going away: a stop as for Ctrl-C, so the run can be resumed; under
        # nohup it arrives ignored and stays so (the run goes on), as in the Swift trainer.
        hangup = getattr(signal, "SIGHUP", None)   # not on Windows
        for sig in (signal.SIGINT, signal.SIGTERM, hangup):
            if sig is None or (sig == hangup and signal.getsignal(sig) == signal.SIG_IGN):
                continue
            try:
                self._signals_installed[sig] = signal.signal(sig, self._on_signal)
            except (ValueError, OSError):
                pass

    def _on_signal(self, signum, frame):
        if self._pending_signal is not None or self.should_stop:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self._pending_signal = signum
        if self._ranks is None:
            self.should_stop = True  # seen by the loop and by a pause at once; the event follows
        else:
            # Every rank stops at the boundary where the ranks exchange this (poll_commands): a
            # rank that left its loop alone would leave the others waiting in a collective.
            self._local_stop = signal.Signals(signum).name

    def _take_signal(self):
        sig = self._pending_signal
        if sig is not None and sig != "recorded":
            self._pending_signal = "recorded"
            name = signal.Signals(sig).name
            self.event("stop", "%s: stopping at step %d" % (name, self.steps_done), source="signal")

    def _restore_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, handler in self._signals_installed.items():
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError, TypeError):
                pass
        self._signals_installed = {}

    # MARK: - The end

    def close(self, reason=None, message="", failure=None):
        """Writes the final checkpoint (``checkpoint_at_end``) and the ``end`` record, and closes
        the files. ``reason``: ``completed`` / ``interrupted`` / ``failed`` (default: completed
        when every planned step ran, interrupted otherwise); ``failure``, for ``failed`` only:
        ``diverged``, ``non_finite`` or ``error`` (the default). Safe to call twice."""
        runfile.check_end(reason, failure)
        with self._lock:
            if self._closed:
                return
            self._take_signal()
            if reason is None:
                reason = "completed" if self.steps_done >= self.total_steps else "interrupted"
            try:
                if (self._checkpoint_at_end and reason != "failed" and self._last_checkpoint_step != self.steps_done
                        and (self._checkpoint_fn is not None or self.model is not None)):
                    self.checkpoint()
            except Exception as e:
                reason, failure, message = "failed", "error", "final checkpoint: %s" % _describe(type(e), e)
            finally:
                self.writer.write(runfile.end_record(
                    step=self.steps_done, t=self.elapsed, reason=reason, final_loss=_finite(self.last_loss),
                    best_val_loss=self.best_val_loss, message=message, failure=failure))
                self._closed = True
                self.writer.close()
                self.channel.close()
                for h in self._hook_handles:
                    h.remove()
                self._hook_handles = []
                self._restore_signals()
                _open_runs.discard(self)

    @property
    def closed(self):
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close(reason="interrupted", message="KeyboardInterrupt")
        else:
            self.close(reason="failed", message=_describe(exc_type, exc))
        return False


# MARK: - Helpers


def _check_arguments(*, out, total_steps, model, optimizer, refine, data, parent, system_every, pause_poll,
                     checkpoint, checkpoint_request, start_step):
    """Raises RunError naming the first argument of ``Run`` that is not what it must be, before
    anything is created."""
    def bad(name, expected, value):
        raise RunError("Run(%s=...): expected %s, got %r" % (name, expected, value))

    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        bad("out", "a folder path (a non-empty str or os.PathLike)", out)
    if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) or total_steps < 0:
        bad("total_steps", "a whole number, 0 or more", total_steps)
    if start_step is not None and (isinstance(start_step, bool) or not isinstance(start_step, numbers.Integral) or start_step < 0):
        bad("start_step", "a whole number, 0 or more, or None", start_step)
    if model is not None and not (callable(getattr(model, "parameters", None))
                                  and callable(getattr(model, "state_dict", None))):
        bad("model", "a torch.nn.Module or None", model)
    if optimizer is not None and not hasattr(_inner_optimizer(optimizer), "param_groups"):
        bad("optimizer", "a torch.optim.Optimizer or None", optimizer)
    if refine is not None and not all(callable(getattr(refine, m, None)) for m in ("axis_info", "finish_step")):
        bad("refine", "a gradflow.refine.Refiner or None", refine)
    if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        bad("data", "a list of gradflow.data_source(...) entries", data)
    for d in data:
        if not isinstance(d, dict) or not {"name", "path", "bytes", "hash"} <= d.keys():
            bad("data", "entries made by gradflow.data_source(...) ({name, path, bytes, hash})", d)
    if parent is not None and (not isinstance(parent, dict) or not {"run", "step", "checkpoint"} <= parent.keys()):
        bad("parent", "None or {run, step, checkpoint}", parent)
    for name, value, least in (("system_every", system_every, 0), ("pause_poll", pause_poll, 1e-9)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= least:
            bad(name, "seconds, %s" % ("0 or more" if least == 0 else "more than 0"), value)
    for name, value in (("checkpoint", checkpoint), ("checkpoint_request", checkpoint_request)):
        if value is not None and not callable(value):
            bad(name, "a function or None", value)


#: The default checkpoint's file name, and the temporary it is written to first.
_CHECKPOINT_NAME = re.compile(r"ckpt-(\d+)\.pt")
_CHECKPOINT_TEMPORARY = re.compile(r"ckpt-\d+\.pt\.tmp")

#: What the event of a command applied again after a resume says (the Swift trainer's words).
APPLIED_AGAIN = "applied again after a resume: its effect came after the checkpoint"

def _median(values):
    """The median (the mean of the two middle values of an even count), as the spike rule takes it."""
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])


#: The warning of a resume that cannot apply such a command again: its line is no longer in the
#: commands file (the Swift trainer's words; %(id)s and %(step)s are filled in).
LOST_COMMAND_MISSING = ("command \"%(id)s\" (applied at step %(step)s, after the checkpoint) is no longer in "
                        "commands.jsonl, so it is not applied again: from step %(step)s this run's settings may "
                        "differ from the uninterrupted run's")

#: The event message when the adaptive policies' warm-up ends (the Swift trainer's words).
ADAPTIVE_IN_FORCE = "adaptive weights in force (warm-up done)"

#: The event message when a command turns the time axis on (the Swift trainer's words).
TIME_AXIS_STARTED = "time axis on from this step: its EMAs start from the next gradient"


class _Discard:
    """The run file of a rank other than 0: records are dropped."""

    def __init__(self, path):
        self.path = path

    def write(self, obj):
        pass

    def sync(self):
        pass

    def sync_if_due(self):
        pass

    def close(self):
        pass


class _NoChannel:
    """The command channel of a rank other than 0: rank 0 reads the commands and shares them."""

    answered = frozenset()

    def poll(self):
        return []

    def close(self):
        pass


def _describe_optimizer(optimizer):
    """The header's ``config.optimizer``: the class, its defaults, and, where any parameter group
    sets a default to something else (weight decay off for biases, a scheduler's first rate), each
    group's parameter count and those settings, since then the defaults alone would mislead."""
    inner = _inner_optimizer(optimizer)
    defaults = {k: v for k, v in getattr(inner, "defaults", {}).items() if k != "params"}
    out = {"name": type(inner).__name__, **{k: jsonable(v) for k, v in defaults.items()}}
    groups = inner.param_groups
    differ = [k for k in defaults if any(k in g and g[k] != defaults[k] for g in groups)]
    if differ:
        out["groups"] = [{"parameters": sum(p.numel() for p in g["params"]),
                          **{k: jsonable(g.get(k)) for k in differ}} for g in groups]
    return out


def _inner_optimizer(optimizer):
    """The torch optimizer inside wrappers (accelerate's AcceleratedOptimizer keeps it in
    ``.optimizer``), whose step hooks fire whenever the wrapped step runs."""
    for _ in range(4):
        inner = getattr(optimizer, "optimizer", None)
        if inner is None or not hasattr(inner, "param_groups"):
            break
        optimizer = inner
    return optimizer


def _grad_norm(params):
    import torch
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if not grads:
        return float("nan")
    norms = torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])
    return float(torch.linalg.vector_norm(norms))


def _index(x):
    """A step index: a whole number, 0 or more (a 0-d tensor or numpy integer too)."""
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < 0:
        raise RunError("step index must be a whole number, 0 or more (got %r)" % (x,))
    return int(x)


def _scalar(x):
    if x is None:
        return float("nan")
    if hasattr(x, "item"):
        x = x.item()
    return float(x)


def _finite(x):
    return x if x is not None and math.isfinite(x) else None


def _opt(x):
    return None if x is None else float(x)


def _mode_value(m):
    """A mode as an event's old/new value: 1 adaptive, 0 manual (as the Swift trainer writes)."""
    if isinstance(m, bool):
        return 1.0 if m else 0.0
    if isinstance(m, str):
        return 1.0 if m == "adaptive" else 0.0
    return _opt(m)


def _size(path):
    """Bytes of a file, or of every file under a folder (a Hugging Face checkpoint folder)."""
    if os.path.isdir(path):
        total = 0
        for root, _, files in os.walk(path):
            for n in files:
                try:
                    total += os.path.getsize(os.path.join(root, n))
                except OSError:
                    pass
        return total
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _process_summary(threads):
    from .system import world_size
    ranks = world_size()
    return "%d ranks × %d threads" % (ranks, threads) if ranks > 1 else "%d threads" % threads
