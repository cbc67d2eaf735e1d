"""gradflow.Run's lifecycle: end reasons (completed, interrupted, failed by exception or at exit),
signals, the system record, spikes."""

import json
import os
import signal
import sys

import pytest
import torch

import gradflow

from conftest import TinyLM, tiny_step

HERE = os.path.dirname(os.path.abspath(__file__))


def records(rundir):
    return [json.loads(l) for l in open(os.path.join(rundir, "run.jsonl"))]


def test_exception_ends_the_run_failed(tmp_path, tiny):
    model, opt = tiny
    with pytest.raises(ValueError):
        with gradflow.Run(str(tmp_path), model=model, optimizer=opt, total_steps=5, handle_signals=False) as run:
            tiny_step(model, opt, run, 0)
            raise ValueError("boom")
    end = records(str(tmp_path))[-1]
    assert end["type"] == "end" and end["reason"] == "failed" and end["message"] == "ValueError: boom"
    assert end["step"] == 1 and "final_loss" in end
    run.close()  # closing twice does nothing
    assert records(str(tmp_path))[-1] == end
    # The optimizer's hooks are gone: the rate is the loop's own again.
    assert [type(r) for r in records(str(tmp_path))].count(dict) == len(records(str(tmp_path)))


def test_completed_and_interrupted(tmp_path, tiny):
    model, opt = tiny
    run = gradflow.Run(str(tmp_path / "a"), model=model, optimizer=opt, total_steps=2, handle_signals=False,
                       checkpoint_at_end=False)
    tiny_step(model, opt, run, 0)
    tiny_step(model, opt, run, 1)
    run.close()
    assert records(str(tmp_path / "a"))[-1]["reason"] == "completed"
    run = gradflow.Run(str(tmp_path / "b"), model=model, optimizer=opt, total_steps=5, handle_signals=False)
    tiny_step(model, opt, run, 0)
    run.close()
    rs = records(str(tmp_path / "b"))
    assert rs[-1]["reason"] == "interrupted" and rs[-2]["type"] == "checkpoint"
    with pytest.raises(gradflow.RunError, match="already exists; a recorder never overwrites"):
        gradflow.Run(str(tmp_path / "b"), model=model, optimizer=opt, total_steps=5, handle_signals=False)


def test_sigint_stops_at_the_step_boundary(tmp_path, tiny):
    model, opt = tiny
    previous = signal.getsignal(signal.SIGINT)
    run = gradflow.Run(str(tmp_path), model=model, optimizer=opt, total_steps=5, checkpoint_at_end=False)
    os.kill(os.getpid(), signal.SIGINT)
    assert run.should_stop
    tiny_step(model, opt, run, 0)
    run.close()
    assert signal.getsignal(signal.SIGINT) is previous
    stops = [r for r in records(str(tmp_path)) if r.get("kind") == "stop"]
    assert len(stops) == 1 and stops[0]["source"] == "signal" and stops[0]["message"].startswith("SIGINT")
    assert records(str(tmp_path))[-1]["reason"] == "interrupted"


def test_sighup_stops_unless_ignored(tmp_path, tiny):
    model, opt = tiny
    previous = signal.getsignal(signal.SIGHUP)
    try:
        # The terminal gone: a stop at the boundary, as for Ctrl-C.
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        run = gradflow.Run(str(tmp_path / "a"), model=model, optimizer=opt, total_steps=5, checkpoint_at_end=False)
        os.kill(os.getpid(), signal.SIGHUP)
        assert run.should_stop
        tiny_step(model, opt, run, 0)
        run.close()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL
        stops = [r for r in records(str(tmp_path / "a")) if r.get("kind") == "stop"]
        assert len(stops) == 1 and stops[0]["message"].startswith("SIGHUP")
        # Under nohup SIGHUP arrives ignored: it stays so, and the run goes on.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        run = gradflow.Run(str(tmp_path / "b"), model=model, optimizer=opt, total_steps=5, checkpoint_at_end=False)
        os.kill(os.getpid(), signal.SIGHUP)
        assert not run.should_stop and signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        run.close()
        assert not [r for r in records(str(tmp_path / "b")) if r.get("kind") == "stop"]
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_resumed_run_flags_a_spike_as_the_uninterrupted_one_does(tmp_path, tiny):
    # The spike rule compares with the last 50 losses; a resume takes them back from the
    # checkpoint, so a bump right after it is flagged (it was not: the window started empty).
    model, opt = tiny
    losses = [1.0] * 12 + [5.0]
    def warnings(rundir):
        return [r["step"] for r in records(rundir) if r.get("kind") == "warning"]
    with gradflow.Run(str(tmp_path / "a"), model=model, optimizer=opt, total_steps=13, handle_signals=False,
                      checkpoint_at_end=False) as run:
        for loss in losses:
            run.step(loss=loss, tokens=10)
    rundir = str(tmp_path / "b")
    with gradflow.Run(rundir, model=model, optimizer=opt, total_steps=13, handle_signals=False) as run:
        for loss in losses[:12]:
            run.step(loss=loss, tokens=10)
        run.checkpoint()
        run.close(reason="interrupted")
    with gradflow.Run(rundir, model=model, optimizer=opt, total_steps=13, handle_signals=False, resume=True) as run:
        assert run.start_step == 12
        run.step(loss=losses[12], tokens=10)
    assert warnings(str(tmp_path / "a")) == [12] and warnings(rundir) == [12]


def test_system_record_and_spike(tmp_path, tiny):
    model, opt = tiny
    run = gradflow.Run(str(tmp_path), model=model, optimizer=opt, total_steps=20, handle_signals=False,
                       checkpoint_at_end=False, system_every=0)
    for s in range(12):
        run.step(loss=1.0 + 0.1 * (s % 2), tokens=10)  # 6 × 1.0 and 6 × 1.1: the median is 1.05
    run.step(loss=5.0, tokens=10)
    run.step(loss=float("nan"), tokens=10)
    run.close()
    rs = records(str(tmp_path))
    systems = [r for r in rs if r["type"] == "system"]
    assert len(systems) >= 13
    s = systems[0]
    assert list(s) == ["type", "step", "t", "cpu_percent", "rss_bytes", "threads", "ranks"]
    assert s["rss_bytes"] > 10_000_000 and s["threads"] >= 1 and s["ranks"] == 1 and s["cpu_percent"] >= 0
    steps = [r for r in rs if r["type"] == "step"]
    assert [r["spike"] for r in steps] == [False] * 12 + [True, True]
    warnings = [r for r in rs if r.get("kind") == "warning"]
    assert [(w["step"], w["message"]) for w in warnings] == [
        (12, "loss spike 5.000 > 1.2 × median of the previous 12 (1.050)"), (13, "loss is not finite (nan)")]


def test_uncaught_exception_closes_the_run_at_exit(tmp_path, tiny, capsys):
    """What Python does with an uncaught exception: sys.excepthook, then the atexit hooks."""
    model, opt = tiny
    run = gradflow.Run(str(tmp_path), model=model, optimizer=opt, total_steps=3, handle_signals=False,
                       checkpoint_at_end=False)
    run.step(loss=1.0)
    try:
        raise RuntimeError("out of data")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    try:
        gradflow.run._close_open_runs()
    finally:
        gradflow.run._uncaught.clear()
    assert "out of data" in capsys.readouterr().err  # the previous hook still prints the traceback
    end = records(str(tmp_path))[-1]
    assert end["type"] == "end" and end["reason"] == "failed" and end["message"] == "RuntimeError: out of data"
    assert run.closed


def test_arguments_are_checked_before_anything_is_created(tmp_path, tiny):
    model, opt = tiny
    out = tmp_path / "r"
    cases = [dict(total_steps=-5), dict(total_steps=2.7), dict(model="x"), dict(optimizer=object()),
             dict(refine="yes"), dict(data="file.txt"), dict(data=[{"name": "a"}]), dict(parent={"run": "a"}),
             dict(system_every="x"), dict(checkpoint=3)]
    for bad in cases:
        kwargs = dict(model=model, optimizer=opt, total_steps=5, handle_signals=False)
        kwargs.update(bad)
        with pytest.raises(gradflow.RunError, match=r"Run\(%s=\.\.\.\): expected" % next(iter(bad))):
            gradflow.Run(str(out), **kwargs)
        assert not out.exists(), bad
    for where in (None, ""):
        with pytest.raises(gradflow.RunError, match=r"Run\(out=\.\.\.\)"):
            gradflow.Run(where, total_steps=1, handle_signals=False)


def test_steps_go_forward_and_closing_checks_its_reason_first(tmp_path, tiny):
    model, opt = tiny
    run = gradflow.Run(str(tmp_path), model=model, optimizer=opt, total_steps=5, handle_signals=False)
    tiny_step(model, opt, run, 0)
    with pytest.raises(gradflow.RunError, match="step index 0 does not come after the last one recorded, 0"):
        run.step(loss=1.0, index=0)
    with pytest.raises(gradflow.RunError, match="step index must be a whole number"):
        run.step(loss=1.0, index=-3)
    with pytest.raises(gradflow.RunError, match=r"Run.step\(loss=...\): expected the step's loss"):
        run.step(loss=None)
    with pytest.raises(ValueError, match="event kind must be one of the format's kinds"):
        run.event("note", "my note")
    with pytest.raises(ValueError, match="end reason must be"):
        run.close(reason="weird")
    assert not run.closed and not any(n.endswith(".pt") for n in os.listdir(str(tmp_path)))
    run.close(reason="failed", message="given up")
    end = records(str(tmp_path))[-1]
    assert end["reason"] == "failed" and end["failure"] == "error" and [r["step"] for r in records(str(tmp_path))
                                                                         if r["type"] == "step"] == [0]


def test_the_header_names_each_parameter_groups_settings_where_they_differ(tmp_path, tiny):
    model, _ = tiny
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=1e-3)
    run = gradflow.Run(str(tmp_path), model=model, optimizer=opt, total_steps=1, handle_signals=False,
                       checkpoint_at_end=False)
    run.close()
    described = records(str(tmp_path))[0]["config"]["optimizer"]
    assert described["name"] == "AdamW" and described["weight_decay"] == 0.01  # torch's default, not used here
    assert described["groups"] == [{"parameters": sum(p.numel() for p in decay), "weight_decay": 0.1},
                                   {"parameters": sum(p.numel() for p in rest), "weight_decay": 0}]


def _recorded(out, model, opt, *, total_steps, steps, **options):
    """A run of ``steps`` tiny steps (of ``total_steps``), closed as a loop that stops there would."""
    with gradflow.Run(out, model=model, optimizer=opt, total_steps=total_steps, handle_signals=False, **options) as run:
        for i in range(steps):
            tiny_step(model, opt, run, i)


def test_resume_loads_the_latest_checkpoint_of_this_run_only(tmp_path, tiny):
    model, opt = tiny
    other = str(tmp_path / "other")
    _recorded(other, model, opt, total_steps=3, steps=3)
    mine = str(tmp_path / "mine")
    _recorded(mine, model, opt, total_steps=4, steps=2)  # stopped half way: a run to resume
    before = open(os.path.join(mine, "run.jsonl"), "rb").read()
    # A checkpoint of another run copied in: refused, whatever its step.
    os.rename(os.path.join(other, "ckpt-000003.pt"), os.path.join(mine, "ckpt-000003.pt"))
    with pytest.raises(gradflow.RunError, match="belongs to run .*, not to this folder's run"):
        gradflow.Run(mine, model=model, optimizer=opt, total_steps=4, handle_signals=False, resume=True)
    os.remove(os.path.join(mine, "ckpt-000003.pt"))
    assert open(os.path.join(mine, "run.jsonl"), "rb").read() == before
    # Past step 999,999 the names grow a digit: the latest is still found by its step, and a
    # checkpoint beyond the file's last step is refused. A writer's leftover temporary goes.
    import shutil
    shutil.copy(os.path.join(mine, "ckpt-000002.pt"), os.path.join(mine, "ckpt-1000000.pt"))
    open(os.path.join(mine, "ckpt-000005.pt.tmp"), "wb").close()
    state = torch.load(os.path.join(mine, "ckpt-1000000.pt"), weights_only=False)
    state["step"] = 1000000
    torch.save(state, os.path.join(mine, "ckpt-1000000.pt"))
    with pytest.raises(gradflow.RunError, match="latest checkpoint is at step 1000000 but the run file ends at step 2"):
        gradflow.Run(mine, model=model, optimizer=opt, total_steps=4, handle_signals=False, resume=True)
    assert not os.path.exists(os.path.join(mine, "ckpt-000005.pt.tmp"))
    os.remove(os.path.join(mine, "ckpt-1000000.pt"))
    run = gradflow.Run(mine, model=model, optimizer=opt, total_steps=4, handle_signals=False, resume=True)
    assert run.start_step == 2
    run.close()


def test_a_resume_is_refused_with_the_reason_it_cannot_go_on(tmp_path, tiny):
    model, opt = tiny
    done = str(tmp_path / "done")
    _recorded(done, model, opt, total_steps=2, steps=2)
    before = open(os.path.join(done, "run.jsonl"), "rb").read()
    fresh = TinyLM()
    weights = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(gradflow.RunError, match="completed all its 2 steps; there is nothing to resume"):
        gradflow.Run(done, model=fresh, total_steps=2, handle_signals=False, resume=True)
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in weights.items()), "refused before anything is loaded"
    half = str(tmp_path / "half")
    _recorded(half, model, opt, total_steps=4, steps=1, checkpoint_at_end=False)
    for bad in (5000, 2):  # beyond the total, beyond the file's last step
        with pytest.raises(gradflow.RunError, match="start_step=%d: expected the steps your checkpoint holds, from 0 "
                                                    "to 1 " % bad):
            gradflow.Run(half, model=model, optimizer=opt, total_steps=4, handle_signals=False, resume=True,
                         start_step=bad, checkpoint=lambda r, p: None)
    with pytest.raises(gradflow.RunError, match="a checkpoint function of your own needs start_step"):
        gradflow.Run(half, model=model, optimizer=opt, total_steps=4, handle_signals=False, resume=True,
                     checkpoint=lambda r, p: None)
    with pytest.raises(gradflow.RunError, match="needs model="):
        gradflow.Run(half, total_steps=4, handle_signals=False, resume=True)
    with pytest.raises(gradflow.RunError, match="found no ckpt-"):
        gradflow.Run(half, model=model, optimizer=opt, total_steps=4, handle_signals=False, resume=True)
    assert open(os.path.join(done, "run.jsonl"), "rb").read() == before
    run = gradflow.Run(half, model=model, optimizer=opt, total_steps=4, handle_signals=False, resume=True,
                       start_step=1, checkpoint=lambda r, p: None)
    assert run.steps_done == 1
    run.close()
