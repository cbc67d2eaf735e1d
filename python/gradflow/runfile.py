"""Writing the run file, ``RUNDIR/run.jsonl``, exactly as docs/FORMAT.md describes it
(schema ``gradflow.run/1.3``).

The record builders (:func:`header`, :func:`step_record`, …) return dicts whose keys are in the
order of the format's tables (Sources/Telemetry/RunFile/RunFileFields.swift is the source of
truth); :class:`RunFileWriter` turns each into one line and hands it to a single ``os.write`` on a
descriptor opened with ``O_APPEND``. A new file is created with ``O_CREAT|O_EXCL`` (a run file is
never overwritten); :meth:`RunFileWriter.resume` reopens an existing one.

Example::

    w = RunFileWriter.create("runs/a/run.jsonl", header(run_name="a", ...))
    w.write(step_record(step=0, t=0.1, loss=5.5, lr=3e-5, grad_norm=4.1, clip_scale=1,
                        tokens_per_s=9000, step_ms=110))
    w.write(end_record(step=1, t=0.2, reason="completed", final_loss=5.5))
    w.close()
"""

import array
import json
import math
import os
import threading
import weakref
import time
import uuid

from ._json import F32, encode, f32, f32s

__all__ = [
    "SCHEMA", "RunFileError", "RunFileWriter", "RunFileState", "read_state", "fnv1a64", "file_hash", "data_files",
    "data_source", "band_info", "axis_info", "header", "step_record", "eval_record", "event_record",
    "checkpoint_record", "end_record", "system_record", "new_run_id", "TRAINING_PREFIX",
    "VALIDATION_PREFIX",
]

SCHEMA = "gradflow.run/1.3"
#: How the training data's ``data`` entry is named: ``train:NAME`` (DataSourceInfo.trainingPrefix).
TRAINING_PREFIX = "train:"
#: How the Swift trainer names the held-out split of the training data in eval records.
VALIDATION_PREFIX = "val:"

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = 0xFFFFFFFFFFFFFFFF


class RunFileError(Exception):
    """A run file that cannot be written or continued; the message names the file."""


# MARK: - Data sources


def fnv1a64(data, value=_FNV_OFFSET):
    """FNV-1a 64 of ``data`` (bytes), continuing from ``value``."""
    h, prime, mask = value, _FNV_PRIME, _MASK
    for b in data:
        h = ((h ^ b) * prime) & mask
    return h


#: The data fingerprint's rule (docs/FORMAT.md, the header's ``data`` ``hash``; Swift:
#: ByteDataset.fingerprint): up to FULL_HASH_LIMIT bytes, FNV-1a 64 of all of them; above, a
#: sampled hash of SAMPLE_BLOCKS blocks of SAMPLE_BLOCK_BYTES.
FULL_HASH_LIMIT = 64 << 20
SAMPLE_BLOCKS = 1024
SAMPLE_BLOCK_BYTES = 64 << 10
_SAMPLED_TAG = b"gradflow-sampled-v1"


def file_hash(path, chunk=1 << 20):
    """The fingerprint of a file's bytes, or of a folder's data files (:func:`data_files`), as the
    Swift trainer computes it (docs/FORMAT.md): up to 64 MiB, FNV-1a 64 of every byte, 16 hex
    digits; above, ``sampled-`` and the FNV-1a 64 of a tag, the files' sizes and 1,024 blocks of
    64 KiB spread over their concatenation. Returns (fingerprint, number of bytes).

    Pure Python (FNV-1a is one multiply per byte, in order): about 0.1 s per MB here, 6 s for the
    64 MiB it reads at most; pass ``hash=`` and ``size=`` to :func:`data_source` to skip it."""
    paths = data_files(path)
    sizes = [os.path.getsize(p) for p in paths]
    total = sum(sizes)
    if total <= FULL_HASH_LIMIT:
        h = _FNV_OFFSET
        for p in paths:
            with open(p, "rb") as f:
                while True:
                    block = f.read(chunk)
                    if not block:
                        break
                    h = fnv1a64(block, h)
        return "%016x" % h, total
    h = fnv1a64(_SAMPLED_TAG)
    for size in sizes:
        h = fnv1a64(size.to_bytes(8, "little"), h)
    length, count = SAMPLE_BLOCK_BYTES, SAMPLE_BLOCKS
    starts, at = [], 0             # each file's offset in the concatenation
    for size in sizes:
        starts.append(at)
        at += size
    for i in range(count):
        h = fnv1a64(_read_span(paths, sizes, starts, i * (total - length) // (count - 1), length), h)
    return "sampled-%016x" % h, total


def _read_span(paths, sizes, starts, offset, length):
    """``length`` bytes of the files' concatenation from ``offset`` (across file seams)."""
    out = bytearray()
    for p, size, start in zip(paths, sizes, starts):
        if start + size <= offset or start >= offset + length:
            continue
        with open(p, "rb") as f:
            lo = max(offset, start) - start
            f.seek(lo)
            out += f.read(min(offset + length, start + size) - start - lo)
    return bytes(out)


def data_files(path):
    """The files that a data path names, as the Swift trainer reads them (``--data PATH``): the
    file itself, or a folder's regular files whose names do not start with ``.``, in byte order of
    their names."""
    if not os.path.exists(path):
        raise RunFileError("%s: no such file or folder" % path)
    if not os.path.isdir(path):
        return [path]
    names = sorted((n for n in os.listdir(path) if not n.startswith(".")),
                   key=lambda n: os.fsencode(n))
    files = [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]
    if not files:
        raise RunFileError("%s: folder has no data files (regular files whose names do not start with '.')" % path)
    return files


def data_source(path, name=None, training=False, hash=None, size=None):
    """A header ``data`` entry ``{"name","path","bytes","hash"}`` for a file or folder.

    ``name`` defaults to the file name without its extension; the training data is named
    ``train:NAME`` (``training=True``), a validation domain by its own name. Pass ``hash`` and
    ``size`` to skip reading the file."""
    if name is None:
        name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    if hash is None or size is None:
        hash, size = file_hash(path)
    return {"name": (TRAINING_PREFIX + name) if training else name, "path": str(path),
            "bytes": int(size), "hash": str(hash)}


# MARK: - Header


def band_info(name, extent, floor, ceiling):
    """A ``bands`` entry of a header axis."""
    return {"name": str(name), "extent": str(extent), "floor": float(floor), "ceiling": float(ceiling)}


def axis_info(axis, edges, bands):
    """A header ``axes`` entry: ``bands`` are :func:`band_info` dicts."""
    return {"axis": str(axis), "edges": [float(e) for e in edges], "bands": list(bands)}


def new_run_id():
    """A fresh ``run_id``: a random UUID's 32 hex digits."""
    return uuid.uuid4().hex


def header(*, run_name, preset, parameters, total_steps, seed, threads, start_time, data, axes,
           config, run_id, ranks=1, parent=None):
    """The header line's object, keys in the format's order."""
    h = {
        "type": "header",
        "schema": SCHEMA,
        "run_name": str(run_name),
        "preset": str(preset),
        "parameters": int(parameters),
        "total_steps": int(total_steps),
        "seed": int(seed) & _MASK,
        "threads": int(threads),
    }
    if int(ranks) > 1:
        h["ranks"] = int(ranks)
    h["start_time"] = float(start_time)
    h["start_iso"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_time))
    h["data"] = [dict(name=d["name"], path=d["path"], bytes=int(d["bytes"]), hash=d["hash"]) for d in data]
    h["axes"] = list(axes)
    h["config"] = config if config is not None else {}
    h["run_id"] = str(run_id)
    if parent is not None:
        h["parent"] = {"run": str(parent["run"]), "step": int(parent["step"]),
                       "checkpoint": str(parent["checkpoint"])}
    return h


# MARK: - Records


def _num(x):
    """A double member: None (unknown) becomes NaN, written as null."""
    return math.nan if x is None else float(x)


def step_record(*, step, t, loss, lr, grad_norm, clip_scale, tokens_per_s, step_ms, axes=None,
                context_energy=(), attention_mass=(), attention_mass_by_head=(), oscillation=None,
                spike=False, guard_fallbacks=0):
    """A ``step`` record. ``axes`` maps an axis name to ``{"mode","weight","energy"}``;
    ``oscillation`` holds ``flip_rate``, ``grad_cos``, optional ``update_cos``, ``rel_update``."""
    r = {
        "type": "step", "step": int(step), "t": float(t), "loss": _num(loss), "lr": _num(lr),
        "grad_norm": f32(_num(grad_norm)), "clip_scale": f32(_num(clip_scale)),
        "tokens_per_s": f32(_num(tokens_per_s)), "step_ms": f32(_num(step_ms)),
    }
    out_axes = {}
    for name in ("context", "time", "depth"):
        a = (axes or {}).get(name)
        if a is None:
            continue
        out_axes[name] = {"mode": str(a["mode"]), "weight": f32s(a["weight"]), "energy": f32s(a["energy"])}
    r["axes"] = out_axes
    r["context_energy"] = f32s(context_energy)
    r["attention_mass"] = f32s(attention_mass)
    r["attention_mass_by_head"] = f32s(attention_mass_by_head)
    o = oscillation or {}
    osc = {"flip_rate": f32s(o.get("flip_rate", ())), "grad_cos": f32s(o.get("grad_cos", ()))}
    if o.get("update_cos") is not None:
        osc["update_cos"] = f32s(o["update_cos"])
    osc["rel_update"] = f32s(o.get("rel_update", ()))
    r["oscillation"] = osc
    r["spike"] = bool(spike)
    r["guard_fallbacks"] = int(guard_fallbacks)
    return r


def eval_record(*, step, t, domains, loss_by_position=(), context_gain=(), sample_prompt=None, sample=None):
    """An ``eval`` record. ``domains``: ``(name, loss)`` pairs or a dict, the training data's
    held-out split first; ``context_gain``: ``(window, delta)`` pairs or a dict."""
    items = domains.items() if isinstance(domains, dict) else domains
    ds = []
    for name, loss in items:
        loss = float(loss)
        ds.append({"name": str(name), "loss": loss, "bpb": loss / math.log(2)})
    gains = context_gain.items() if isinstance(context_gain, dict) else context_gain
    r = {
        "type": "eval", "step": int(step), "t": float(t), "domains": ds,
        "loss_by_position": f32s(loss_by_position),
        "context_gain": [{"window": int(w), "delta": F32(float(d))} for w, d in gains],
    }
    if sample is not None:
        r["sample_prompt"] = "" if sample_prompt is None else str(sample_prompt)
        r["sample"] = str(sample)
    return r


#: The event kinds of the format (docs/FORMAT.md, "event"; the Swift reader's EventRecord.Kind):
#: a reader skips an event of any other kind as a bad line.
EVENT_KINDS = ("weight", "mode", "target", "refused", "pause", "resume", "resume-run", "warning", "adaptive",
               "stop", "twin", "verdict", "revert", "rollback", "lr", "command")


def event_record(*, step, t, kind, source, message="", axis=None, band=None, layer=None, old=None,
                 new=None, command_id=None):
    """An ``event`` record; the optional members are left out when None."""
    r = {"type": "event", "step": int(step), "t": float(t), "kind": str(kind)}
    if axis is not None:
        r["axis"] = str(axis)
    if band is not None:
        r["band"] = int(band)
    if layer is not None:
        r["layer"] = int(layer)
    if old is not None:
        r["old"] = float(old)
    if new is not None:
        r["new"] = float(new)
    r["source"] = str(source)
    if command_id is not None:
        r["command_id"] = str(command_id)
    r["message"] = str(message)
    return r


def checkpoint_record(*, step, t, path, bytes, ms):
    """A ``checkpoint`` record."""
    return {"type": "checkpoint", "step": int(step), "t": float(t), "path": str(path), "bytes": int(bytes),
            "ms": F32(float(ms))}


#: An end record's reasons, and how a ``failed`` run failed (docs/FORMAT.md, "end").
END_REASONS = ("completed", "interrupted", "failed")
FAILURES = ("diverged", "non_finite", "error")


def check_end(reason, failure=None):
    """Raises ValueError unless ``reason`` (or None: decided at the end) and ``failure`` make an
    end record: a failure only for ``failed``."""
    if reason is not None and reason not in END_REASONS:
        raise ValueError("end reason must be completed, interrupted or failed (got %r)" % (reason,))
    if failure is not None and (failure not in FAILURES or reason != "failed"):
        raise ValueError("failure must be diverged, non_finite or error, and only with reason failed (got %r, %r)"
                         % (failure, reason))


def end_record(*, step, t, reason, final_loss=None, best_val_loss=None, message="", failure=None):
    """An ``end`` record; ``reason`` is ``completed``, ``interrupted`` or ``failed``; a failed run
    says how (``failure``, ``error`` unless given)."""
    if reason is None:
        raise ValueError("end reason must be completed, interrupted or failed (got None)")
    check_end(reason, failure)
    r = {"type": "end", "step": int(step), "t": float(t), "reason": reason}
    if reason == "failed":
        r["failure"] = failure or "error"
    if final_loss is not None:
        r["final_loss"] = float(final_loss)
    if best_val_loss is not None:
        r["best_val_loss"] = float(best_val_loss)
    r["message"] = str(message)
    return r


def system_record(*, step, t, cpu_percent, rss_bytes, threads, ranks=1, gpu_memory_bytes=None,
                  gpu_util_percent=None):
    """A ``system`` record (1.3): process figures; the percentages in single precision, as the
    format defines them (docs/FORMAT.md)."""
    r = {"type": "system", "step": int(step), "t": float(t), "cpu_percent": F32(float(cpu_percent)),
         "rss_bytes": int(rss_bytes), "threads": int(threads), "ranks": int(ranks)}
    if gpu_memory_bytes is not None:
        r["gpu_memory_bytes"] = int(gpu_memory_bytes)
    if gpu_util_percent is not None:
        r["gpu_util_percent"] = F32(float(gpu_util_percent))
    return r


# MARK: - Writer


#: Why a run file cannot be written now (the Swift writer's words).
LOCKED = "this run file is locked by a process writing the run (or one it forked); stop it first, or attach to it to steer it"


#: The writers open in this process: a forked child (a DataLoader worker) closes their
#: descriptors, so that it neither writes the run nor keeps its lock after the writer dies.
_open_writers = weakref.WeakSet()


def _close_writers_in_child():
    for w in list(_open_writers):
        if w._fd is not None:
            try:
                os.close(w._fd)
            except OSError:
                pass
            w._fd = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_writers_in_child)


def is_being_written(path):
    """Whether a process holds the run file's writer lock now (False when the file cannot be
    opened or the filesystem has no locks)."""
    import fcntl
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _lock_for_writing(fd, path):
    """Takes the run file's writer lock (``flock``, exclusive, held until the descriptor closes),
    as the Swift writer does, so that a second process resuming the same run is refused instead of
    interleaving its records with the first's; closes ``fd`` and raises when another holds it."""
    import fcntl
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunFileError("%s: %s" % (path, LOCKED)) from None
    except OSError:
        pass  # a filesystem without locks: go on unlocked, as before


class RunFileWriter:
    """Appends lines to a run file: one ``os.write`` per line on an ``O_APPEND`` descriptor, no
    user-space buffer; ``fsync`` at least once a second while records arrive (checked at each
    write, and by :meth:`sync_if_due`), after every ``checkpoint`` and ``end`` record, and on
    :meth:`close`. Safe to call from several threads."""

    def __init__(self, fd, path):
        self._fd = fd
        self.path = path
        self._lock = threading.Lock()
        self._last_sync = time.monotonic()
        self._dirty = False
        _open_writers.add(self)

    @classmethod
    def create(cls, path, header_object):
        """Creates ``path`` (never overwriting it) and writes the header line."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags, 0o644)
        except FileExistsError:
            raise RunFileError("%s already exists; a recorder never overwrites a run file" % path) from None
        except OSError as e:
            raise RunFileError("%s: cannot create the run file: %s" % (path, e.strerror)) from None
        _lock_for_writing(fd, path)
        w = cls(fd, path)
        w.write(header_object)
        w.sync()
        return w

    @staticmethod
    def lock_existing(path):
        """Opens an existing run file to append and takes its writer lock; returns the descriptor
        for :meth:`resume` (a resumer takes the lock before it touches anything of the run)."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise RunFileError("%s: no such run file to resume" % path) from None
        except OSError as e:
            raise RunFileError("%s: cannot open the run file: %s" % (path, e.strerror)) from None
        _lock_for_writing(fd, path)
        return fd

    @classmethod
    def resume(cls, path, locked_fd=None):
        """Opens an existing run file to append (or takes ``locked_fd`` from :meth:`lock_existing`);
        if it ends inside a line (a writer was killed mid-write), writes a newline first so the
        torn fragment stays a line of its own."""
        fd = cls.lock_existing(path) if locked_fd is None else locked_fd
        size = os.fstat(fd).st_size
        if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")
        return cls(fd, path)

    def write(self, obj):
        """Writes one record (a dict from the builders above) as one line."""
        line = (encode(obj) + "\n").encode("utf-8")
        kind = obj.get("type")
        with self._lock:
            if self._fd is None:
                raise RunFileError("%s: the run file is closed" % self.path)
            view = memoryview(line)
            while view:  # one write(2) unless the kernel takes less (disk full, a signal)
                n = os.write(self._fd, view)
                view = view[n:]
            self._dirty = True
            now = time.monotonic()
            if kind in ("checkpoint", "end") or now - self._last_sync >= 1.0:
                self._sync_locked(now)

    def sync_if_due(self):
        """``fsync`` if records are waiting and the last one was a second ago or more."""
        with self._lock:
            now = time.monotonic()
            if self._fd is not None and self._dirty and now - self._last_sync >= 1.0:
                self._sync_locked(now)

    def sync(self):
        with self._lock:
            if self._fd is not None:
                self._sync_locked(time.monotonic())

    def _sync_locked(self, now):
        os.fsync(self._fd)
        self._last_sync = now
        self._dirty = False

    @property
    def closed(self):
        return self._fd is None

    def close(self):
        with self._lock:
            if self._fd is None:
                return
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None


# MARK: - Reading what a resume needs


class RunFileState:
    """What a resumed writer needs from an existing run file."""

    def __init__(self):
        self.header = None
        #: Steps completed according to the file (the last record's step; a step record counts + 1).
        self.last_step = 0
        #: The largest ``t`` in the file: a resumed run continues this clock.
        self.last_t = 0.0
        #: ``command_id`` of every event answering a command-channel line.
        self.answered_ids = set()
        #: For each answered id, the (step, kind) of its first answer.
        self.answers = {}
        #: Lines of commands.jsonl answered without an id (``refused`` events naming the line).
        self.answered_lines = set()
        #: (step, path) of the last checkpoint record that counts, or None.
        self.last_checkpoint = None
        #: Whether the file's last session ended with a ``completed`` end record.
        self.completed = False
        #: The first domain's best validation loss and the last training loss, or None.
        self.best_val_loss = None
        self.final_loss = None
        #: What they come from: (step, first domain's loss) of the evaluations that count, and the
        #: step records' indexes and losses that count.
        self.evals = []
        self.step_indexes, self.step_losses = array.array("q"), array.array("d")

    def figures_resumed_at(self, step):
        """(best validation loss, final training loss) as a session resumed from the checkpoint
        at ``step`` starts with: what the file holds, less what that resume replaces (None: no
        resume, the file's own figures)."""
        evals = [v for s, v in self.evals if step is None or not replaced_by_resume("eval", s, step)]
        final = None
        for i in range(len(self.step_indexes) - 1, -1, -1):
            if step is None or not replaced_by_resume("step", self.step_indexes[i], step):
                final = self.step_losses[i]
                break
        return (min(evals) if evals else None), final


def read_state(path):
    """Reads ``path`` (a run file) for a resume: the header, the clock, the last step and the
    command ids already answered. Bad lines are passed over as the Swift reader does."""
    state = RunFileState()
    try:
        f = open(path, "rb")
    except OSError as e:
        raise RunFileError("%s: cannot read the run file: %s" % (path, e.strerror)) from None
    with f:
        first = f.readline()
        try:
            h = json.loads(first.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            h = None
        if not isinstance(h, dict) or h.get("type") != "header":
            raise RunFileError("%s:1: not a gradflow run file" % path)
        state.header = h
        evals = []  # (step, first domain's loss)
        checkpoints = []  # (step, path)
        step_indexes, step_losses = array.array("q"), array.array("d")  # the step records' losses that count
        for raw in f:
            if b'"t"' not in raw:
                continue
            try:
                r = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                continue
            if not isinstance(r, dict):
                continue
            t, step, kind = r.get("t"), r.get("step"), r.get("type")
            if isinstance(t, (int, float)) and math.isfinite(t):
                state.last_t = max(state.last_t, float(t))
            if isinstance(step, int):
                state.last_step = max(state.last_step, step + 1 if kind == "step" else step)
            if kind == "step" and isinstance(r.get("loss"), (int, float)) and isinstance(step, int):
                step_indexes.append(step)
                step_losses.append(float(r["loss"]))
            elif kind == "eval":
                ds = r.get("domains") or []
                if ds and isinstance(ds[0], dict) and isinstance(ds[0].get("loss"), (int, float)):
                    evals.append((step if isinstance(step, int) else 0, float(ds[0]["loss"])))
            elif kind == "checkpoint":
                checkpoints.append((step, r.get("path")))
            elif kind == "end":
                state.completed = r.get("reason") == "completed"
            elif kind == "event" and r.get("kind") == "resume-run" and isinstance(step, int):
                # A session resumed from the checkpoint at `step` did the later steps again: what
                # an earlier session recorded for them no longer counts (`replaced_by_resume`).
                evals = [e for e in evals if not replaced_by_resume("eval", e[0], step)]
                checkpoints = [c for c in checkpoints
                               if not (isinstance(c[0], int) and replaced_by_resume("checkpoint", c[0], step))]
                while step_indexes and replaced_by_resume("step", step_indexes[-1], step):
                    step_indexes.pop()
                    step_losses.pop()
                state.last_step = step
                state.completed = False
            elif kind == "event" and r.get("source") == "attach":
                cid = r.get("command_id")
                if isinstance(cid, str):
                    state.answered_ids.add(cid)
                    state.answers.setdefault(cid, (step, r.get("kind")))
                else:
                    line = _named_line(r.get("message"))
                    if line is not None:
                        state.answered_lines.add(line)
    state.evals, state.step_indexes, state.step_losses = evals, step_indexes, step_losses
    state.last_checkpoint = checkpoints[-1] if checkpoints else None
    state.best_val_loss, state.final_loss = state.figures_resumed_at(None)
    return state


def replaced_by_resume(kind, step, resumed_at):
    """Whether a ``kind`` record ("step", "eval", "checkpoint", "end") of ``step``, written before a
    ``resume-run`` event at ``resumed_at``, is replaced by the resumed session: step records from
    index ``resumed_at``, evaluations and checkpoints after it, an earlier end record (docs/FORMAT.md,
    "A resumed session replaces the steps after its checkpoint"; the Swift readers' ``ResumeRule``)."""
    if kind == "step":
        return step >= resumed_at
    if kind in ("eval", "checkpoint"):
        return step > resumed_at
    return kind == "end"


def _named_line(message):
    """N of a message ``commands.jsonl:N: …``, else None."""
    if not isinstance(message, str) or not message.startswith("commands.jsonl:"):
        return None
    rest = message[len("commands.jsonl:"):]
    digits = rest.split(":", 1)[0]
    return int(digits) if digits.isdigit() else None
