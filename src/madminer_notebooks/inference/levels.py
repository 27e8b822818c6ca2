"""Confidence levels: one definition for the limits, the closure checks and the plots.

"68%" is one Gaussian standard deviation (68.27% coverage) and "95%" is 95%, as in the PDG's tables. By
Wilks' theorem q = -2 Delta log L follows a chi-squared distribution with as many degrees of freedom as
parameters are let free, so a level's threshold is ``chi2.ppf(coverage, dof)``: 1.00 and 3.84 for one
parameter (the other profiled: the intervals), 2.30 and 5.99 for a region of two (the contours).
"""

from __future__ import annotations

from scipy.stats import chi2

#: coverage of each confidence level reported, by its label
COVERAGE: dict[str, float] = {"68": float(chi2.cdf(1.0, 1)), "95": 0.95}


def q_threshold(cl: str, dof: int) -> float:
    """q = -2 Delta log L above the minimum at which the ``cl`` region of ``dof`` parameters ends."""
    return float(chi2.ppf(COVERAGE[cl], dof))


def p_value(cl: str) -> float:
    """The p-value at which the ``cl`` region ends (what a p-value map's contour is drawn at)."""
    return 1.0 - COVERAGE[cl]
