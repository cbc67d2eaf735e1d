"""The refiner's statistics in one pass each on the CPU, when the C module was built.

``pip install ./python`` compiles ``_fused.c`` (an optional extension: a machine without a C
compiler installs the package without it). Its kernels compute exactly the statistics that the
torch operations in refiner.py and attention.py define (docs/METHOD.md §8), for contiguous
float32 CPU tensors, reading each tensor in place instead of one eager pass per operation
(docs/PERFORMANCE.md, "PyTorch: cost of the refinement"). Everything else — CUDA, float64,
non-contiguous tensors, more than ``MAX_BANDS`` context bands or ``MAX_GROUPS`` depth groups, or
``enabled = False`` — runs the torch operations; a missing gradient sends the time filter's step
to them too, while the depth meter reads it as zeros on both paths.
Sums are added in a fixed order, so results are the same run after run; they differ from the
torch path's by float rounding only.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional

import torch

try:
    from . import _fused as kernels
except ImportError:  # built without a C compiler: the torch path runs
    kernels = None

#: The most context bands and depth groups the kernels take (more run the torch operations).
MAX_BANDS: int = kernels.MAX_BANDS if kernels is not None else 0
MAX_GROUPS: int = kernels.MAX_GROUPS if kernels is not None else 0

_FLOAT32 = torch.float32

#: The switch (tests and benchmarks compare both paths in one process). ``GRADFLOW_FUSED=0`` in
#: the environment turns the kernels off from the start.
enabled: bool = os.environ.get("GRADFLOW_FUSED", "1") != "0"


def available() -> bool:
    """Whether the kernels were built and are switched on."""
    return kernels is not None and enabled


def threads() -> int:
    """The thread count the kernels split their work over: torch's intra-op count. The kernels'
    results have the same bits at every count (_fused.c)."""
    return torch.get_num_threads()


def readable(t: Optional[torch.Tensor]) -> bool:
    """Whether the kernels can read the tensor ``t`` where it lies: present, float32, on the CPU and
    contiguous (the cheapest attribute reads: ``is_cpu`` and a dtype identity test)."""
    return t is not None and t.dtype is _FLOAT32 and t.is_cpu and t.is_contiguous()


def eligible(tensors: Iterable[Optional[torch.Tensor]]) -> bool:
    """Whether the kernels may read ``tensors``: built and on, and every tensor ``readable``."""
    return available() and all(map(readable, tensors))
