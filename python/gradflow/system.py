"""Process figures for the run file's ``system`` record (schema 1.3): CPU %, resident memory,
threads, ranks and, on CUDA, the GPU's allocated memory and utilisation."""

import os
import threading
import time

__all__ = ["SystemSampler"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds():
    t = os.times()
    return t.user + t.system


def _process_age():
    """Seconds since this process started (from /proc), or None."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); fields here start at field 3
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        return max(uptime - start_ticks / _TICKS, 1e-3)
    except (OSError, ValueError, IndexError):
        return None


def rss_bytes():
    """Resident memory of this process: /proc/self/statm, else the peak from getrusage."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        import sys
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except (ImportError, OSError):
        return 0


def thread_count():
    """Threads of this process (the kernel's count, so BLAS and OpenMP threads count too)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def world_size():
    """Processes of a torch.distributed job, 1 when it is not initialised."""
    try:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            return int(dist.get_world_size())
    except Exception:  # a torch build without distributed support
        pass
    return 1


def gpu_figures():
    """(allocated bytes, utilisation %) on the current CUDA device; None for what is unknown."""
    try:
        import torch
        if not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return None, None
        memory = int(torch.cuda.memory_allocated())
    except Exception:
        return None, None
    try:
        util = float(torch.cuda.utilization())  # needs pynvml (or amdsmi); absent: not reported
    except Exception:
        util = None
    return memory, util


class SystemSampler:
    """Takes a ``system`` record's figures every ``every`` seconds of wall time.

    :meth:`due` says whether the interval has passed (the first call always does);
    :meth:`sample` returns the figures as keyword arguments of ``runfile.system_record``, with the
    CPU % over the time since the previous sample (since the process started for the first)."""

    def __init__(self, every=5.0):
        self.every = float(every)
        self._last_wall = None
        self._last_cpu = None

    def due(self):
        return self._last_wall is None or time.monotonic() - self._last_wall >= self.every

    def sample(self):
        wall, cpu = time.monotonic(), _cpu_seconds()
        if self._last_wall is None:
            age = _process_age()
            percent = 100.0 * cpu / age if age else 0.0
        else:
            span = wall - self._last_wall
            percent = 100.0 * (cpu - self._last_cpu) / span if span > 0 else 0.0
        self._last_wall, self._last_cpu = wall, cpu
        memory, util = gpu_figures()
        return {"cpu_percent": round(percent, 1), "rss_bytes": rss_bytes(), "threads": thread_count(),
                "ranks": world_size(), "gpu_memory_bytes": memory, "gpu_util_percent": util}
