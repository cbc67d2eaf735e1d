"""gradflow.Run's lifecycle: end reasons (completed, interrupted, failed by exception or at exit),
signals, the system record, spikes."""

import json
import os
import signal
import sys

import pytest
import torch

import gradflow

from conftest import tiny_step

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


def test_system_record_and_spike(tmp_path, tiny):
    model, opt = tiny
    run = gradflow.Run(str(tmp_path), model=model, optimizer=opt, total_steps=20, handle_signals=False,
                       checkpoint_at_end=False, system_every=0)
    for s in range(12):
        run.step(loss=1.0, tokens=10)
    run.step(loss=5.0, tokens=10)
    run.close()
    rs = records(str(tmp_path))
    systems = [r for r in rs if r["type"] == "system"]
    assert len(systems) >= 13
    s = systems[0]
    assert list(s) == ["type", "step", "t", "cpu_percent", "rss_bytes", "threads", "ranks"]
    assert s["rss_bytes"] > 10_000_000 and s["threads"] >= 1 and s["ranks"] == 1 and s["cpu_percent"] >= 0
    steps = [r for r in rs if r["type"] == "step"]
    assert [r["spike"] for r in steps] == [False] * 12 + [True]
    warnings = [r for r in rs if r.get("kind") == "warning"]
    assert len(warnings) == 1 and warnings[0]["step"] == 12 and "loss spike 5.000" in warnings[0]["message"]


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
