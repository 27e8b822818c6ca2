"""Expected limits whose numbers do not depend on the grid: a coarse scan to find the 95% CL region, then
finer scans of that region until the interval ends stop moving.

The likelihood is a black box here (``log_likelihood(thetas) -> log L``, in practice MadMiner's
``expected_limits(..., thetas_eval=thetas)``), evaluated on regular grids:

1. the coarse grid of ``evaluation.grid`` / ``evaluation.resolution`` locates the 95% CL region (the grid
   points within the 95% threshold of the lowest one, plus a step on each side) and feeds the p-value maps;
2. a fine grid of ``fine_points`` x ``fine_points`` over that region with a margin gives best fit and
   intervals (quadratic reading between points, :mod:`.intervals`);
3. the region is scanned again, finer, around the new intervals; the move of each end in this last step,
   as a fraction of the interval's width, is the reported convergence, and the scan goes on (up to
   ``max_rounds``) while it exceeds ``tolerance``.

A 95% CL region that reaches the edge of the coarse grid is an error: the limit lies outside the grid and
any number reported for it would be the grid's, not the physics'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .intervals import GridValues, best_fit, profile, summarise
from .levels import q_threshold

log = logging.getLogger(__name__)


class RegionAtGridEdge(RuntimeError):
    """The 95% CL region reaches the edge of the evaluation grid."""


@dataclass
class ScanResult:
    names: list[str]
    coarse: GridValues  # q = -2 log L - min over the coarse grid
    fine: list[GridValues] = field(default_factory=list)  # one per refinement round
    summary: dict = field(default_factory=dict)  # best fit, q_min, intervals (from the last round)
    convergence: dict = field(default_factory=dict)  # name -> cl -> end -> |move| / width in the last round
    log_l_offset: float = 0.0  # -2 log L at the coarse minimum (q = -2 log L - offset)

    @property
    def max_move(self) -> float:
        return max(v for by_cl in self.convergence.values() for ends in by_cl.values() for v in ends.values())

    def as_dict(self) -> dict:
        return {
            **self.summary,
            "convergence": self.convergence,
            "max_relative_move": self.max_move,
            "rounds": len(self.fine),
        }


def _grid(ranges: list[tuple[float, float]], points: int | list[int]) -> GridValues:
    counts = [points] * len(ranges) if isinstance(points, int) else points
    axes = tuple(np.linspace(lo, hi, n) for (lo, hi), n in zip(ranges, counts, strict=True))
    return GridValues(axes, np.zeros(tuple(counts)))  # type: ignore[arg-type]


def _evaluate(log_likelihood: Callable, g: GridValues, points: np.ndarray | None = None) -> np.ndarray:
    """-2 log L on the grid's points (or on ``points``), shaped like the grid (or flat)."""
    pts = g.points() if points is None else points
    values = np.asarray(log_likelihood(pts), dtype=float)
    if values.shape != (pts.shape[0],) or not np.all(np.isfinite(values)):
        raise ValueError("the log likelihood must be finite at every grid point")
    return -2.0 * values if points is not None else (-2.0 * values).reshape(g.q.shape)


def _region(summary: dict, names: list[str], margin: float) -> list[tuple[float, float]]:
    """The 95% CL box of every parameter, widened by ``margin`` times its width on each side."""
    box = []
    for name in names:
        iv = summary["intervals"][name]["95"]
        width = iv["high"] - iv["low"]
        box.append((iv["low"] - margin * width, iv["high"] + margin * width))
    return box


def _summarise_at_minimum(
    log_likelihood, g: GridValues, names: list[str], offset: float, extra: tuple[np.ndarray, float] | None
) -> dict:
    """Summary whose minimum is the lowest q among the points where the likelihood was evaluated: the
    quadratic estimate of the best fit (evaluated there: a quadratic fitted to a flat valley can dip below
    the likelihood), the lowest grid point, and ``extra`` (theta, q) if given."""
    theta, _ = best_fit(g)
    q_there = float(_evaluate(log_likelihood, g, theta[np.newaxis, :])[0]) - offset
    i, j = np.unravel_index(int(np.argmin(g.q)), g.q.shape)
    candidates = [(theta, q_there), (np.array([g.axes[0][i], g.axes[1][j]]), float(g.q[i, j]))]
    if extra is not None:
        candidates.append(extra)
    return summarise(g, names, min(candidates, key=lambda c: c[1]))


def resolve_limits(
    log_likelihood: Callable[[np.ndarray], np.ndarray],
    names: list[str],
    ranges: list[tuple[float, float]],
    resolution: int,
    fine_points: int = 15,
    tolerance: float = 0.005,
    max_rounds: int = 5,
    margin: float = 0.25,
    truth: np.ndarray | None = None,
) -> ScanResult:
    """Best fit and 68%/95% CL intervals of ``log_likelihood`` (a function of an (n, 2) array of points);
    with ``truth``, also q there (0 for an unbiased likelihood on Asimov data of the truth; the truth is then
    one of the candidates for the minimum, which matters where the minimum is a flat valley)."""
    coarse = _grid(ranges, resolution)
    m2logl = _evaluate(log_likelihood, coarse)
    offset = float(m2logl.min())
    coarse = GridValues(coarse.axes, m2logl - offset)
    result = ScanResult(names, coarse, log_l_offset=offset)
    box = _coarse_box(coarse, names, ranges)
    at_truth = None
    if truth is not None:
        truth = np.asarray(truth, dtype=float)
        at_truth = (truth, float(_evaluate(log_likelihood, coarse, truth[np.newaxis, :])[0]) - offset)
    summary: dict = {}
    for _ in range(max_rounds):
        fine = _grid(box, fine_points)
        fine = GridValues(fine.axes, _evaluate(log_likelihood, fine) - offset)
        try:
            new = _summarise_at_minimum(log_likelihood, fine, names, offset, at_truth)
        except ValueError:  # an interval narrower than a step of this grid: zoom in on the minimum
            i, j = np.unravel_index(int(np.argmin(fine.q)), fine.q.shape)
            steps = [(a[1] - a[0]) * 2 for a in fine.axes]
            centre = (fine.axes[0][i], fine.axes[1][j])
            box = [(c - s, c + s) for c, s in zip(centre, steps, strict=True)]
            continue
        if not summary:  # the first fine scan: its intervals are what later rounds are compared with
            result.fine.append(fine)
            summary = new
            box = _region(new, names, margin)
            continue
        result.fine.append(fine)
        opened = [
            n for n in names for cl in ("68", "95") for end in ("low", "high") if new["intervals"][n][cl][f"open_{end}"]
        ]
        if opened:  # the region moved out of the box: widen it and scan again
            box = [(lo - (hi - lo) * 0.5, hi + (hi - lo) * 0.5) for lo, hi in box]
            box = [(max(lo, r[0]), min(hi, r[1])) for (lo, hi), r in zip(box, ranges, strict=True)]
            summary = new
            continue
        result.convergence = _moves(summary, new, names)
        result.summary = new
        summary = new
        log.info(
            "refinement round %d: largest move of an interval end %.2g of its width", len(result.fine), result.max_move
        )
        if result.max_move < tolerance:
            break
        box = _region(new, names, margin)
    if not result.summary:
        raise RegionAtGridEdge("the 95% CL region kept leaving the refinement box: the likelihood is not regular")
    if at_truth is not None:
        result.summary["q_at_truth"] = at_truth[1] - result.summary["q_min"]
    return result


def _coarse_box(coarse: GridValues, names: list[str], ranges: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """A box that holds the 95% CL region: the grid points whose profile lies within the 95% threshold of the
    lowest grid point, and one step more on each side (the continuous minimum is lower still, so the true
    region lies inside). A region that reaches the grid's edge is an error."""
    box = []
    level = float(coarse.q.min()) + q_threshold("95", 1)
    for axis, name in enumerate(names):
        values, prof = profile(coarse, axis)
        inside = np.flatnonzero(prof <= level)
        if inside[0] == 0 or inside[-1] == len(values) - 1:
            raise RegionAtGridEdge(
                f"the 95% CL region in {name} reaches the edge of the evaluation grid {ranges[axis]}:"
                f" widen evaluation.grid.{name}"
            )
        box.append((float(values[inside[0] - 1]), float(values[inside[-1] + 1])))
    return box


def _moves(old: dict, new: dict, names: list[str]) -> dict:
    out: dict = {}
    for n in names:
        out[n] = {}
        for cl in ("68", "95"):
            a, b = old["intervals"][n][cl], new["intervals"][n][cl]
            width = b["high"] - b["low"]
            out[n][cl] = {end: abs(b[end] - a[end]) / width for end in ("low", "high")}
    return out
