"""SALLY's ``sallino`` mode histograms, at each theta, the one number ``h = t_hat(x) . u`` with ``u`` the unit
vector from the reference point to theta: near the reference it carries all the information the estimated
score has about theta in that direction, where an 8 x 8 histogram of the 2D score keeps about as little as a
histogram of two observables. MadMiner 0.9.6 evaluates it as ``log p(h_theta | theta)``, a density of a
statistic that changes with theta, so values at different theta are not a likelihood ratio (and are not
maximal at the truth). Here it is the ratio of binned probabilities of the *same* statistic,
``log p(h_theta in bin | theta) - log p(h_theta in bin | reference)``: zero at the reference, maximal at the
truth on Asimov data of the reference. The bins are of equal width in ``h`` between its 0.1% and 99.9%
quantiles at the reference (outer bins open). MadMiner's bins of equal probability lump the high-pT tail,
where the score and the EFT effects are largest, into one or two bins and lose a sizeable part of the
information (``benchmarks/sally_binning.py`` measures both).

:class:`SallinoRatio` changes ``AsymptoticLimits``'s ``sallino`` mode to this ratio; the other modes pass
through unchanged.
"""

from __future__ import annotations

import numpy as np
from madminer.utils.histo import Histo

from .asimov import open_bins

#: how the sallino statistic is binned at each theta (the first is the chain's)
SALLINO_BINNINGS = ("equal-width", "equal-probability")

#: what MadMiner's ``Histo`` adds to every bin of a sallino histogram, so that no bin has zero probability
HISTO_EPSILON = 1.0e-12


def sallino_edges(h: np.ndarray, reference_weights: np.ndarray, n_bins: int, binning: str) -> list[np.ndarray]:
    """The bins of one sallino statistic, fixed at the reference, outer bins open: equal widths between the
    0.1% and 99.9% quantiles, or MadMiner's adaptive bins of equal probability."""
    if binning == "equal-width":
        lo, hi = Histo._adaptive_binning(h, 1, weights=reference_weights)  # MadMiner's 0.1% and 99.9% quantiles
        return open_bins([np.linspace(lo, hi, n_bins + 1)])
    return open_bins([Histo._adaptive_binning(h, n_bins, weights=reference_weights)])


class HistoRatio:
    """log p(h in bin | theta) - log p(h in bin | reference) of one sallino statistic from two MadMiner
    ``Histo`` (MadMiner's own path, one switch away: :attr:`ConsistentAsymptoticLimits.sallino_ratio`), with
    ``Histo``'s interface (``log_likelihood``, ``edges``) so that ``AsymptoticLimits`` evaluates it unchanged."""

    def __init__(self, h: np.ndarray, weights: np.ndarray, reference_weights: np.ndarray, n_bins: int, binning: str):
        self.edges = sallino_edges(np.asarray(h, dtype=float).reshape(-1), reference_weights, n_bins, binning)
        self.numerator = Histo(h, weights, self.edges, epsilon=HISTO_EPSILON)
        self.denominator = Histo(h, reference_weights, self.edges, epsilon=HISTO_EPSILON)

    def log_likelihood(self, h: np.ndarray) -> np.ndarray:
        return self.numerator.log_likelihood(h) - self.denominator.log_likelihood(h)


class ColumnarRatio(HistoRatio):
    """:class:`HistoRatio` with the two histograms filled by one bin search and two ``bincount`` calls (the
    chain's path). A scan builds one per parameter point; MadMiner's ``Histo`` fills the weights and their
    squares with ``histogramdd`` and finds the edges with a third: 70% of quick's SALLY scan. The values
    equal ``HistoRatio``'s (tests/test_limits_asimov.py compares them)."""

    def __init__(self, h: np.ndarray, weights: np.ndarray, reference_weights: np.ndarray, n_bins: int, binning: str):
        h = np.asarray(h, dtype=float).reshape(-1)
        self.edges = sallino_edges(h, reference_weights, n_bins, binning)
        index = _bin_index(self.edges[0], h)
        n = len(self.edges[0]) - 1
        with np.errstate(divide="ignore"):  # a histogram without any weight: log 0, as with MadMiner's Histo
            self._log_ratio = np.log(_bin_probabilities(index, weights, n)) - np.log(
                _bin_probabilities(index, reference_weights, n)
            )

    def log_likelihood(self, h: np.ndarray) -> np.ndarray:
        """Per event, ``Histo.log_likelihood`` of the numerator minus that of the denominator: values outside
        the edges count in the outer bins."""
        index = _bin_index(self.edges[0], np.asarray(h).reshape(-1))
        return self._log_ratio[np.clip(index, 0, len(self._log_ratio) - 1)]


def _bin_index(edges: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Each value's bin, a value on an edge in the bin above it; values outside the (open) edges, and NaN,
    at -1 or ``len(edges) - 1``: outside every bin, as ``histogramdd`` leaves them."""
    return np.searchsorted(edges, h, side="right") - 1


def _bin_probabilities(index: np.ndarray, weights: np.ndarray, n_bins: int) -> np.ndarray:
    """MadMiner's ``Histo`` of one observable in fixed bins, from each event's bin (:func:`_bin_index`), up to
    the bin widths: the weights summed per bin, normalised to one, ``HISTO_EPSILON`` added to every bin and
    normalised again. ``Histo`` then divides by the widths, which cancel in the ratio of two histograms in the
    same bins; its rule that a NaN bin (no weight at all) has density 0 is kept."""
    inside = (index >= 0) & (index < n_bins)
    if not inside.all():
        index, weights = index[inside], weights[inside]
    p = np.bincount(index, weights=weights, minlength=n_bins).astype(float)
    p /= np.sum(p)
    p += HISTO_EPSILON
    p /= np.sum(p)
    p[~np.isfinite(p)] = 0.0
    return p


class SallinoRatio:
    """The sallino mode of an ``AsymptoticLimits`` subclass as the ratio of binned probabilities of the
    projected score at theta and at ``self.reference`` (binned as ``self.sallino_binning`` says)."""

    #: how sallino's histograms are filled: :class:`ColumnarRatio`, or MadMiner's ``Histo`` (:class:`HistoRatio`)
    sallino_ratio: type[HistoRatio] = ColumnarRatio
    reference: np.ndarray
    sallino_binning: str
    _mode: str | None = None

    def expected_limits(self, mode, *args, **kwargs):
        if mode == "sallino":
            kwargs.setdefault("thetaref", self.reference)
            if not np.allclose(kwargs["thetaref"], self.reference):
                raise ValueError("sallino projects the score from the reference point: thetaref must be it")
        self._mode = mode
        try:
            return super().expected_limits(mode, *args, **kwargs)
        finally:
            self._mode = None

    def _make_histos(self, summary_function, x_bins, theta_grid, n_histo_toys=1000, histo_theta_batchsize=100,
                     weighted_histo=True, test_split=0.2, processor=None, **kwargs):  # fmt: skip
        if self._mode != "sallino":
            return super()._make_histos(
                summary_function, x_bins, theta_grid, n_histo_toys, histo_theta_batchsize, weighted_histo,
                test_split, processor, **kwargs,
            )  # fmt: skip
        (n_bins,) = x_bins
        if not isinstance(n_bins, int | np.integer):
            raise ValueError(f"sallino takes a number of bins (edges chosen at the reference), not {n_bins!r}")
        thetas = np.vstack([self.reference[np.newaxis, :], np.asarray(theta_grid, dtype=float)])
        scores, weights = self._make_weighted_histo_data(summary_function, thetas, None, test_split=test_split)
        return [
            self.sallino_ratio(processor(scores, theta), w, weights[0], int(n_bins), self.sallino_binning)
            for theta, w in zip(theta_grid, weights[1:], strict=True)
        ]
