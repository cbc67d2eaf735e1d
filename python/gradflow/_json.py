"""The run file's JSON text (docs/FORMAT.md, "Values"), written by hand for two reasons:
keys keep the order of the format's tables (a dict's insertion order), and numbers come in the
format's two precisions.

- A Python ``float`` is a **double**: ``repr`` is the shortest text that reads back bit for bit
  (``0.1``, ``2.5e-05``, ``1e+20``), and an integral value drops its ``.0`` (``85``).
- A :class:`F32` is a **measurement**: written as the shortest text that reads back as the same
  float32 (at most 9 significant digits), as the Swift writer does.
- NaN and infinities are written as ``null``.
"""

import math
import re
from array import array

try:  # the same search in C (gradflow/_text.c), built by `pip install ./python` where it can be
    from ._text import f32_texts as _f32_texts_c
except ImportError:
    _f32_texts_c = None

__all__ = ["F32", "f32", "f32s", "encode", "escape_string"]


class F32(float):
    """A float written at single precision (a step record's measurements)."""

    __slots__ = ()


_F32_MIN_NORMAL = 2.0 ** -126


def f32(x):
    """``x`` as a measurement (an :class:`F32`); None stays None."""
    if x is None:
        return None
    return F32(float(x))


def f32s(values):
    """A list (or nested lists) of measurements."""
    out = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out.append(f32s(v))
        else:
            out.append(F32(float(v)))
    return out


def _double_text(x):
    if not math.isfinite(x):
        return "null"
    if x == int(x) and abs(x) < 1e16:
        return str(int(x)) if x != 0 or math.copysign(1, x) > 0 else "-0"
    return repr(float(x))   # float(): a subclass's repr may not be a number (numpy: "np.float64(0.1)")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_NEEDS_ESCAPE = re.compile('[\\x00-\\x1f"\\\\\\x7f\\ud800-\\udfff]')


def _escape_char(m):
    c = m.group(0)
    if c in _ESCAPES:
        return _ESCAPES[c]
    if "\ud800" <= c <= "\udfff":
        return "\ufffd"  # a lone surrogate cannot be UTF-8: the replacement character
    return "\\u%04x" % ord(c)


def escape_string(s):
    """``s`` as a JSON string literal: ``"``, ``\\``, control characters and DEL escaped."""
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, s) + '"'


def _encode(value, out):
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, F32):
        out.append(value)   # a placeholder: encode() writes all measurements together
    elif isinstance(value, float):
        out.append(_double_text(value))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, str):
        out.append(escape_string(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for k, v in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(escape_string(str(k)))
            out.append(":")
            _encode(v, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _encode(v, out)
        out.append("]")
    elif hasattr(value, "item") and callable(value.item):  # a 0-d tensor or numpy scalar
        _encode(value.item(), out)
    else:
        raise TypeError("cannot write %s to a run file" % type(value).__name__)


def _float32_texts(values):
    """The shortest decimal text that reads back as each value rounded to float32 ("null" for
    inf and NaN, an integer where the value is one), as Swift writes a Float. The search is done
    for all values at once: each round formats the values still open with one more digit and reads
    them all back as float32 through one ``array`` (a step record has about a hundred
    measurements; one at a time they cost about as much as the rest of the record).

    The search starts at 6 digits for a normal float32: a shorter text that reads back as v lies
    within half a float32 ulp (< 6e-8 · |v|) of v, far closer than the 6-digit decimals' spacing
    (≥ 1e-6 · |v|), so "%.6g" is that text with its trailing zeros stripped. Subnormals, whose ulp
    is relatively larger, start at 1 digit. 9 digits always read back."""
    rounded = array("f", values).tolist()    # out of float32's range: ±inf
    texts = [None] * len(values)
    subnormal, normal = [], []                # where the search starts: 1 digit, 6 digits
    for i, v in enumerate(rounded):
        if not math.isfinite(v):
            texts[i] = "null"
        elif v == int(v) and abs(v) < 1e16:
            texts[i] = str(int(v))
        else:
            (normal if abs(v) >= _F32_MIN_NORMAL else subnormal).append(i)
    open_ = subnormal
    for digits in range(1, 10):
        if digits == 6:
            open_ += normal
        if not open_:
            continue
        candidates = ["%.*g" % (digits, rounded[i]) for i in open_]
        back = array("f", [float(t) for t in candidates]).tolist()
        still = []
        for i, text, b in zip(open_, candidates, back):
            if b == rounded[i]:
                texts[i] = text
            else:
                still.append(i)
        open_ = still
    for i in open_:   # not reached: 9 digits always read back
        texts[i] = repr(rounded[i])
    return texts


#: The search encode() uses: the C module's where it was built (a third of the time; a test keeps
#: the two equal), else the definition above.
float32_texts = _f32_texts_c if _f32_texts_c is not None else _float32_texts


def encode(value):
    """The compact JSON text of ``value`` (dict, list, str, int, float, F32, bool, None)."""
    out = []
    _encode(value, out)
    slots = [i for i, x in enumerate(out) if type(x) is F32]
    if slots:
        for i, text in zip(slots, float32_texts([out[i] for i in slots])):
            out[i] = text
    return "".join(out)


def jsonable(value):
    """``value`` made JSON-shaped for a header's ``config``: unknown objects become their ``str``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        try:
            return jsonable(value.item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)
