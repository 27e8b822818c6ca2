"""Best fits and profiled 1D intervals from q = -2 Delta log L sampled on a regular 2D grid, without grid
artefacts.

A linear crossing between grid points puts the interval ends far too close to the minimum when q is close
to quadratic and the step is comparable to the width (on a step of half a sigma, a 68% interval comes out
about half as wide as it is). Here every step that reads between grid points is quadratic, so that a
quadratic q gives its exact answer on any grid with at least three points across the interval:

- the profile over the other parameter takes, at each value, the vertex of the parabola through the
  discrete minimum and its two neighbours;
- the best fit is the vertex of a quadratic surface fitted to the 3 x 3 points around the discrete minimum,
  a point of the continuous parameter space;
- an interval end is the root of the parabola through the three profile points around the crossing.

A q that is not quadratic is handled by sampling it more finely where it matters: see :mod:`.scan`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .levels import COVERAGE, q_threshold


@dataclass(frozen=True)
class GridValues:
    """q on the regular grid ``axes[0] x axes[1]``; ``q[i, j]`` belongs to ``(axes[0][i], axes[1][j])``."""

    axes: tuple[np.ndarray, np.ndarray]
    q: np.ndarray

    @classmethod
    def from_points(cls, theta: np.ndarray, q: np.ndarray) -> GridValues:
        """From MadMiner's flat list of grid points (any order) and their values."""
        xs, ys = np.unique(theta[:, 0]), np.unique(theta[:, 1])
        grid = np.full((len(xs), len(ys)), np.nan)
        grid[np.searchsorted(xs, theta[:, 0]), np.searchsorted(ys, theta[:, 1])] = q
        if np.isnan(grid).any():
            raise ValueError("the points do not fill a regular grid")
        return cls((xs, ys), grid)

    def points(self) -> np.ndarray:
        a, b = np.meshgrid(*self.axes, indexing="ij")
        return np.column_stack([a.ravel(), b.ravel()])


def _vertex(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Vertex (position, value) of the parabola through three points; the middle point if it is not a minimum."""
    a, b, c = np.polyfit(x, y, 2)
    if a <= 0:
        return float(x[1]), float(y[1])
    xv = -b / (2 * a)
    xv = float(np.clip(xv, x[0], x[2]))
    return xv, float(np.polyval((a, b, c), xv))


def profile(g: GridValues, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(values of parameter ``axis``, q minimised over the other parameter), sub-grid at each value."""
    q = g.q if axis == 0 else g.q.T
    other = g.axes[1 - axis]
    out = np.empty(q.shape[0])
    for i, row in enumerate(q):
        j = int(np.argmin(row))
        if 0 < j < len(row) - 1:
            out[i] = _vertex(other[j - 1 : j + 2], row[j - 1 : j + 2])[1]
        else:
            out[i] = row[j]
    return g.axes[axis], out


def best_fit(g: GridValues) -> tuple[np.ndarray, float]:
    """(theta, q) at the minimum: a quadratic surface through the 3 x 3 points around the grid minimum."""
    i, j = np.unravel_index(int(np.argmin(g.q)), g.q.shape)
    xs, ys = g.axes
    theta = np.array([xs[i], ys[j]], dtype=float)
    q0 = float(g.q[i, j])
    if not (0 < i < len(xs) - 1 and 0 < j < len(ys) - 1):
        return theta, q0  # at the grid edge: no continuation (the caller reports it)
    dx, dy = np.meshgrid(xs[i - 1 : i + 2] - xs[i], ys[j - 1 : j + 2] - ys[j], indexing="ij")
    dx, dy = dx.ravel(), dy.ravel()
    design = np.column_stack([np.ones(9), dx, dy, dx**2, dx * dy, dy**2])
    c, *_ = np.linalg.lstsq(design, g.q[i - 1 : i + 2, j - 1 : j + 2].ravel(), rcond=None)
    hessian = np.array([[2 * c[3], c[4]], [c[4], 2 * c[5]]])
    if np.all(np.linalg.eigvalsh(hessian) > 0):
        step = np.linalg.solve(hessian, -c[1:3])
        if abs(step[0]) <= xs[i + 1] - xs[i] and abs(step[1]) <= ys[j + 1] - ys[j]:
            q_min = (
                c[0] + c[1] * step[0] + c[2] * step[1] + c[3] * step[0] ** 2 + c[4] * step.prod() + c[5] * step[1] ** 2
            )
            return theta + step, float(min(q_min, q0))
    # not a clean quadratic bowl: the parabola along each axis
    tx, qx = _vertex(xs[i - 1 : i + 2], g.q[i - 1 : i + 2, j])
    ty, qy = _vertex(ys[j - 1 : j + 2], g.q[i, j - 1 : j + 2])
    return np.array([tx, ty]), min(qx, qy)


def _crossing(x: np.ndarray, y: np.ndarray, inside: int, outside: int, level: float) -> float:
    """Where the profile crosses ``level`` between neighbours ``inside`` (below) and ``outside`` (above): the
    root of the parabola through them and the next point towards the minimum; linear if it has no root there."""
    p = min(inside, outside)
    a, b = sorted((x[inside], x[outside]))
    if len(x) >= 3:
        start = int(np.clip(p if inside > outside else p - 1, 0, len(x) - 3))
        idx = np.arange(start, start + 3)
        roots = np.roots(np.polyfit(x[idx], y[idx] - level, 2))
        roots = roots[np.isreal(roots)].real
        roots = roots[(roots >= a - 1e-12) & (roots <= b + 1e-12)]
        if len(roots) == 1:
            return float(roots[0])
    t = (level - y[inside]) / (y[outside] - y[inside])
    return float(x[inside] + t * (x[outside] - x[inside]))


def interval(values: np.ndarray, q: np.ndarray, level: float) -> tuple[float, float, bool, bool]:
    """Outermost crossings of ``level`` by the profile ``q``: (low, high, low_is_open, high_is_open); 'open'
    means the region reaches the end of the sampled range."""
    inside = np.flatnonzero(q <= level)
    if inside.size == 0:  # narrower than the step: both ends from the parabola around the profile's minimum
        k = int(np.clip(np.argmin(q) - 1, 0, len(q) - 3))
        roots = np.sort(np.roots(np.polyfit(values[k : k + 3], q[k : k + 3] - level, 2)))
        if len(values) < 3 or not np.all(np.isreal(roots)):
            raise ValueError("no sampled point is inside the interval: sample more finely around the minimum")
        return float(roots[0].real), float(roots[1].real), False, False
    lo_i, hi_i = int(inside[0]), int(inside[-1])
    low = _crossing(values, q, lo_i, lo_i - 1, level) if lo_i > 0 else float(values[0])
    high = _crossing(values, q, hi_i, hi_i + 1, level) if hi_i < len(values) - 1 else float(values[-1])
    return low, high, lo_i == 0, hi_i == len(values) - 1


def summarise(g: GridValues, names: list[str], minimum: tuple[np.ndarray, float] | None = None) -> dict:
    """Best fit, its q, and the 68%/95% CL intervals of each parameter (the other profiled). ``minimum``
    (theta, q) replaces the quadratic estimate of the minimum, e.g. by the likelihood evaluated there."""
    theta, q_min = best_fit(g) if minimum is None else minimum
    out = {"best_fit": dict(zip(names, map(float, theta), strict=True)), "q_min": q_min, "intervals": {}}
    for axis, name in enumerate(names):
        values, q_prof = profile(g, axis)
        out["intervals"][name] = {}
        for cl in COVERAGE:
            low, high, open_low, open_high = interval(values, q_prof, q_min + q_threshold(cl, 1))
            out["intervals"][name][cl] = {"low": low, "high": high, "open_low": open_low, "open_high": open_high}
    return out
