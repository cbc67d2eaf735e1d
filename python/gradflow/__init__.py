"""Gradflow for PyTorch: record a training run in Gradflow's run format (``RUNDIR/run.jsonl``,
docs/FORMAT.md, schema 1.3) so ``gradflow replay``, ``runs`` and ``export`` read it, and steer
it from another process through ``RUNDIR/commands.jsonl`` (``gradflow attach``,
:func:`gradflow.commands.send`).

- :class:`gradflow.Run` — for a hand-written training loop.
- :class:`gradflow.hf.GradflowCallback` — for a Hugging Face ``Trainer`` (imports transformers).
- :mod:`gradflow.refine` — the multi-scale gradient refinement's axes (``Refiner``).
- :mod:`gradflow.runfile`, :mod:`gradflow.commands` — the file formats themselves.

Whoever can write the run folder can steer the run: keep it as private as the run.
"""

from .run import Run, RunError
from .runfile import SCHEMA, data_source, file_hash
from .commands import send, wait_for_answer

__version__ = "0.1.0"
__all__ = ["Run", "RunError", "SCHEMA", "data_source", "file_hash", "send", "wait_for_answer", "__version__"]
