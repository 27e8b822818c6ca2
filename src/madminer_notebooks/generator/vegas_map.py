"""A VEGAS adaptive map: one piecewise-linear grid per dimension, trained on |f|^2.

Written for the generator rather than taken from the ``vegas`` package so that random numbers come
from the caller's numpy ``Generator`` (reproducible, independent streams per job) and the grid can be
pickled to worker processes as two small arrays.
"""

from __future__ import annotations

import numpy as np


class VegasMap:
    """Maps uniform points y in [0, 1)^d to x in [0, 1)^d with Jacobian dx/dy."""

    def __init__(self, ndim: int, nbins: int = 64):
        self.ndim = ndim
        self.nbins = nbins
        self.edges = np.tile(np.linspace(0.0, 1.0, nbins + 1), (ndim, 1))

    def map(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (x, jacobian, bin indices) for points y of shape (n, ndim)."""
        scaled = y * self.nbins
        idx = np.minimum(scaled.astype(np.int64), self.nbins - 1)
        frac = scaled - idx
        dims = np.arange(self.ndim)
        lo = self.edges[dims, idx]
        width = self.edges[dims, idx + 1] - lo
        x = lo + frac * width
        jac = np.prod(width * self.nbins, axis=1)
        return x, jac, idx

    def adapt(self, idx: np.ndarray, f_times_jac: np.ndarray, alpha: float = 1.5) -> None:
        """Move the edges so that each bin carries an equal share of sum (f * jac)^2 (VEGAS rule).

        ``alpha`` damps the change per iteration; the bin weights are smoothed with their neighbours
        first so that a single large weight cannot collapse a bin.
        """
        f2 = f_times_jac**2
        new_edges = np.empty_like(self.edges)
        for d in range(self.ndim):
            acc = np.bincount(idx[:, d], weights=f2, minlength=self.nbins)
            if acc.sum() <= 0:
                new_edges[d] = self.edges[d]
                continue
            smooth = np.empty_like(acc)
            smooth[0] = (acc[0] + acc[1]) / 2
            smooth[-1] = (acc[-2] + acc[-1]) / 2
            smooth[1:-1] = (acc[:-2] + acc[1:-1] + acc[2:]) / 3
            smooth /= smooth.sum()
            with np.errstate(divide="ignore", invalid="ignore"):
                importance = np.where(smooth > 0, ((smooth - 1) / np.log(smooth)) ** alpha, 0.0)
            if importance.sum() <= 0:
                new_edges[d] = self.edges[d]
                continue
            cumulative = np.concatenate([[0.0], np.cumsum(importance)])
            targets = np.linspace(0.0, cumulative[-1], self.nbins + 1)
            new_edges[d] = np.interp(targets, cumulative, self.edges[d])
            new_edges[d, 0], new_edges[d, -1] = 0.0, 1.0
        self.edges = new_edges
