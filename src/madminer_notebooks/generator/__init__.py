"""Built-in leading-order generator for u d -> u d H, H -> gamma gamma (W+ W- fusion) in EWdim6.

Use ``python -m madminer_notebooks.generator --help`` or :func:`generate`.
"""

from .benchmarks import SetupError, load_setup
from .phase_space import GenerationCuts
from .process import ScaleChoice, ScaleError
from .run import GenerationError, GenerationRequest, GenerationResult, generate

__all__ = [
    "GenerationCuts",
    "GenerationError",
    "GenerationRequest",
    "GenerationResult",
    "ScaleChoice",
    "ScaleError",
    "SetupError",
    "generate",
    "load_setup",
]
