#!/usr/bin/env python3
"""Reads a TensorBoard log directory with TensorBoard's own EventAccumulator and prints every
scalar as JSON: {"tag": [[step, wall_time, value], ...], ...}. Used by the TelemetryTests to check
`gradflow export --tensorboard` against the real reader.

usage: read_tensorboard.py LOGDIR
"""
import json
import math
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
out = {}
for tag in acc.Tags()["scalars"]:
    out[tag] = [[e.step, e.wall_time, None if math.isnan(e.value) else e.value] for e in acc.Scalars(tag)]
json.dump(out, sys.stdout)
