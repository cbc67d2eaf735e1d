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

from typing import List, Optional, Tuple

__all__ = ["Ranks"]


class Ranks:
    """This process's rank and the job's size, and the collectives a ``Run`` needs."""

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

    def share(self, value):
        """Rank 0's ``value`` on every rank (any picklable object)."""
        box = [value if self.rank == 0 else None]
        self._dist.broadcast_object_list(box, src=0)
        return box[0]

    def exchange(self, commands, stop: Optional[str]) -> Tuple[list, List[Tuple[int, str]]]:
        """One step boundary's collective: returns rank 0's ``commands`` (what it read from the
        channel) and the ``(rank, reason)`` of every rank whose ``stop`` is set."""
        gathered = [None] * self.size
        self._dist.all_gather_object(gathered, (list(commands or ()) if self.rank == 0 else None, stop))
        stops = [(r, s) for r, (_, s) in enumerate(gathered) if s]
        return gathered[0][0], stops
