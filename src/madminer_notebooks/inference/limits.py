"""MadMiner's ``AsymptoticLimits`` with the project's three changes to what it computes, each in its own
module and each called exactly as MadMiner's:

- :mod:`.asimov`: the histograms filled from the Asimov data themselves (all held-out events, exact
  weights), and the rate term without MadMiner's rounding of the expected number of events;
- :mod:`.sallino`: SALLY's ``sallino`` mode as a ratio of binned probabilities of the same statistic;
- :mod:`.calibration`: a ratio estimator's normalisation calibrated on held-out events disjoint from the
  Asimov data (``calibrate_ratio``).

Everything else (the modes, the grid, the Asimov expectation, the p-values) is MadMiner's. The private
MadMiner methods these override are pinned by ``tests/test_madminer_private_api.py``.
"""

from __future__ import annotations

import numpy as np

from .asimov import ConsistentAsimov
from .calibration import RatioCalibration
from .sallino import SALLINO_BINNINGS, SallinoRatio


class ConsistentAsymptoticLimits(RatioCalibration, SallinoRatio, ConsistentAsimov):
    """``AsymptoticLimits`` whose histogram model and Asimov data are the same events, whose sallino mode is
    a likelihood ratio, and whose ratio estimates can be calibrated on held-out events disjoint from the
    Asimov data. ``reference`` (the SM by default) is where sallino projects from and what the calibration
    weights at."""

    def __init__(
        self,
        filename: str,
        calibrate_ratio: bool = False,
        reference: np.ndarray | None = None,
        sallino_binning: str = SALLINO_BINNINGS[0],
    ):
        if sallino_binning not in SALLINO_BINNINGS:
            raise ValueError(f"unknown sallino binning {sallino_binning!r} (expected one of {SALLINO_BINNINGS})")
        super().__init__(filename)
        self.sallino_binning = sallino_binning
        self.calibrate_ratio = calibrate_ratio
        self.reference = np.zeros(self.n_parameters) if reference is None else np.asarray(reference, dtype=float)
