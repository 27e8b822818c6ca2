"""From MadMiner's expected log-likelihood ratios on a grid to best fits and 1D confidence intervals."""

from __future__ import annotations

import numpy as np

#: -2 Delta log L thresholds for one parameter (the other profiled): 68.27% (1 sigma) and 95% CL.
THRESHOLDS = {"68": 1.0, "95": 3.841458820694124}


def q_on_grid(llr_kin: np.ndarray | float, llr_rate: np.ndarray | float) -> np.ndarray:
    """q = -2 (log r - max log r) from MadMiner's kinematic and rate parts."""
    total = np.asarray(llr_kin, dtype=float) + np.asarray(llr_rate, dtype=float)
    return -2.0 * (total - np.max(total))


def profile(theta_grid: np.ndarray, q: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Profile q over all other parameters: (values of parameter ``axis``, min q at each value)."""
    values = np.unique(np.round(theta_grid[:, axis], 12))
    q_min = np.array([q[np.isclose(theta_grid[:, axis], v)].min() for v in values])
    return values, q_min


def interval(values: np.ndarray, q: np.ndarray, threshold: float) -> tuple[float, float, bool, bool]:
    """Interval where the profiled q is below ``threshold``, with linear interpolation between grid
    points. Returns (low, high, low_is_open, high_is_open); 'open' means the interval reaches the edge of
    the grid, so the true limit lies outside it."""
    inside = q <= threshold
    if not inside.any():
        raise ValueError("no grid point is inside the interval: the grid is too coarse around the minimum")
    idx = np.flatnonzero(inside)
    lo_i, hi_i = idx[0], idx[-1]

    def crossing(i_in: int, i_out: int) -> float:
        q_in, q_out = q[i_in], q[i_out]
        t = (threshold - q_in) / (q_out - q_in)
        return float(values[i_in] + t * (values[i_out] - values[i_in]))

    low = crossing(lo_i, lo_i - 1) if lo_i > 0 else float(values[0])
    high = crossing(hi_i, hi_i + 1) if hi_i < len(values) - 1 else float(values[-1])
    return low, high, bool(lo_i == 0), bool(hi_i == len(values) - 1)


def summarise(theta_grid: np.ndarray, q: np.ndarray, names: list[str]) -> dict:
    """Best fit and 68%/95% CL intervals per parameter (others profiled)."""
    best = theta_grid[int(np.argmin(q))]
    out = {"best_fit": {n: float(v) for n, v in zip(names, best, strict=True)}, "intervals": {}}
    for axis, name in enumerate(names):
        values, q_prof = profile(theta_grid, q, axis)
        out["intervals"][name] = {}
        for cl, threshold in THRESHOLDS.items():
            low, high, open_low, open_high = interval(values, q_prof, threshold)
            out["intervals"][name][cl] = {"low": low, "high": high, "open_low": open_low, "open_high": open_high}
    return out
