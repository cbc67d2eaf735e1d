"""The run-file writer: values, key order (RunFileFields.swift), creation and resume rules."""

import json
import math
import os
import random
import re
import shutil
import struct
import time

import pytest

from conftest import REPO
from gradflow import runfile
from gradflow import _json
from gradflow._json import F32, encode, escape_string

# Writing order of every record's keys (Sources/Telemetry/RunFile/RunFileFields.swift and
# docs/FORMAT.md 1.3: run_id after config, command_id after source).
HEADER = ["type", "schema", "run_name", "preset", "parameters", "total_steps", "seed", "threads", "ranks",
          "start_time", "start_iso", "data", "axes", "config", "run_id", "parent"]
STEP = ["type", "step", "t", "loss", "lr", "grad_norm", "clip_scale", "tokens_per_s", "step_ms", "axes",
        "context_energy", "attention_mass", "attention_mass_by_head", "oscillation", "spike", "guard_fallbacks", "twin"]
EVAL = ["type", "step", "t", "domains", "loss_by_position", "context_gain", "sample_prompt", "sample"]
EVENT = ["type", "step", "t", "kind", "axis", "band", "layer", "old", "new", "source", "command_id", "message"]
CHECKPOINT = ["type", "step", "t", "path", "bytes", "ms"]
END = ["type", "step", "t", "reason", "failure", "final_loss", "best_val_loss", "message"]
SYSTEM = ["type", "step", "t", "cpu_percent", "rss_bytes", "threads", "ranks", "gpu_memory_bytes", "gpu_util_percent"]


def keys_in_order(obj, table):
    keys = list(json.loads(encode(obj)).keys())
    assert keys == [k for k in table if k in keys], keys
    return keys


def test_numbers():
    assert encode(0.1) == "0.1"
    assert encode(2.5e-05) == "2.5e-05"
    assert encode(1e20) == "1e+20"
    assert encode(85.0) == "85"
    assert encode(-3.0) == "-3"
    assert encode(float("nan")) == "null" and encode(float("-inf")) == "null"
    assert encode(F32(0.1)) == "0.1"
    assert encode(F32(1e-9)) == "1e-09"
    assert encode(F32(float("inf"))) == "null"
    assert encode(F32(1e39)) == "null"  # beyond float32
    for x in (0.2533421, 3.14159265358979, 1.0 / 3.0, 123456.789, 7e-42):
        text = encode(F32(x))
        f32 = struct.unpack("<f", struct.pack("<f", x))[0]
        assert struct.unpack("<f", struct.pack("<f", float(text)))[0] == f32, (x, text)
        assert len(text.replace("-", "").replace(".", "").split("e")[0]) <= 9


def test_float32_text_is_the_shortest_that_reads_back():
    # The writer starts its search at 6 digits (normal floats); check it against the full search
    # from 1 digit on random bit patterns, random magnitudes (subnormals included) and short decimals.
    def shortest(v):
        for digits in range(1, 10):
            s = "%.*g" % (digits, v)
            if struct.unpack("<f", struct.pack("<f", float(s)))[0] == v:
                return s

    rng = random.Random(7)
    values, expected = [], []
    for _ in range(20000):
        k = rng.random()
        if k < 0.4:
            x = struct.unpack("<f", struct.pack("<I", rng.getrandbits(32)))[0]
        elif k < 0.7:
            x = rng.uniform(-1, 1) * 10.0 ** rng.randint(-45, 38)
        else:
            x = round(rng.uniform(0, 2), rng.randint(0, 7))
        v = struct.unpack("<f", struct.pack("<f", x))[0] if math.isfinite(x) and abs(x) < 3e38 else None
        if v is None or not math.isfinite(v) or (v == int(v) and abs(v) < 1e16):
            continue
        assert encode(F32(x)) == shortest(v), x
        values.append(F32(x))
        expected.append(shortest(v))
    # Many at once (a step record), out-of-range and special values among them.
    values += [F32(1e39), F32(float("nan")), F32(-2.0), F32(1e-45)]
    expected += ["null", "null", "-2", "1e-45"]
    assert encode(values) == "[" + ",".join(expected) + "]"


def test_the_c_text_search_equals_the_python_definition():
    # gradflow/_text.c restates _json._float32_texts for speed; encode() uses it where it was built.
    if _json._f32_texts_c is None:
        assert os.environ.get("GRADFLOW_REQUIRE_FUSED") != "1", "pip install ./python did not build gradflow._text"
        pytest.skip("the C module gradflow._text was not built")
    assert _json.float32_texts is _json._f32_texts_c
    rng = random.Random(11)
    values = [0.0, -0.0, 1.0, -3.0, 1e16, 1e17, -1e17, 3.4028234e38, 3.5e38, 1e39, -1e39, float("inf"),
              float("-inf"), float("nan"), 1e-45, 1.4e-45, 1e-40, 2.0 ** -126, 2.0 ** -127, 0.1, 1 / 3, 16777217.0,
              1e20, 2.5e-05, F32(0.25), True, 7]
    for _ in range(100000):
        k = rng.random()
        if k < 0.4:
            values.append(struct.unpack("<f", struct.pack("<I", rng.getrandbits(32)))[0])
        elif k < 0.7:
            values.append(rng.uniform(-1, 1) * 10.0 ** rng.randint(-46, 39))
        else:
            values.append(round(rng.uniform(-2, 2), rng.randint(0, 8)))
    assert _json._f32_texts_c(values) == _json._float32_texts(values)
    assert _json._f32_texts_c(()) == []
    with pytest.raises(TypeError):
        _json._f32_texts_c([1.0, "x"])


def test_measurements_keep_a_decimal_point_in_a_locale_with_a_decimal_comma(tmp_path):
    # The C module formats and parses with Python's own locale-independent conversions: in a
    # process whose LC_NUMERIC writes "0,1" the record must still be JSON.
    import subprocess
    import sys
    made = subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", str(tmp_path / "de_DE.UTF-8")],
                          capture_output=True, text=True) if shutil.which("localedef") else None
    if made is None or not (tmp_path / "de_DE.UTF-8").exists():
        pytest.skip("no localedef or no de_DE locale source to build a decimal-comma locale")
    code = ("import locale, sys; locale.setlocale(locale.LC_ALL, 'de_DE.UTF-8');"
            "assert locale.localeconv()['decimal_point'] == ',';"
            "from gradflow._json import F32, encode;"
            "sys.stdout.write(encode({'x': F32(0.1), 'y': [F32(1.5), F32(2.5e-05), F32(3.0)]}))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, LOCPATH=str(tmp_path)),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == '{"x":0.1,"y":[1.5,2.5e-05,3]}'


def test_strings():
    assert escape_string('a"b\\c\nd\te\r\x01\x7f') == '"a\\"b\\\\c\\nd\\te\\r\\u0001\\u007f"'
    assert escape_string("β .90 – ok") == '"β .90 – ok"'
    assert escape_string("\ud800x") == '"\ufffdx"'
    assert json.loads(encode({"s": "\x00\x1f\x7f"})) == {"s": "\x00\x1f\x7f"}


def test_key_order_of_every_record():
    h = runfile.header(run_name="r", preset="custom", parameters=10, total_steps=5, seed=2**64 - 1, threads=2,
                       start_time=1796600000.25, data=[runfile.data_source(__file__, training=True)],
                       axes=[runfile.axis_info("context", [8], [runfile.band_info("local", "0–8", 0.05, 10),
                                                                 runfile.band_info("long", "9–31", 0.05, 10)])],
                       config={"lr": 0.003}, run_id="abc", ranks=2, parent={"run": "p", "step": 3, "checkpoint": "c"})
    assert keys_in_order(h, HEADER) == HEADER
    assert json.loads(encode(h))["seed"] == 2**64 - 1
    assert json.loads(encode(h))["start_iso"] == "2026-12-06T23:33:20Z"
    assert json.loads(encode(h))["data"][0]["name"] == "train:test_runfile"
    s = runfile.step_record(step=0, t=0.5, loss=5.5, lr=3e-5, grad_norm=4.1, clip_scale=1, tokens_per_s=9000,
                            step_ms=110, axes={"depth": {"mode": "manual", "weight": [1], "energy": [0.5]},
                                               "context": {"mode": "off", "weight": [1, 1], "energy": [0, 0]}},
                            oscillation={"rel_update": [0.1], "update_cos": [0.5], "flip_rate": [0], "grad_cos": [0]})
    assert keys_in_order(s, STEP) == STEP[:-1]
    line = json.loads(encode(s))
    assert list(line["axes"]) == ["context", "depth"]
    assert list(line["oscillation"]) == ["flip_rate", "grad_cos", "update_cos", "rel_update"]
    e = runfile.eval_record(step=2, t=1, domains={"val:x": 2.0}, loss_by_position=[1, 2], context_gain={8: 0.1},
                            sample="ab", sample_prompt="\n")
    assert keys_in_order(e, EVAL) == EVAL
    assert json.loads(encode(e))["domains"][0]["bpb"] == 2.0 / math.log(2)
    ev = runfile.event_record(step=1, t=1, kind="weight", source="attach", axis="context", band=1, layer=0,
                              old=1, new=2, command_id="c1", message="m")
    assert keys_in_order(ev, EVENT) == EVENT
    assert keys_in_order(runfile.checkpoint_record(step=1, t=1, path="p", bytes=3, ms=1.5), CHECKPOINT) == CHECKPOINT
    assert keys_in_order(runfile.end_record(step=1, t=1, reason="failed", final_loss=1, best_val_loss=2,
                                            message="x"), END) == END
    sy = runfile.system_record(step=1, t=1, cpu_percent=150.5, rss_bytes=10, threads=4, ranks=1,
                               gpu_memory_bytes=5, gpu_util_percent=30)
    assert keys_in_order(sy, SYSTEM) == SYSTEM
    # The percentages are measurements, written in single precision as the Swift trainer writes them.
    text = encode(runfile.system_record(step=1, t=1, cpu_percent=0.1 + 0.2, rss_bytes=10, threads=4,
                                        gpu_util_percent=1 / 3))
    assert '"cpu_percent":0.3,' in text and '"gpu_util_percent":0.33333334' in text
    with pytest.raises(ValueError):
        runfile.end_record(step=1, t=1, reason="done")


def test_fnv1a_vectors(tmp_path):
    assert "%016x" % runfile.fnv1a64(b"") == "cbf29ce484222325"
    assert "%016x" % runfile.fnv1a64(b"a") == "af63dc4c8601ec8c"
    assert "%016x" % runfile.fnv1a64(b"foobar") == "85944171f73967e8"
    p = tmp_path / "d.txt"
    p.write_bytes(b"foo" + b"bar")
    assert runfile.file_hash(str(p), chunk=2) == ("85944171f73967e8", 6)
    # A folder: its regular files whose names do not start with ".", in byte order of the names
    # (as the Swift trainer reads --data FOLDER), whatever their extension.
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "b.dat").write_bytes(b"bar")
    (folder / "a.txt").write_bytes(b"foo")
    (folder / ".hidden").write_bytes(b"zzz")
    (folder / "sub").mkdir()
    (folder / "sub" / "c.txt").write_bytes(b"zzz")
    assert runfile.file_hash(str(folder)) == ("85944171f73967e8", 6)
    assert runfile.data_files(str(folder)) == [str(folder / "a.txt"), str(folder / "b.dat")]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".only-hidden").write_bytes(b"x")
    with pytest.raises(runfile.RunFileError, match="no data files"):
        runfile.file_hash(str(empty))
    with pytest.raises(runfile.RunFileError, match="no such file"):
        runfile.file_hash(str(tmp_path / "missing"))


def test_large_data_gets_the_sampled_fingerprint(tmp_path, monkeypatch):
    # Above the limit only the sizes and the sampled blocks count (docs/FORMAT.md): small limits
    # here, so the rule is seen on a few bytes.
    monkeypatch.setattr(runfile, "FULL_HASH_LIMIT", 64)
    monkeypatch.setattr(runfile, "SAMPLE_BLOCKS", 4)
    monkeypatch.setattr(runfile, "SAMPLE_BLOCK_BYTES", 8)
    folder = tmp_path / "d"
    folder.mkdir()
    data = bytearray(range(200))
    (folder / "a").write_bytes(bytes(data[:90]))
    (folder / "b").write_bytes(bytes(data[90:]))
    first, size = runfile.file_hash(str(folder))
    assert size == 200 and first.startswith("sampled-") and len(first) == len("sampled-") + 16
    # Blocks start at ⌊i · (200 − 8) / 3⌋ = 0, 64, 128, 192: a byte in one (across the seam at 90
    # they are read whole) changes the fingerprint, a byte between them does not.
    def with_byte(at, value):
        changed = bytearray(data)
        changed[at] = value
        (folder / "a").write_bytes(bytes(changed[:90]))
        (folder / "b").write_bytes(bytes(changed[90:]))
        return runfile.file_hash(str(folder))[0]
    assert with_byte(130, 0) != first
    assert with_byte(199, 0) != first
    assert with_byte(100, 0) == first
    # The same bytes split at another seam: other sizes, another fingerprint.
    (folder / "a").write_bytes(bytes(data[:91]))
    (folder / "b").write_bytes(bytes(data[91:]))
    assert runfile.file_hash(str(folder))[0] != first


def _header(run_id="rid"):
    return runfile.header(run_name="r", preset="custom", parameters=1, total_steps=3, seed=1, threads=1,
                          start_time=1.0, data=[], axes=[], config={}, run_id=run_id)


def test_a_float_subclass_is_written_as_its_number():
    class Tagged(float):  # numpy's float64 is one: its repr is "np.float64(0.003)"
        def __repr__(self):
            return "Tagged(%s)" % float.__repr__(self)
    assert encode({"lr": Tagged(0.003), "x": [Tagged(2.5)]}) == '{"lr":0.003,"x":[2.5]}'
    np = pytest.importorskip("numpy")
    assert encode({"lr": np.float64(3e-3), "n": np.int64(7), "f": np.float32(0.5)}) == '{"lr":0.003,"n":7,"f":0.5}'


def test_event_kinds_are_the_swift_readers(tmp_path):
    # A kind the reader does not know makes the line a bad line; the two lists must not drift.
    with open(os.path.join(REPO, "Sources", "RunFormat", "Records.swift")) as f:
        source = f.read()
    body = source[source.index("public struct EventRecord"):]
    body = body[body.index("enum Kind"):body.index("\n    }\n")]
    kinds = []
    for m in re.finditer(r'case (\w+)(?: = "([^"]+)")?', body):
        kinds.append(m.group(2) or m.group(1))
    assert tuple(kinds) == runfile.EVENT_KINDS


def test_end_records_say_how_a_run_failed():
    assert runfile.end_record(step=3, t=1, reason="failed")["failure"] == "error"
    assert runfile.end_record(step=3, t=1, reason="failed", failure="diverged")["failure"] == "diverged"
    assert "failure" not in runfile.end_record(step=3, t=1, reason="completed")
    with pytest.raises(ValueError, match="only with reason failed"):
        runfile.end_record(step=3, t=1, reason="completed", failure="error")
    with pytest.raises(ValueError, match="end reason must be"):
        runfile.end_record(step=3, t=1, reason="weird")


def test_a_second_writer_is_refused_while_the_first_holds_the_run(tmp_path):
    path = str(tmp_path / "run.jsonl")
    first = runfile.RunFileWriter.create(path, _header())
    with pytest.raises(runfile.RunFileError, match="this run file is locked by a process writing the run"):
        runfile.RunFileWriter.resume(path)
    before = open(path, "rb").read()
    first.write(runfile.event_record(step=0, t=0.1, kind="warning", source="api", message="still mine"))
    first.close()
    assert open(path, "rb").read().startswith(before)
    second = runfile.RunFileWriter.resume(path)  # the lock goes with the first writer's descriptor
    second.close()
    with open(os.path.join(REPO, "Sources", "Telemetry", "RunFile", "RunFileWriter.swift")) as f:
        assert '"%s"' % runfile.LOCKED in f.read()  # the Swift writer's words


def test_a_forked_child_does_not_keep_the_writers_lock(tmp_path):
    path = str(tmp_path / "run.jsonl")
    w = runfile.RunFileWriter.create(path, _header())
    r, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # a DataLoader worker, say: it outlives the writer for a while
        os.close(r)
        os.write(wfd, b"1" if w.closed else b"0")
        time.sleep(3)
        os._exit(0)
    os.close(wfd)
    try:
        assert os.read(r, 1) == b"1"  # the child's copy of the writer is closed
        w.close()
        assert not runfile.is_being_written(path)  # the child holds no lock
        runfile.RunFileWriter.resume(path).close()
    finally:
        os.close(r)
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_never_overwrites_and_one_line_per_record(tmp_path):
    path = str(tmp_path / "run.jsonl")
    w = runfile.RunFileWriter.create(path, _header())
    w.write(runfile.event_record(step=0, t=0.1, kind="warning", source="api", message="x\ny"))
    w.close()
    with pytest.raises(runfile.RunFileError, match="already exists; a recorder never overwrites"):
        runfile.RunFileWriter.create(path, _header())
    lines = open(path, "rb").read().split(b"\n")
    assert len(lines) == 3 and lines[-1] == b""


def test_resume_after_torn_line(tmp_path):
    path = str(tmp_path / "run.jsonl")
    w = runfile.RunFileWriter.create(path, _header("keep"))
    w.write(runfile.step_record(step=0, t=0.5, loss=5, lr=1e-3, grad_norm=1, clip_scale=1, tokens_per_s=1,
                                step_ms=1))
    w.write(runfile.event_record(step=1, t=0.7, kind="lr", source="attach", old=1, new=0.5, command_id="a-1"))
    w.write(runfile.event_record(step=1, t=0.8, kind="refused", source="attach",
                                 message="commands.jsonl:4: not a JSON object"))
    w.close()
    with open(path, "ab") as f:
        f.write(b'{"type":"step","step":1,"t":0.9,"lo')  # killed mid-write
    state = runfile.read_state(path)
    assert state.header["run_id"] == "keep"
    assert state.answered_ids == {"a-1"} and state.answered_lines == {4}
    assert state.last_step == 1 and state.last_t == 0.8
    w = runfile.RunFileWriter.resume(path)
    w.write(runfile.event_record(step=1, t=1.0, kind="resume-run", source="trainer", message="resumed from step 1"))
    w.close()
    lines = open(path, "rb").read().split(b"\n")
    assert lines[-3] == b'{"type":"step","step":1,"t":0.9,"lo'
    assert json.loads(lines[-2])["kind"] == "resume-run"


def test_replaced_by_resume_follows_the_format_rule():
    assert runfile.replaced_by_resume("step", 20, 20) and not runfile.replaced_by_resume("step", 19, 20)
    assert runfile.replaced_by_resume("eval", 21, 20) and not runfile.replaced_by_resume("eval", 20, 20)
    assert runfile.replaced_by_resume("checkpoint", 21, 20) and not runfile.replaced_by_resume("checkpoint", 20, 20)
    assert runfile.replaced_by_resume("end", 0, 20)


def test_read_state_forgets_the_evaluations_a_resumed_session_redoes(tmp_path):
    path = str(tmp_path / "run.jsonl")
    w = runfile.RunFileWriter.create(path, _header())
    w.write(runfile.eval_record(step=10, t=1, domains=[("val:x", 2.0)]))
    w.write(runfile.step_record(step=19, t=1.9, loss=1.0, lr=1e-3, grad_norm=1.0, clip_scale=1.0, tokens_per_s=1.0,
                                step_ms=1.0))
    w.write(runfile.checkpoint_record(step=20, t=2, path="ckpt-000020.pt", bytes=1, ms=1))  # the one resumed from
    w.write(runfile.step_record(step=25, t=2.5, loss=1.25, lr=1e-3, grad_norm=1.0, clip_scale=1.0, tokens_per_s=1.0,
                                step_ms=1.0))
    w.write(runfile.eval_record(step=30, t=3, domains=[("val:x", 1.5)]))  # lost with the steps after 20
    w.write(runfile.checkpoint_record(step=30, t=3.5, path="ckpt-000030.pt", bytes=1, ms=1))  # so is its checkpoint
    w.write(runfile.event_record(step=20, t=4, kind="resume-run", source="trainer", message="resumed from step 20"))
    state = runfile.read_state(path)
    assert state.last_step == 20  # the steps after 20 no longer count
    assert state.last_checkpoint == (20, "ckpt-000020.pt") and state.final_loss == 1.0  # step 19's, not 25's
    # A further resume from step 10 would start with the figures as of step 10.
    assert state.figures_resumed_at(10) == (2.0, None) and state.figures_resumed_at(20) == (2.0, 1.0)
    w.write(runfile.eval_record(step=30, t=6, domains=[("val:x", 1.8)]))
    w.close()
    assert runfile.read_state(path).best_val_loss == 1.8
