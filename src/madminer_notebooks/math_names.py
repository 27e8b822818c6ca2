"""The math functions MadMiner's expressions may call (``madminer.utils.various.math_commands``), as numpy's
element-wise counterparts: what the columnar observables (:mod:`.analysis.expressions`) and the columnar
Fisher information (:mod:`.inference.columnar_fisher`) evaluate over arrays. A module of its own, so that
neither pulls in the other's imports."""

from __future__ import annotations

import numpy as np

#: numpy's counterparts of the functions in ``madminer.utils.various.math_commands``.
NUMPY_MATH = {
    "acos": np.arccos,
    "asin": np.arcsin,
    "atan": np.arctan,
    "atan2": np.arctan2,
    "ceil": np.ceil,
    "cos": np.cos,
    "cosh": np.cosh,
    "exp": np.exp,
    "floor": np.floor,
    "log": np.log,
    "pow": np.power,
    "sin": np.sin,
    "sinh": np.sinh,
    "sqrt": np.sqrt,
    "tan": np.tan,
    "tanh": np.tanh,
}
