"""Floors and ceilings of every band weight: the table of Sources/Refinement/WeightBounds.swift
(docs/METHOD.md, "Bounds"), the one copy in Python.

| axis | band | adaptive | manual |
| --- | --- | --- | --- |
| context | every band | [0.5, 4] | [0.05, 10] |
| time | high | [0.25, 1] | [0, 6] |
| time | mid | [1, 1] (held at 1) | [0, 6] |
| time | low | [1, 4] | [0, 6] |
| depth | every group | [0.5, 2] | [0.1, 10] |

Adaptive policies only output values within the adaptive bounds; a manual weight (flag, key,
command) may use the wider manual range. The run header's ``floor``/``ceiling`` of a band are the
bounds of the axis' mode when the run starts (adaptive for an adaptive axis, manual otherwise).
"""

AXES = ("context", "time", "depth")

_MANUAL = {"context": (0.05, 10.0), "time": (0.0, 6.0), "depth": (0.1, 10.0)}
_ADAPTIVE = {
    "context": ((0.5, 4.0),),
    "time": ((0.25, 1.0), (1.0, 1.0), (1.0, 4.0)),
    "depth": ((0.5, 2.0),),
}


def manual(axis):
    """(floor, ceiling) of a manual weight of ``axis`` (every band alike)."""
    try:
        return _MANUAL[axis]
    except KeyError:
        raise ValueError("unknown axis %r (expected one of %s)" % (axis, ", ".join(AXES))) from None


def adaptive(axis, band):
    """(floor, ceiling) of band ``band`` of ``axis`` under its adaptive policy."""
    if axis not in _ADAPTIVE:
        raise ValueError("unknown axis %r (expected one of %s)" % (axis, ", ".join(AXES)))
    table = _ADAPTIVE[axis]
    return table[min(max(band, 0), len(table) - 1)]


def bounds(axis, band, mode):
    """The bounds a weight of ``axis`` band ``band`` respects in ``mode`` ("adaptive" or not)."""
    return adaptive(axis, band) if mode == "adaptive" else manual(axis)
