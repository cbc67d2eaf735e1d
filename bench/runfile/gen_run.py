#!/usr/bin/env python3
"""Writes a synthetic run file (docs/FORMAT.md) with N step records shaped like preset S
(4 layers, 4 heads, 3 bands per axis, attention mass per head), an eval every 500 steps, a few
events and checkpoints, and an end record. Used by bench/runfile/bench.sh to time the reader.

Independent of the Swift encoder on purpose: it checks that the reader reads what another writer
produces from the documented format. Floats are written with repr(), Python's shortest round-trip
form, like Swift's description.

usage: gen_run.py OUT.jsonl [STEPS]
With GRADFLOW_BENCH_NO_HEADS=1 the per-head attention mass is left empty ([]), as when the
trainer does not measure it (48 fewer numbers per step record).
"""
import json, math, os, random, sys

out_path = sys.argv[1]
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
if os.path.exists(out_path):
    sys.exit(f"{out_path} exists; refusing to overwrite")
no_heads = os.environ.get("GRADFLOW_BENCH_NO_HEADS") == "1"
rng = random.Random(1)
r = rng.random

header = {
    "type": "header", "schema": "gradflow.run/1", "run_name": "synthetic", "preset": "S",
    "parameters": 842496, "total_steps": steps, "seed": 1, "threads": 2,
    "start_time": 1764424549.0, "start_iso": "2025-11-29T13:55:49Z",
    "data": [{"name": "train", "path": "synthetic", "bytes": 1000000, "hash": "0000000000000000"}],
    "axes": [
        {"axis": "context", "edges": [8, 64], "bands": [
            {"name": n, "extent": e, "floor": 0.5, "ceiling": 4} for n, e in [("local", "0-8"), ("phrase", "9-64"), ("long", "65-127")]]},
        {"axis": "time", "edges": [0.9, 0.99], "bands": [
            {"name": n, "extent": n, "floor": 0.25, "ceiling": 2} for n in ["high", "mid", "low"]]},
        {"axis": "depth", "edges": [2, 3], "bands": [
            {"name": n, "extent": n, "floor": 0.5, "ceiling": 2} for n in ["lower", "middle", "upper"]]},
    ],
    "config": {"preset": "S", "layers": 4, "heads": 4, "channels": 128, "context": 128, "batch": 8},
}

def arr(n, scale=1.0):
    return "[" + ",".join(repr(r() * scale) for _ in range(n)) + "]"

def mat(rows, cols, scale=1.0):
    return "[" + ",".join(arr(cols, scale) for _ in range(rows)) + "]"

with open(out_path, "w", buffering=1 << 22) as f:
    f.write(json.dumps(header, separators=(",", ":"), ensure_ascii=False) + "\n")
    t = 0.0
    # Numbered like the trainer: step records 0..N-1; evals, events, checkpoints and the end
    # record carry the number of steps completed.
    for i in range(1, steps + 1):
        t += 0.085 + r() * 0.001
        loss = 5.5 * math.exp(-i / (steps / 5)) + 1 + r() * 0.1
        axes = ",".join(
            f'"{a}":{{"mode":"{m}","weight":{arr(3, 2)},"energy":{arr(3, 1e-3)}}}'
            for a, m in [("context", "adaptive"), ("time", "adaptive"), ("depth", "manual")])
        by_head = "[]" if no_heads else "[" + ",".join(mat(4, 3) for _ in range(4)) + "]"
        f.write(
            f'{{"type":"step","step":{i - 1},"t":{t!r},"loss":{loss!r},"lr":{3e-4 * r()!r},"grad_norm":{r() * 2!r},'
            f'"clip_scale":1,"tokens_per_s":{12000 + r() * 500!r},"step_ms":{85 + r()!r},"axes":{{{axes}}},'
            f'"context_energy":{mat(4, 3, 1e-4)},"attention_mass":{mat(4, 3)},"attention_mass_by_head":{by_head},'
            f'"oscillation":{{"flip_rate":{arr(3)},"grad_cos":{arr(3)},"rel_update":{arr(3, 1e-3)}}},'
            f'"spike":{"true" if i % 997 == 0 else "false"},"guard_fallbacks":{i // 100}}}\n')
        if i % 500 == 0:
            f.write(f'{{"type":"eval","step":{i},"t":{t!r},"domains":[{{"name":"train-val","loss":{loss + 0.1!r},"bpb":{(loss + 0.1) / math.log(2)!r}}},'
                    f'{{"name":"sonnets","loss":{loss + 0.3!r},"bpb":{(loss + 0.3) / math.log(2)!r}}}],'
                    f'"loss_by_position":{arr(32, 3)},"context_gain":[{{"window":8,"delta":{r()!r}}},{{"window":32,"delta":{r()!r}}},{{"window":64,"delta":{r()!r}}}]}}\n')
        if i % 100_000 == 0:
            f.write(f'{{"type":"event","step":{i},"t":{t!r},"kind":"weight","axis":"context","band":2,"old":1,"new":1.5,"source":"key","message":""}}\n')
            f.write(f'{{"type":"checkpoint","step":{i},"t":{t!r},"path":"ckpt-{i}.bin","bytes":3400000,"ms":12.5}}\n')
    f.write(f'{{"type":"end","step":{steps},"t":{t + 1!r},"reason":"completed","final_loss":{loss!r},"message":""}}\n')
