"""The command channel: exactly once (also across a resume), torn lines, garbage, wrong run,
permissions."""

import json
import os
import random
import stat
import threading
import time

import pytest
import torch

import gradflow
from gradflow import commands
from gradflow.commands import CommandChannel, Command, Refusal, parse_line

from conftest import REPO, TinyLM, tiny_step


def events(rundir):
    out = []
    with open(os.path.join(rundir, "run.jsonl"), "rb") as f:
        for raw in f:
            try:
                r = json.loads(raw)
            except ValueError:
                continue
            if r.get("type") == "event":
                out.append(r)
    return out


def attach_events(rundir):
    return [e for e in events(rundir) if e["source"] == "attach"]


def line(run_id, command, id="c-1", **members):
    obj = {"id": id, "run": run_id, "issuer": {"user": "u", "host": "h", "pid": 1}, "t": 1.5, "command": command}
    obj.update(members)
    return (json.dumps(obj) + "\n").encode()


def test_file_is_created_0600_and_read_whole_lines_only(tmp_path):
    rundir = str(tmp_path)
    old = os.umask(0)
    try:
        ch = CommandChannel(rundir, "rid")
    finally:
        os.umask(old)
    path = os.path.join(rundir, "commands.jsonl")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ch.poll() == []
    whole = line("rid", "stop", id="a")
    torn = line("rid", "pause", id="b")
    with open(path, "ab") as f:
        f.write(whole + torn[:10])
    got = ch.poll()
    assert [type(x) for x in got] == [Command] and got[0].name == "stop" and got[0].line == 1
    assert ch.poll() == []  # the torn line waits
    with open(path, "ab") as f:
        f.write(torn[10:])
    got = ch.poll()
    assert len(got) == 1 and got[0].name == "pause" and got[0].line == 2
    with open(path, "ab") as f:
        f.write(whole)  # the same id again: never handed out twice, refused under its line
    again = ch.poll()
    assert [(type(x), x.id, x.line) for x in again] == [(Refusal, None, 3)] and "answered already" in again[0].message
    assert ch.poll() == []
    ch.close()


def test_parse_line_reasons():
    ok = parse_line(line("rid", "set_weight", axis="context", band=2, value=1.5)[:-1], 3, "rid")
    assert isinstance(ok, Command) and ok.members == {"axis": "context", "band": 2, "value": 1.5}
    cases = {
        b"not json": "commands.jsonl:3: not a JSON object",
        b"[1,2]": "commands.jsonl:3: not a JSON object",
        b"\xff\xfe": "commands.jsonl:3: not UTF-8",
        b"": "commands.jsonl:3: empty line",
        b'{"id":""}': "\"id\" must be a string of 1 to 128 bytes",
        line("rid", "fly")[:-1]: "unknown command \"fly\"",
        line("other", "stop")[:-1]: "command for run \"other\", but this run is \"rid\"",
        line("rid", "set_weight", axis="context", band=1.5, value=1)[:-1]: "\"band\" must be an integer",
        line("rid", "set_weight", axis="width", band=1, value=1)[:-1]: "unknown axis \"width\"",
        line("rid", "set_weight", axis="context", band=1)[:-1]: "lacks member \"value\"",
        line("rid", "lr_scale", value=0)[:-1]: "must be above 0",
        line("rid", "lr_scale", value=1e300)[:-1]: "at most 1000",
        line("rid", "set_adaptive", axis="time", adaptive=1)[:-1]: "\"adaptive\" must be a boolean",
        b'{"id":"x","run":"rid","issuer":{"user":"u","host":"h","pid":1},"t":NaN,"command":"stop"}': "NaN is not JSON",
        b'{"id":"x","run":"rid","issuer":{"user":"u","host":"h","pid":1},"t":1e999,"command":"stop"}': "\"t\" must be a number",
        b'{"id":"x","id":"y"}': "duplicate member",
    }
    for raw, reason in cases.items():
        r = parse_line(raw, 3, "rid")
        assert isinstance(r, Refusal), raw
        assert r.message.startswith("commands.jsonl:3: ") and reason in r.message, (raw, r.message)
    assert parse_line(line("other", "stop", id="q")[:-1], 1, "rid").id == "q"
    assert parse_line(b"garbage", 1, "rid").id is None


def test_random_bytes_never_crash(tmp_path, tiny):
    model, opt = tiny
    rng = random.Random(7)
    run = gradflow.Run(str(tmp_path), model=model, optimizer=opt, total_steps=2, handle_signals=False,
                       checkpoint_at_end=False)
    with open(os.path.join(str(tmp_path), "commands.jsonl"), "ab") as f:
        for _ in range(40):
            f.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60))).replace(b"\n", b"") + b"\n")
        f.write(b'{"id":"x","run":"' + run.run_id.encode() + b'","issuer":{},"t":1,"command":"stop"}\n')
        f.write(bytes(b for b in range(256) if b != 10))  # a torn last line of junk
    tiny_step(model, opt, run, 0)
    got = attach_events(str(tmp_path))
    assert len(got) == 41 and all(e["kind"] == "refused" for e in got)
    assert all(e["message"].startswith("commands.jsonl:%d: " % (i + 1)) for i, e in enumerate(got))
    assert not run.should_stop
    run.close()


def _kill(run):
    """A simulated kill -9: no end record; the run file and the commands stay."""
    run.writer.close()
    run.channel.close()
    for h in run._hook_handles:
        h.remove()
    gradflow.run._open_runs.discard(run)


def test_commands_applied_exactly_once_also_across_resume(tmp_path, tiny):
    model, opt = tiny
    rundir = str(tmp_path)
    run = gradflow.Run(rundir, model=model, optimizer=opt, total_steps=10, handle_signals=False)
    first = commands.send(rundir, "lr_scale", value=0.5)
    tiny_step(model, opt, run, 0)
    assert run.lr_scale == 0.5
    lr = [g["lr"] for g in opt.param_groups]
    tiny_step(model, opt, run, 1)
    assert [g["lr"] for g in opt.param_groups] == lr  # the schedule's rate is restored after each step
    steps = [json.loads(l) for l in open(os.path.join(rundir, "run.jsonl")) if '"type":"step"' in l]
    assert steps[0]["lr"] == 0.01 and steps[1]["lr"] == 0.005
    ckpt = run.checkpoint()  # at step 2: holds `first`
    wrong = commands.send(rundir, "stop", run="another-run")
    tiny_step(model, opt, run, 2)
    assert not run.should_stop
    mid = commands.send(rundir, "lr_scale", value=0.75)
    tiny_step(model, opt, run, 3)  # applied at step 4, after the checkpoint
    assert run.lr_scale == 0.75
    _kill(run)
    later = commands.send(rundir, "lr_scale", value=0.25)

    model2 = TinyLM()
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2)
    run2 = gradflow.Run(rundir, model=model2, optimizer=opt2, total_steps=10, resume=True, handle_signals=False)
    assert run2.run_id == run.run_id and run2.start_step == 2 and os.path.basename(ckpt) == "ckpt-000002.pt"
    assert run2.lr_scale == 0.5  # restored from the checkpoint
    saved = torch.load(ckpt, weights_only=False)["model"]
    assert all(torch.equal(saved[k], v) for k, v in model2.state_dict().items())  # the checkpoint's weights
    tiny_step(model2, opt2, run2, 2)  # boundary 3: `later` is new
    assert run2.lr_scale == 0.25
    tiny_step(model2, opt2, run2, 3)  # boundary 4: `mid`'s effect was lost with the kill: applied again
    assert run2.lr_scale == 0.75
    run2.close()
    answers = attach_events(rundir)
    by_id = {}
    for e in answers:
        by_id.setdefault(e.get("command_id"), []).append((e["kind"], e["step"]))
    assert by_id == {first: [("lr", 1)], wrong: [("refused", 3)], mid: [("lr", 4), ("lr", 4)], later: [("lr", 3)]}
    again = [e for e in answers if e.get("command_id") == mid][1]
    from gradflow.run import APPLIED_AGAIN
    assert APPLIED_AGAIN in again["message"]
    with open(os.path.join(REPO, "Sources", "Training", "Trainer+Channel.swift")) as f:
        assert '"%s"' % APPLIED_AGAIN in f.read()  # the Swift trainer's words
    kinds = [e["kind"] for e in events(rundir)]
    assert kinds.count("resume-run") == 1
    r = gradflow.wait_for_answer(rundir, later, timeout=1)
    assert r["old"] == 0.5 and r["new"] == 0.25


def test_waiting_for_an_answer_from_a_run_that_ended_says_so_at_once(tmp_path, tiny):
    model, opt = tiny
    rundir = str(tmp_path)
    with gradflow.Run(rundir, model=model, optimizer=opt, total_steps=1, handle_signals=False,
                      checkpoint_at_end=False) as run:
        tiny_step(model, opt, run, 0)
    cid = commands.send(rundir, "pause")
    started = time.monotonic()
    with pytest.raises(EOFError, match="the run ended \\(completed, step 1\\) without answering command"):
        gradflow.wait_for_answer(rundir, cid, timeout=20)
    assert time.monotonic() - started < 15, "said at once, not after the 20 s timeout"


def test_group_writable_file_is_refused(tmp_path, tiny):
    model, opt = tiny
    path = tmp_path / "commands.jsonl"
    path.write_bytes(b"")
    os.chmod(str(path), 0o620)
    run = gradflow.Run(str(tmp_path), model=model, optimizer=opt, total_steps=2, handle_signals=False,
                       checkpoint_at_end=False)
    commands.send(str(tmp_path), "stop")
    tiny_step(model, opt, run, 0)
    tiny_step(model, opt, run, 1)
    warnings = [e for e in events(str(tmp_path)) if e["kind"] == "warning"]
    assert len(warnings) == 1 and "writable by group" in warnings[0]["message"]
    assert not run.should_stop and stat.S_IMODE(os.stat(str(path)).st_mode) == 0o620
    run.close()


def test_a_resume_says_which_lost_commands_it_cannot_apply_again(tmp_path, tiny):
    # Applied after the checkpoint, then the commands file was emptied before the resume: the
    # command cannot be applied again, and the resume says so (the Swift trainer's words).
    model, opt = tiny
    rundir = str(tmp_path)
    run = gradflow.Run(rundir, model=model, optimizer=opt, total_steps=10, handle_signals=False)
    tiny_step(model, opt, run, 0)
    run.checkpoint()  # at step 1
    mid = commands.send(rundir, "lr_scale", value=0.75)
    tiny_step(model, opt, run, 1)  # applied at step 2
    _kill(run)
    open(os.path.join(rundir, "commands.jsonl"), "wb").close()
    run2 = gradflow.Run(rundir, model=TinyLM(), optimizer=None, total_steps=10, resume=True, handle_signals=False)
    run2.step(loss=1.0, tokens=1)
    run2.step(loss=1.0, tokens=1)
    assert run2.lr_scale == 1.0
    run2.close()
    from gradflow.run import LOST_COMMAND_MISSING
    warnings = [e["message"] for e in attach_events(rundir) if e["kind"] == "warning"]
    assert warnings == [LOST_COMMAND_MISSING % {"id": mid, "step": 2}]
    with open(os.path.join(REPO, "Sources", "Training", "Trainer+Channel.swift")) as f:
        swift = f.read()
    for piece in LOST_COMMAND_MISSING.split("%"):  # the Swift trainer's words, between the values
        words = piece.split(")s", 1)[-1]
        assert words.replace('"', '\\"') in swift, words


def test_the_lr_scale_bound_is_the_swift_formats():
    with open(os.path.join(REPO, "Sources", "RunFormat", "Commands.swift")) as f:
        assert "maxLearningRateScale = %r" % commands.MAX_LR_SCALE in f.read()


def test_a_checkpoint_that_fails_is_answered_once_by_a_refusal(tmp_path, tiny):
    model, opt = tiny
    rundir = str(tmp_path)

    def full_disk(run, path):
        raise OSError("disk full")
    run = gradflow.Run(rundir, model=model, optimizer=opt, total_steps=3, handle_signals=False,
                       checkpoint=full_disk, checkpoint_at_end=False)
    c = commands.send(rundir, "checkpoint")
    tiny_step(model, opt, run, 0)
    run.close()
    answers = [e for e in events(rundir) if e.get("command_id") == c]
    assert [e["kind"] for e in answers] == ["refused"] and "disk full" in answers[0]["message"]


def test_pause_holds_the_loop_until_resume(tmp_path, tiny):
    model, opt = tiny
    rundir = str(tmp_path)
    run = gradflow.Run(rundir, model=model, optimizer=opt, total_steps=3, handle_signals=False,
                       checkpoint_at_end=False, pause_poll=0.02)
    p = commands.send(rundir, "pause")
    c = commands.send(rundir, "checkpoint")

    def later():
        gradflow.wait_for_answer(rundir, c, timeout=20)
        commands.send(rundir, "resume")

    t = threading.Thread(target=later)
    t.start()
    tiny_step(model, opt, run, 0)  # returns only after the resume
    t.join()
    commands.send(rundir, "stop")
    tiny_step(model, opt, run, 1)
    assert run.should_stop and not run.paused
    run.close()
    kinds = [(e["kind"], e["source"]) for e in events(rundir)]
    assert [k for k, s in kinds if s == "attach"] == ["pause", "command", "resume", "stop"]
    recs = [json.loads(l)["type"] for l in open(os.path.join(rundir, "run.jsonl"))]
    assert recs.count("checkpoint") == 1 and recs[-1] == "end"
    assert json.loads(open(os.path.join(rundir, "run.jsonl")).readlines()[-1])["reason"] == "interrupted"


def test_weight_commands_without_refiner_and_twins_are_refused(tmp_path, tiny):
    model, opt = tiny
    rundir = str(tmp_path)
    run = gradflow.Run(rundir, model=model, optimizer=opt, total_steps=2, handle_signals=False,
                       checkpoint_at_end=False)
    commands.send(rundir, "set_weight", axis="context", band=0, value=2.0)
    commands.send(rundir, "set_adaptive", axis="depth", adaptive=True)
    commands.send(rundir, "open_twin")
    tiny_step(model, opt, run, 0)
    run.close()
    got = attach_events(rundir)
    assert [e["kind"] for e in got] == ["refused"] * 3
    assert "no refiner" in got[0]["message"] and "twins" in got[2]["message"]


def test_a_command_turns_an_off_axis_on_or_says_why_not(tmp_path, tiny):
    from gradflow.refine import Refiner
    from gradflow.run import TIME_AXIS_STARTED
    model, opt = tiny   # one parameter group: the depth axis cannot set its rates per group
    refiner = Refiner(model)
    rundir = str(tmp_path)
    run = gradflow.Run(rundir, model=model, optimizer=opt, refine=refiner, total_steps=3, handle_signals=False,
                       checkpoint_at_end=False)
    tiny_step(model, opt, run, 0)
    commands.send(rundir, "set_weight", axis="time", band=2, value=2.0)
    commands.send(rundir, "set_adaptive", axis="depth", adaptive=True)
    commands.send(rundir, "set_weight", axis="time", band=0, value=0.5)
    tiny_step(model, opt, run, 1)
    tiny_step(model, opt, run, 2)
    run.close()
    weight, refused, again = attach_events(rundir)
    assert weight["kind"] == "weight" and weight["axis"] == "time" and weight["step"] == 2
    assert weight["message"] == TIME_AXIS_STARTED and weight["old"] == 1 and weight["new"] == 2
    assert refused["kind"] == "refused" and "depth axis cannot be turned on" in refused["message"]
    assert again["kind"] == "weight" and again["message"] == ""   # the axis was on already
    # The Swift trainer's words, which the dashboard shows for either trainer.
    with open(os.path.join(REPO, "Sources", "Training", "RefinementEngine.swift")) as f:
        assert '"%s"' % TIME_AXIS_STARTED in f.read()
    steps = [json.loads(l) for l in open(os.path.join(rundir, "run.jsonl")) if '"type":"step"' in l]
    assert ["time" in s["axes"] for s in steps] == [False, False, True]
    assert steps[2]["axes"]["time"]["mode"] == "manual" and steps[2]["axes"]["time"]["weight"] == [0.5, 1, 2]
    assert steps[2]["axes"]["depth"]["mode"] == "off"


def test_axes_turned_on_after_the_checkpoint_are_turned_on_again_at_the_same_step_on_resume(tmp_path):
    from gradflow.refine import Refiner

    def replica():
        torch.manual_seed(0)
        model = TinyLM()
        refiner = Refiner(model)   # every axis off
        return model, refiner, torch.optim.AdamW(refiner.param_groups(weight_decay=0.1), lr=1e-2)

    def run_in(rundir, model, refiner, opt, **kw):
        return gradflow.Run(rundir, model=model, optimizer=opt, refine=refiner, total_steps=6, handle_signals=False,
                            checkpoint_at_end=False, **kw)

    def turn_on(rundir):
        commands.send(rundir, "set_weight", axis="time", band=2, value=2.0)
        commands.send(rundir, "set_adaptive", axis="depth", adaptive=True)

    # Uninterrupted: both axes turned on at step 3.
    whole = str(tmp_path / "whole")
    model, refiner, opt = replica()
    run = run_in(whole, model, refiner, opt)
    for s in range(2):
        tiny_step(model, opt, run, s)
    turn_on(whole)
    for s in range(2, 6):
        tiny_step(model, opt, run, s)
    run.close()
    # The same with a checkpoint at step 2, killed after the axes came on, resumed from the checkpoint.
    cut = str(tmp_path / "cut")
    model2, refiner2, opt2 = replica()
    run2 = run_in(cut, model2, refiner2, opt2)
    for s in range(2):
        tiny_step(model2, opt2, run2, s)
    run2.checkpoint()
    turn_on(cut)
    for s in range(2, 5):
        tiny_step(model2, opt2, run2, s)
    assert refiner2.mode("time") == "manual" and refiner2.mode("depth") == "adaptive"
    _kill(run2)
    model3, refiner3, opt3 = replica()
    run3 = run_in(cut, model3, refiner3, opt3, resume=True)
    assert run3.start_step == 2 and refiner3.mode("time") == "off"
    for s in range(2, 6):
        tiny_step(model3, opt3, run3, s)
    run3.close()
    assert refiner3.mode("time") == "manual" and refiner3.mode("depth") == "adaptive"
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), model3.parameters()))

    def losses(rundir):
        out = {}
        for l in open(os.path.join(rundir, "run.jsonl")):
            r = json.loads(l)
            if r["type"] == "step":
                out[r["step"]] = r["loss"]   # the resumed run's record of a step replaces the lost one
        return out
    assert losses(whole) == losses(cut)
    again = [e for e in attach_events(cut) if "applied again" in e.get("message", "")]
    assert [(e["kind"], e["step"]) for e in again] == [("weight", 3), ("mode", 3)]


def test_a_reused_id_in_the_first_read_is_refused_as_the_swift_reader_does(tmp_path):
    ch = CommandChannel(str(tmp_path), "rid", answered_ids={"old"})
    with open(os.path.join(str(tmp_path), "commands.jsonl"), "ab") as f:
        f.write(line("rid", "stop", id="old") + line("rid", "stop", id="a") + line("rid", "pause", id="a"))
    got = ch.poll()  # "old" was answered by the run file: passed; the second "a" is refused
    assert [(type(x).__name__, x.id, x.line) for x in got] == [("Command", "a", 2), ("Refusal", None, 3)]
    ch.close()


def test_a_reused_id_is_refused_under_its_line_and_only_once_across_a_resume(tmp_path, tiny):
    model, opt = tiny
    rundir = str(tmp_path)
    run = gradflow.Run(rundir, model=model, optimizer=opt, total_steps=10, handle_signals=False)
    commands.send(rundir, "lr_scale", value=0.5, id="dupid")
    tiny_step(model, opt, run, 0)
    run.checkpoint()
    commands.send(rundir, "lr_scale", value=4.0, id="dupid")  # the sender reused its id
    tiny_step(model, opt, run, 1)
    assert run.lr_scale == 0.5
    got = attach_events(rundir)
    assert [(e["kind"], e.get("command_id")) for e in got] == [("lr", "dupid"), ("refused", None)]
    assert got[1]["message"] == 'commands.jsonl:2: id "dupid" was answered already (an id is used once); not applied again'
    _kill(run)
    run2 = gradflow.Run(rundir, model=TinyLM(), optimizer=torch.optim.AdamW(TinyLM().parameters(), lr=1e-2),
                        total_steps=10, resume=True, handle_signals=False)
    tiny_step(run2.model, run2.optimizer, run2, 1)
    run2.close()
    assert len(attach_events(rundir)) == 2 and run2.lr_scale == 0.5  # neither line answered again


def test_the_adaptive_policies_coming_into_force_is_an_event_in_the_swift_trainers_words(tmp_path):
    from gradflow.refine import Refiner
    from gradflow.run import ADAPTIVE_IN_FORCE
    torch.manual_seed(0)
    model = TinyLM()
    refiner = Refiner(model, axes=("depth",), adaptive=("depth",), policy_warmup=3)
    opt = torch.optim.AdamW(refiner.param_groups(), lr=1e-2)
    rundir = str(tmp_path)
    with gradflow.Run(rundir, model=model, optimizer=opt, refine=refiner, total_steps=5, handle_signals=False,
                      checkpoint_at_end=False) as run:
        for i in range(5):
            tiny_step(model, opt, run, i)
    adaptive = [e for e in events(rundir) if e["kind"] == "adaptive"]
    assert [(e["step"], e["source"], e["message"]) for e in adaptive] == [(3, "policy", ADAPTIVE_IN_FORCE)]
    with open(os.path.join(REPO, "Sources", "Training", "Trainer.swift")) as f:
        assert '"%s"' % ADAPTIVE_IN_FORCE in f.read()


def test_a_commands_file_removed_replaced_or_cut_short_is_followed(tmp_path):
    rundir = str(tmp_path)
    ch = CommandChannel(rundir, "rid")
    path = os.path.join(rundir, "commands.jsonl")

    def append(raw):  # private whatever the umask, as a sender makes it
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, raw)
        finally:
            os.close(fd)

    append(line("rid", "stop", id="a1"))
    assert [c.id for c in ch.poll()] == ["a1"] and ch.notices == []
    os.remove(path)
    append(line("rid", "stop", id="b1"))  # a sender makes a new file
    assert [(c.id, c.line) for c in ch.poll()] == [("b1", 1)]
    assert ch.notices.pop() == ("commands.jsonl was replaced (or removed and made again): commands are read from the "
                                "new file's first line")
    os.remove(path)  # and nothing there yet: a private one is made, as at the start
    assert ch.poll() == [] and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ch.notices.pop() == "commands.jsonl was removed (a new one was made): commands are read from the new file's first line"
    tmp = path + ".new"
    with open(tmp, "wb") as f:
        f.write(line("rid", "stop", id="c1"))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    assert [c.id for c in ch.poll()] == ["c1"] and ch.notices.pop().startswith("commands.jsonl was replaced")
    os.truncate(path, 0)
    assert ch.poll() == [] and ch.notices.pop().startswith("commands.jsonl was cut short")
    append(line("rid", "stop", id="c1") + line("rid", "stop", id="d1"))
    got = ch.poll()  # c1 was answered already: refused under its line; d1 is new
    assert [(type(x).__name__, x.id, x.line) for x in got] == [("Refusal", None, 1), ("Command", "d1", 2)]
    assert ch.poll() == [] and ch.notices == []
    # Rewritten in place (`echo ... > commands.jsonl`) to more than was read: read again from line 1.
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(line("rid", "stop", id="e1-with-a-longer-id") + line("rid", "pause", id="e2-with-a-longer-id")
                + b"not json\n")
    got = ch.poll()
    assert [(type(x).__name__, x.id, x.line) for x in got] == [("Command", "e1-with-a-longer-id", 1),
                                                                ("Command", "e2-with-a-longer-id", 2),
                                                                ("Refusal", None, 3)]
    assert ch.notices.pop() == "commands.jsonl was rewritten: commands are read again from its first line"
    # Cut and refilled past what was read before the next poll, with lines of the same length
    # (one sender's): the first bytes differ, so it is noticed all the same.
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(line("rid", "stop", id="f1-with-a-longer-id") + line("rid", "pause", id="f2-with-a-longer-id")
                + line("rid", "stop", id="f3-with-a-longer-id") + b"not json\n")
    got = ch.poll()
    assert [x.id for x in got[:3]] == ["f1-with-a-longer-id", "f2-with-a-longer-id", "f3-with-a-longer-id"]
    assert ch.notices.pop().endswith("was rewritten: commands are read again from its first line")
    ch.close()


def test_send_does_not_glue_its_line_onto_a_dead_senders_fragment(tmp_path):
    rundir = str(tmp_path)
    ch = CommandChannel(rundir, "rid")
    with open(os.path.join(rundir, "commands.jsonl"), "ab") as f:
        f.write(b'{"id":"frag')
    cid = commands.send(rundir, "stop", run="rid")
    got = ch.poll()
    assert [(type(x).__name__, x.line) for x in got] == [("Refusal", 1), ("Command", 2)] and got[1].id == cid
    ch.close()


def test_a_checkpoint_lists_only_the_commands_whose_effect_it_holds(tmp_path, tiny):
    # A checkpoint command and an lr change read in the same poll: the checkpoint is written
    # before the lr change is applied, so it must not list it (a resume then applies it again).
    model, opt = tiny
    rundir = str(tmp_path)
    run = gradflow.Run(rundir, model=model, optimizer=opt, total_steps=10, handle_signals=False)
    ckpt = commands.send(rundir, "checkpoint")
    lr = commands.send(rundir, "lr_scale", value=0.5)
    tiny_step(model, opt, run, 0)
    assert run.lr_scale == 0.5
    saved = torch.load(os.path.join(rundir, "ckpt-000001.pt"), weights_only=False)
    # Nor its own command: it is answered once the checkpoint is written (it changes no state a
    # resume restores, so it is not applied again either).
    assert saved["lr_scale"] == 1.0 and lr not in saved["commands"] and ckpt not in saved["commands"]
    _kill(run)
    run2 = gradflow.Run(rundir, model=TinyLM(), optimizer=torch.optim.AdamW(TinyLM().parameters(), lr=1e-2),
                        total_steps=10, resume=True, handle_signals=False)
    assert run2.lr_scale == 0.5  # applied again at the step it was first applied at
    held = run2.run_state()["commands"]
    assert lr in held
    tiny_step(run2.model, run2.optimizer, run2, 1)
    run2.close()
    assert [e["kind"] for e in events(rundir) if e.get("command_id") == ckpt] == ["command"], "answered once"


def test_a_resume_ends_with_the_figures_of_the_steps_it_keeps(tmp_path):
    # Killed after an evaluation at step 4; resumed from step 2: that evaluation and the steps
    # after 2 no longer count, so the end record's best validation loss is step 2's.
    rundir = str(tmp_path)
    run = gradflow.Run(rundir, total_steps=10, handle_signals=False, checkpoint=lambda r, p: None)
    for i in range(4):
        run.step(loss=5.0 - i, tokens=1)
        if i in (1, 3):
            run.eval({"val:x": 3.0 if i == 1 else 1.0})
    _kill(run)
    run2 = gradflow.Run(rundir, total_steps=10, handle_signals=False, resume=True, start_step=2,
                        checkpoint=lambda r, p: None)
    assert run2.best_val_loss == 3.0 and run2.last_loss == 4.0
    run2.close()
    end = json.loads(open(os.path.join(rundir, "run.jsonl"), "rb").read().splitlines()[-1])
    assert end["type"] == "end" and end["best_val_loss"] == 3.0
