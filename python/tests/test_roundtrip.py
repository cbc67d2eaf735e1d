"""A run written by the package reads back in the Swift `gradflow` without a notice:
`replay --no-tui --summary-only`, `export --csv` and `runs` (skipped without the binary)."""

import csv
import json
import os

import pytest
import torch

import gradflow
from gradflow import commands

from conftest import tiny_step


def no_notices(result, what):
    assert result.returncode == 0, "%s failed (%d):\n%s%s" % (what, result.returncode, result.stdout, result.stderr)
    notices = [l for l in result.stderr.splitlines() if "notice" in l]
    assert notices == [], "%s printed notices (lines the Swift reader skipped):\n%s" % (what, "\n".join(notices))


def write_run(rundir, refine=None, model=None, opt=None):
    data = os.path.join(os.path.dirname(rundir), "corpus.txt")
    with open(data, "w") as f:
        f.write("to be or not to be\n" * 20)
    run = gradflow.Run(rundir, model=model, optimizer=opt, total_steps=6, refine=refine, handle_signals=False,
                       config={"note": "round trip", "nested": {"a": [1, 2.5, None, True]}}, seed=7,
                       data=[gradflow.data_source(data, training=True), gradflow.data_source(data, name="poems")])
    commands.send(rundir, "lr_scale", value=0.5)
    commands.send(rundir, "checkpoint")
    commands.send(rundir, "set_weight", axis="depth", band=0, value=2.0)
    commands.send(rundir, "stop", run="another-run")  # refused: not this run
    for s in range(3):
        tiny_step(model, opt, run, s)
    run.eval({"val:corpus": 5.1, "poems": 5.3}, loss_by_position=[5.0, 5.2], context_gain={8: 0.25},
             sample="to be\x00", sample_prompt="\n")
    run.event("warning", "a note from the loop")
    for s in range(3, 6):
        tiny_step(model, opt, run, s)
    run.eval({"val:corpus": 4.9, "poems": 5.0})
    run._write_system()
    run.close()
    return run


def test_replay_export_and_runs_read_the_file(tmp_path, tiny, gf):
    model, opt = tiny
    rundir = str(tmp_path / "py-run")
    run = write_run(rundir, model=model, opt=opt)
    types = [json.loads(l)["type"] for l in open(os.path.join(rundir, "run.jsonl"))]
    assert types[0] == "header" and types[-1] == "end" and "system" in types and types.count("step") == 6
    kinds = [json.loads(l).get("kind") for l in open(os.path.join(rundir, "run.jsonl"))]
    assert {"lr", "command", "refused"} <= set(kinds)

    r = gf("replay", rundir, "--no-tui", "--summary-only")
    no_notices(r, "gradflow replay")
    assert "6 of 6" in r.stdout and "completed" in r.stdout, r.stdout

    out = str(tmp_path / "run.csv")
    r = gf("export", rundir, "--csv", out)
    no_notices(r, "gradflow export")
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 6 and float(rows[0]["lr"]) == 0.01 and float(rows[1]["lr"]) == 0.005
    # The validation columns exist (the Swift exporter fills them on the row whose step equals the
    # eval's; an eval carries steps completed, one more than the last step record's index).
    assert "val.poems.loss" in rows[0] and "context_gain.8" in rows[0]

    r = gf("runs", str(tmp_path), "--json")
    no_notices(r, "gradflow runs")
    listed = json.loads(r.stdout)
    entry = listed[0] if isinstance(listed, list) else listed
    assert "py-run" in json.dumps(entry) and "finished" in json.dumps(entry), r.stdout


def test_refined_run_reads_back(tmp_path, gf):
    from gradflow.refine import Refiner
    from conftest import TinyLM
    torch.manual_seed(0)
    model = TinyLM()
    refiner = Refiner(model, axes=("time", "depth"), adaptive=("depth",))
    opt = torch.optim.AdamW(refiner.param_groups(lr=1e-2), lr=1e-2)
    rundir = str(tmp_path / "refined")
    write_run(rundir, refine=refiner, model=model, opt=opt)
    answers = [json.loads(l) for l in open(os.path.join(rundir, "run.jsonl")) if '"source":"attach"' in l]
    assert [a["kind"] for a in answers] == ["lr", "command", "weight", "refused"]
    assert answers[2]["old"] == 1 and answers[2]["new"] == 2
    r = gf("replay", rundir, "--no-tui", "--summary-only")
    no_notices(r, "gradflow replay")
    out = str(tmp_path / "refined.csv")
    r = gf("export", rundir, "--csv", out)
    no_notices(r, "gradflow export")
    rows = list(csv.DictReader(open(out)))
    assert [float(r["depth.lower.weight"]) for r in rows] == [1, 2, 2, 2, 2, 2]  # set at step 1


def test_data_fingerprints_match_the_swift_trainers(tmp_path, gf):
    # The header's data hash (docs/FORMAT.md) as Swift computes it for `--data FOLDER`, against
    # gradflow.file_hash: a small folder (every byte hashed, files in name order, dot files and
    # subfolders left out) and one above 64 MiB (the sampled fingerprint, blocks across a seam).
    from gradflow import runfile
    small = tmp_path / "small"
    small.mkdir()
    (small / "b.dat").write_bytes(bytes(range(256)) * 12)
    (small / "a.txt").write_bytes(b"hello world\n" * 200)
    (small / ".hidden").write_bytes(b"x" * 100)
    (small / "sub").mkdir()
    large = tmp_path / "large"
    large.mkdir()
    (large / "x.bin").write_bytes(os.urandom(40 << 20))
    (large / "y.bin").write_bytes(os.urandom((30 << 20) + 12345))
    for folder in (small, large):
        out = tmp_path / ("run-" + folder.name)
        r = gf("train", "--data", folder, "--layers", 1, "--heads", 1, "--dim", 16, "--context", 8, "--steps", 1,
               "--no-tui", "--out", out)
        assert r.returncode == 0, r.stderr
        with open(out / "run.jsonl") as f:
            header = json.loads(f.readline())
        expected = runfile.file_hash(str(folder))
        assert (header["data"][0]["hash"], header["data"][0]["bytes"]) == expected
    assert expected[0].startswith("sampled-")
