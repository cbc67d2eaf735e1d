"""The command channel, ``RUNDIR/commands.jsonl`` (docs/FORMAT.md, "The command channel").

The training side (:class:`CommandChannel`) creates the file with mode 0600, and at each step
boundary reads the whole lines added since its last look (a torn last line waits until it is
whole), parses them, drops ids already answered, and hands back :class:`Command` objects and
:class:`Refusal` objects; the caller answers each with exactly one event (``source`` ``attach``).
Nothing a line holds makes it raise.

The sending side is :func:`send`: one line, one ``write(2)`` on ``O_WRONLY|O_APPEND``.

Whoever can write the run folder can steer the run: keep the folder as private as the run.
"""

import errno
import getpass
import json
import math
import os
import socket
import stat
import threading
import time
import uuid

__all__ = ["COMMANDS_FILE", "COMMANDS", "Command", "Refusal", "CommandChannel", "send", "wait_for_answer",
           "parse_line"]

COMMANDS_FILE = "commands.jsonl"

#: The largest ``lr_scale`` a command may set (the Swift format's ``Command.maxLearningRateScale``;
#: docs/FORMAT.md): beyond it no one trains, and 1e300 overflowed torch's float in the optimizer.
MAX_LR_SCALE = 1000.0

# command → {member: (type check, what the message calls it, required)}
_AXES = ("context", "time", "depth")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _is_str(v):
    return isinstance(v, str)


def _is_bool(v):
    return isinstance(v, bool)


COMMANDS = {
    "set_weight": {"axis": (_is_str, "a string", True), "band": (_is_int, "an integer", True),
                   "layer": (_is_int, "an integer", False), "value": (_is_number, "a number", True)},
    "set_adaptive": {"axis": (_is_str, "a string", True), "adaptive": (_is_bool, "a boolean", True)},
    "set_target": {"band": (_is_int, "an integer", True), "share": (_is_number, "a number", True)},
    "lr_scale": {"value": (_is_number, "a number", True)},
    "pause": {}, "resume": {}, "checkpoint": {}, "stop": {}, "open_twin": {}, "revert": {},
}


class Command:
    """One valid command line: ``name`` (``set_weight`` …), ``id``, ``line`` (1-based line number
    in commands.jsonl), ``members`` (the command's own members: ``axis``, ``band``, …) and the
    line's ``issuer`` and ``t``."""

    __slots__ = ("name", "id", "line", "members", "issuer", "t")

    def __init__(self, name, id, line, members, issuer=None, t=None):
        self.name, self.id, self.line, self.members, self.issuer, self.t = name, id, line, members, issuer, t

    def get(self, key, default=None):
        return self.members.get(key, default)

    def where(self):
        """``commands.jsonl:LINE``, for messages."""
        return "%s:%d" % (COMMANDS_FILE, self.line)

    def __repr__(self):
        return "Command(%s, id=%r, line=%d, %r)" % (self.name, self.id, self.line, self.members)


class Refusal:
    """A line that is not a valid command for this run: ``message`` names the file and line
    (``commands.jsonl:7: …``); ``id`` is the line's id when readable, else None."""

    __slots__ = ("id", "line", "message")

    def __init__(self, id, line, message):
        self.id, self.line, self.message = id, line, message

    def __repr__(self):
        return "Refusal(id=%r, %r)" % (self.id, self.message)


def _reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def _no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError("duplicate member \"%s\"" % k)
        obj[k] = v
    return obj


def parse_line(raw, line, run_id):
    """Parses one line (bytes, without its newline) of commands.jsonl: a :class:`Command`, or a
    :class:`Refusal` naming ``commands.jsonl:LINE`` and the reason."""
    where = "%s:%d" % (COMMANDS_FILE, line)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Refusal(None, line, "%s: not UTF-8 (byte %d)" % (where, e.start + 1))
    if not text.strip():
        return Refusal(None, line, "%s: empty line" % where)
    try:
        obj = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except ValueError as e:
        return Refusal(None, line, "%s: not a JSON object: %s" % (where, getattr(e, "msg", str(e))))
    except RecursionError:
        return Refusal(None, line, "%s: not a JSON object: nested too deeply" % where)
    if not isinstance(obj, dict):
        return Refusal(None, line, "%s: not a JSON object" % where)
    cid = obj.get("id")
    if not isinstance(cid, str) or not 1 <= len(cid.encode("utf-8", "surrogatepass")) <= 128:
        return Refusal(None, line, "%s: \"id\" must be a string of 1 to 128 bytes" % where)

    def refuse(reason):
        return Refusal(cid, line, "%s: %s" % (where, reason))

    run = obj.get("run")
    if not isinstance(run, str):
        return refuse("\"run\" must be a string (the run file's run_id)")
    issuer = obj.get("issuer")
    if not isinstance(issuer, dict):
        return refuse("\"issuer\" must be an object {\"user\",\"host\",\"pid\"}")
    for key, check, what in (("user", _is_str, "a string"), ("host", _is_str, "a string"), ("pid", _is_int, "an integer")):
        if key not in issuer or not check(issuer[key]):
            return refuse("issuer \"%s\" must be %s" % (key, what))
    t = obj.get("t")
    if not _is_number(t):
        return refuse("\"t\" must be a number (seconds since 1970)")
    name = obj.get("command")
    if not isinstance(name, str):
        return refuse("\"command\" must be a string")
    spec = COMMANDS.get(name)
    if spec is None:
        return refuse("unknown command \"%s\" (known: %s)" % (name, ", ".join(sorted(COMMANDS))))
    members = {}
    for key, (check, what, required) in spec.items():
        if key not in obj or (obj[key] is None and not required):
            if required:
                return refuse("%s lacks member \"%s\"" % (name, key))
            continue
        if not check(obj[key]):
            return refuse("%s: \"%s\" must be %s" % (name, key, what))
        members[key] = obj[key]
    if "axis" in members and members["axis"] not in _AXES:
        return refuse("%s: unknown axis \"%s\" (context, time or depth)" % (name, members["axis"]))
    if name == "lr_scale" and not 0 < members["value"] <= MAX_LR_SCALE:
        return refuse("lr_scale: \"value\" must be above 0 and at most %d (got %r)" % (MAX_LR_SCALE, members["value"]))
    if run != run_id:
        return refuse("command for run \"%s\", but this run is \"%s\"" % (run, run_id))
    return Command(name, cid, line, members, issuer=issuer, t=float(t))


class CommandChannel:
    """The reading side of ``RUNDIR/commands.jsonl`` for a training loop.

    ``answered_ids`` are the ids the run file already answers (a resumed run passes
    ``RunFileState.answered_ids``): they are never handed out again, nor are the id-less lines in
    ``answered_lines``. Call :meth:`poll` at each step boundary; it returns a list of
    :class:`Command` and :class:`Refusal` objects, in file order, each to be answered with one
    event. A problem with the file itself (group/world-writable, not a regular file) gives one
    :class:`Refusal` with ``line`` 0 and the file is not read this session."""

    def __init__(self, rundir, run_id, answered_ids=(), answered_lines=()):
        self.path = os.path.join(rundir, COMMANDS_FILE)
        self.run_id = run_id
        self.answered = set(answered_ids)
        self._answered_before = frozenset(answered_ids)  # what the run file answered
        self.answered_lines = set(answered_lines)
        self._offset = 0
        self._line = 0
        self._fd = None
        self._refused = None  # the reason the file is not read, once reported
        self._reported = False
        self._first_read_done = False  # the first read passes the lines the run file answered
        self._head = b""  # the file's first bytes as read (up to 64), to notice a rewrite
        #: Warnings for the run file (the file was replaced, removed or cut short); the Run takes them.
        self.notices = []
        self._lock = threading.Lock()
        self._open()

    def _open(self):
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
            os.fchmod(fd, 0o600)  # whatever the umask said
        except FileExistsError:
            try:
                fd = os.open(self.path, flags | getattr(os, "O_NONBLOCK", 0))
            except OSError as e:
                reason = "a symbolic link" if e.errno == errno.ELOOP else e.strerror
                self._refused = "%s: cannot read the command channel (%s); commands are not read this session" % (
                    self.path, reason)
                return
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            self._refused = "%s: not a regular file; commands are not read this session" % self.path
            return
        self._fd = fd
        self._check_mode(st)

    def _follow_path(self):
        """Follows the file at the path when it is no longer the one open (replaced, or removed
        and made again) or is shorter than what was read (cut): it is read again from its first
        line, as the Swift trainer does, since a sender writes to whatever the path names. Returns
        the warning to record, or None."""
        st = os.fstat(self._fd)
        try:
            named = os.stat(self.path)
            missing = False
        except FileNotFoundError:
            named, missing = None, True
        if missing or (named.st_ino, named.st_dev) != (st.st_ino, st.st_dev):
            old = self._fd
            self._fd = None
            self._open()
            if self._fd is None:  # the new file cannot be read: _refused says why
                self._fd = old
                return None
            os.close(old)
            notice = "%s was %s: commands are read from the new file's first line" % (
                COMMANDS_FILE, "removed (a new one was made)" if missing else "replaced (or removed and made again)")
        elif st.st_size < self._offset:
            notice = "%s was cut short (%d bytes, %d read): commands are read again from its first line" % (
                COMMANDS_FILE, st.st_size, self._offset)
        elif self._offset > 0 and (os.pread(self._fd, len(self._head), 0) != self._head
                                   or (st.st_size > self._offset
                                       and os.pread(self._fd, 1, self._offset - 1) != b"\n")):
            # Rewritten in place (`>`): its first bytes are not those read, or what was read ends
            # no line now.
            notice = "%s was rewritten: commands are read again from its first line" % COMMANDS_FILE
        else:
            return None
        self._offset = 0
        self._line = 0
        self._head = b""
        self.answered_lines = set()  # line numbers of the file read before
        return notice

    def _check_mode(self, st):
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            self._refused = ("%s: writable by %s (mode %04o); commands are not read this session — "
                             "chmod 600 it and restart the run" % (
                                 self.path, "group and others" if st.st_mode & stat.S_IWGRP and st.st_mode & stat.S_IWOTH
                                 else "group" if st.st_mode & stat.S_IWGRP else "others", st.st_mode & 0o777))

    @property
    def refused(self):
        """Why the file is not read, or None."""
        return self._refused

    def poll(self):
        """The commands and refusals of the whole lines added since the last call."""
        with self._lock:
            if self._refused is None and self._fd is None:
                return []  # closed
            if self._refused is None:
                notice = self._follow_path()
                if notice is not None:
                    self.notices.append(notice)
                if self._fd is not None:
                    self._check_mode(os.fstat(self._fd))
            if self._refused is not None:
                if self._reported:
                    return []
                self._reported = True
                return [Refusal(None, 0, self._refused)]
            out = []
            size = os.fstat(self._fd).st_size
            while self._offset < size:
                block = os.pread(self._fd, min(size - self._offset, 1 << 20), self._offset)
                if not block:
                    break
                end = block.rfind(b"\n")
                if end < 0:
                    if len(block) == 1 << 20:  # one line longer than 1 MiB: read it whole
                        end = self._long_line_end(size)
                        if end is None:
                            break
                        block = os.pread(self._fd, end + 1, self._offset)
                        end = len(block) - 1
                    else:
                        break  # a torn last line waits until it is whole
                for raw in block[:end].split(b"\n"):
                    self._line += 1
                    out.extend(self._take(raw, self._line))
                self._offset += end + 1
            self._first_read_done = True
            if len(self._head) < min(64, self._offset):
                self._head = os.pread(self._fd, min(64, self._offset), 0)
            return out

    def _long_line_end(self, size):
        pos = self._offset
        while pos < size:
            chunk = os.pread(self._fd, 1 << 20, pos)
            if not chunk:
                return None
            i = chunk.find(b"\n")
            if i >= 0:
                return pos + i - self._offset
            pos += len(chunk)
        return None

    def _take(self, raw, line):
        item = parse_line(raw, line, self.run_id)
        if item.id is None:
            if line in self.answered_lines:
                return []
            self.answered_lines.add(line)
            return [item]
        if item.id in self.answered:
            # The first read of a resumed run passes the lines whose ids the run file answered; any
            # other line with an id already answered is refused under its line (as the Swift trainer does),
            # so its sender is not left waiting or misled by the first line's answer.
            if (not self._first_read_done and item.id in self._answered_before) or line in self.answered_lines:
                return []
            self.answered_lines.add(line)
            return [Refusal(None, line, "%s:%d: id \"%s\" was answered already (an id is used once); not applied again"
                            % (COMMANDS_FILE, line, item.id))]
        self.answered.add(item.id)
        return [item]

    def close(self):
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


# MARK: - Sending


_counter_lock = threading.Lock()
_counter = 0
_prefix = None


def _next_id():
    global _counter, _prefix
    with _counter_lock:
        if _prefix is None or _prefix[0] != os.getpid():
            _prefix = (os.getpid(), uuid.uuid4().hex[:8])
        _counter += 1
        return "%d-%s-%d" % (_prefix[0], _prefix[1], _counter)


def _run_id(rundir):
    path = os.path.join(rundir, "run.jsonl")
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except OSError as e:
        raise ValueError("%s: cannot read the run file: %s" % (path, e.strerror)) from None
    try:
        h = json.loads(first.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        h = None
    if not isinstance(h, dict) or h.get("type") != "header":
        raise ValueError("%s:1: not a gradflow run file" % path)
    run_id = h.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise ValueError("%s:1: the header has no run_id (schema before 1.3): this run cannot be steered" % path)
    return run_id


def send(rundir, command, **members):
    """Appends one command to ``RUNDIR/commands.jsonl`` and returns its id.

    ``gradflow.commands.send("runs/a", "set_weight", axis="context", band=2, value=1.5)``;
    the run id is read from the run file's header. Members are written as given (checked by the
    run, which answers with an event: see :func:`wait_for_answer`)."""
    if command not in COMMANDS:
        raise ValueError("unknown command %r (known: %s)" % (command, ", ".join(sorted(COMMANDS))))
    from ._json import encode  # the same writer as the run file (keys in order)
    cid = members.pop("id", None) or _next_id()
    obj = {"id": cid, "run": members.pop("run", None) or _run_id(rundir),
           "issuer": {"user": _user(), "host": socket.gethostname(), "pid": os.getpid()},
           "t": time.time(), "command": command}
    obj.update(members)
    line = (encode(obj) + "\n").encode("utf-8")
    path = os.path.join(rundir, COMMANDS_FILE)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        size = os.fstat(fd).st_size
        if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
            # A sender died mid-line: its fragment becomes a line of its own (refused), and this
            # command is not glued onto it (as the Swift sender does).
            line = b"\n" + line
        n = os.write(fd, line)
        if n != len(line):
            raise OSError("%s: short write (%d of %d bytes)" % (path, n, len(line)))
    finally:
        os.close(fd)
    return cid


def _user():
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        return str(os.getuid())


def wait_for_answer(rundir, command_id, timeout=30.0, poll=0.05):
    """Waits until the run file holds the event answering ``command_id`` and returns it (a dict).
    Raises TimeoutError after ``timeout`` seconds, and EOFError at once when the run has ended
    without answering it (its last session wrote an end record; a resume would answer it)."""
    path = os.path.join(rundir, "run.jsonl")
    needle = ('"command_id":' + json.dumps(command_id)).encode("utf-8")
    offset = 0
    ended = None  # the end record of the last session, while no resume-run follows it
    deadline = time.monotonic() + timeout
    while True:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
        end = data.rfind(b"\n")
        if end >= 0:
            for raw in data[:end].split(b"\n"):
                if needle in raw or b'"type":"end"' in raw or b'"resume-run"' in raw:
                    try:
                        r = json.loads(raw.decode("utf-8"))
                    except ValueError:
                        continue
                    if not isinstance(r, dict):
                        continue
                    if r.get("command_id") == command_id:
                        return r
                    if r.get("type") == "end":
                        ended = r
                    elif r.get("type") == "event" and r.get("kind") == "resume-run":
                        ended = None
            offset += end + 1
        if ended is not None:
            raise EOFError("%s: the run ended (%s, step %s) without answering command %s; a resume of the run "
                           "will answer it" % (path, ended.get("reason"), ended.get("step"), command_id))
        if time.monotonic() >= deadline:
            raise TimeoutError("%s: no answer to command %s within %g s" % (path, command_id, timeout))
        time.sleep(poll)
