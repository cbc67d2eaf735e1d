"""The processes of a ``torch.distributed`` job as a :class:`gradflow.Run` sees them.

Under DDP (``torchrun``, the Hugging Face Trainer on several GPUs) every process runs the same
loop and makes the same ``Run``. Rank 0 writes the run folder and reads its command channel; the
other ranks write nothing. At each step boundary the ranks exchange, in one collective, what rank 0
read from the channel and whether any rank was asked to stop (a signal), so every rank applies the
same commands at the same step and stops at the same step: a weight, mode or learning-rate change
applied on one rank only would make the replicas' parameters drift apart silently, and a rank that
stopped alone would leave the others waiting in their next collective.
"""

from __future__ import annotations

import time
from typing import List, Optional, Tuple

__all__ = ["Ranks"]


class Ranks:
    """This process's rank and the job's size, and the collectives a ``Run`` needs."""

    #: Seconds :meth:`meet` waits for every rank to arrive.
    MEET_TIMEOUT = 120.0
    _meetings = 0   # meetings this process has held, for the store keys

    def __init__(self, dist, rank: int, size: int):
        self._dist = dist
        self.rank = rank
        self.size = size

    @classmethod
    def current(cls) -> Optional["Ranks"]:
        """The job's ranks when ``torch.distributed`` is initialised with more than one process,
        else None (a single process: nothing to exchange)."""
        try:
            import torch.distributed as dist
            if not (dist.is_available() and dist.is_initialized()):
                return None
            size = int(dist.get_world_size())
            return cls(dist, int(dist.get_rank()), size) if size > 1 else None
        except Exception:  # a torch build without distributed support
            return None

    @property
    def writes(self) -> bool:
        """Whether this rank writes the run folder (rank 0)."""
        return self.rank == 0

    def meet(self, what: str, timeout: Optional[float] = None) -> Optional[int]:
        """Waits until every rank has reached a meeting of this name (the process group's key-value
        store counts arrivals; no collective, so a rank that never comes cannot hang the others in
        one). Returns None when all came within ``timeout`` seconds (``MEET_TIMEOUT`` by default),
        else how many came; None at once where the store cannot be reached (the collective that
        follows then has no such guard)."""
        try:
            store = self._dist.distributed_c10d._get_default_store()
        except Exception:
            return None
        Ranks._meetings += 1
        key = "gradflow/%s/%d" % (what, Ranks._meetings)
        arrived = store.add(key, 1)
        deadline = time.monotonic() + (self.MEET_TIMEOUT if timeout is None else timeout)
        while arrived < self.size:
            if time.monotonic() > deadline:
                return arrived
            time.sleep(0.01)
            arrived = store.add(key, 0)
        return None

    def gather(self, value) -> list:
        """Every rank's ``value``, in rank order, on every rank."""
        out = [None] * self.size
        self._dist.all_gather_object(out, value)
        return out

    def share(self, value):
        """Rank 0's ``value`` on every rank (any picklable object)."""
        box = [value if self.rank == 0 else None]
        self._dist.broadcast_object_list(box, src=0)
        return box[0]

    def exchange(self, commands, stop: Optional[str],
                 error: Optional[str] = None) -> Tuple[list, List[Tuple[int, str]], Optional[str]]:
        """One step boundary's collective: returns rank 0's ``commands`` (what it read from the
        channel), the ``(rank, reason)`` of every rank whose ``stop`` is set, and rank 0's ``error``
        (its channel could not be read: every rank then raises it, none waits alone)."""
        gathered = self.gather((list(commands or ()) if self.rank == 0 else None, stop,
                                error if self.rank == 0 else None))
        stops = [(r, s) for r, (_, s, _) in enumerate(gathered) if s]
        return gathered[0][0], stops, gathered[0][2]
