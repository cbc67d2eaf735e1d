"""The method's three scale axes for PyTorch (docs/METHOD.md, "In PyTorch").

    from gradflow.refine import Refiner, RefineError, BandedCausalSelfAttention
"""

from .attention import BandedCausalSelfAttention, EdgeWeightedMatmul
from .core import RefineError, ContextBands, WeightBounds
from .refiner import Refiner

__all__ = ["Refiner", "RefineError", "BandedCausalSelfAttention", "EdgeWeightedMatmul", "ContextBands",
           "WeightBounds"]
