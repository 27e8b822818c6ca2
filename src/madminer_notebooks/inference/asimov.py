"""MadMiner's ``AsymptoticLimits`` with an Asimov data set that is consistent with the histogram model.

In MadMiner 0.9.6 ``expected_limits`` takes the Asimov data from the *test* partition (by default only the
events generated at the benchmark closest to the truth, and only the first ``n_asimov``) while the histograms
of the ``histo`` and ``sally`` modes are filled from ``n_histo_toys`` random events of the *training*
partition. The two samples differ by Monte Carlo fluctuations of the size of the precision being quoted, so
even the histogram baseline's best fit on Asimov data at the SM sits off the SM (by about a standard
deviation on the tutorial's sizes). Three changes make the expected likelihood exact for the model it uses:

- the histograms are filled from the same events, with the same exact (morphed) weights, as the Asimov
  data: all events of the held-out test partition, of every sampling benchmark (call ``expected_limits``
  with ``n_asimov=None`` and ``sample_only_from_closest_benchmark=False``); the estimators never saw them;
- the histogram binning is fixed once (at the SM) with its outer bins open, so that every event is inside
  the histogram it is evaluated with and the binning does not change with the grid;
- the Poisson term of the rate uses the Asimov number of events as it is (MadMiner rounds it to an
  integer, which moves the rate-only minimum off the truth by up to half an event).

Then the histogram and rate likelihoods are maximal exactly at the truth (Gibbs' inequality), and any bias
left in a trained method's best fit is the estimator's own.

SALLY's ``sallino`` mode histograms, at each theta, the one number ``h = t_hat(x) . u`` with ``u`` the unit
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

A likelihood-ratio estimator's own bias is dominated by its normalisation: ``r(x|theta)`` must average to one
under the reference hypothesis (the SM, the denominator it was trained with), and an error ``c(theta)`` of a few
per cent shifts the expected ``q`` of n events by ``2 n c``, which on the tutorial's hundred-odd events is a shift
of the best fit by about a standard deviation. With ``calibrate_ratio=True`` the held-out (test) partition is cut
in two disjoint halves: the estimate is divided by its mean over the first half at each theta, weighted at the
reference, ``r_hat(x|theta) / E_ref[r_hat(x|theta)]``, and the Asimov data are the second half only.

The halves must be disjoint. Calibrated on the Asimov events themselves, the expected log likelihood ratio
``E[log r_hat / E[r_hat]]`` is ``<= 0`` at every theta by Jensen's inequality: the best fit would sit at the SM
whatever the estimator, the bias would test nothing, and the width would measure the estimator's noise instead
of its information. On disjoint events the calibration corrects the normalisation only up to the Monte-Carlo
error of its half, and what is left of the estimator's bias shows. (The closure check of the evaluation
notebook reports the raw estimator's normalisation too, so a poorly trained estimator stays visible.)
"""

from __future__ import annotations

import numpy as np
from madminer.limits import AsymptoticLimits
from madminer.utils.histo import Histo
from scipy.special import gammaln

#: how the sallino statistic is binned at each theta (the first is the chain's)
SALLINO_BINNINGS = ("equal-width", "equal-probability")

#: what MadMiner's ``Histo`` adds to every bin of a sallino histogram, so that no bin has zero probability
HISTO_EPSILON = 1.0e-12

#: outer edges of the fixed histogram bins: open in practice, finite for MadMiner's bin-volume arithmetic
OPEN_EDGE = 1.0e30


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
        index = np.searchsorted(self.edges[0], np.asarray(h).reshape(-1), side="right") - 1
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


class ConsistentAsymptoticLimits(AsymptoticLimits):
    """``AsymptoticLimits`` whose histogram model and Asimov data are the same events, and whose ratio
    estimates can be calibrated on held-out events disjoint from the Asimov data (see the module)."""

    #: how sallino's histograms are filled: :class:`ColumnarRatio`, or MadMiner's ``Histo`` (:class:`HistoRatio`)
    sallino_ratio: type[HistoRatio] = ColumnarRatio

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
        self._calibration: tuple[np.ndarray, np.ndarray] | None = None  # (x, weights at the reference)
        self._mode: str | None = None

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

    def test_partition(self, test_split: float) -> tuple[int, int]:
        """(start, end) of the held-out events: MadMiner's test partition, which no estimator was trained on."""
        start, end, _ = self._calculate_partition_bounds("test", test_split)
        return start, self.n_samples if end is None else end

    def calibration_split(self, test_split: float) -> tuple[tuple[int, int], tuple[int, int]]:
        """(start, end) of the calibration events and of the Asimov events: the two halves of the test
        partition (the events are shuffled by the combine step, so each half is a random half)."""
        start, end = self.test_partition(test_split)
        middle = (start + end) // 2
        return (start, middle), (middle, end)

    def calibration_halves(self, test_split: float) -> tuple[slice, slice]:
        """The calibration and the Asimov half as slices of the test partition's events, for checks that
        evaluate the estimator once on the whole partition (``weighted_events`` of ``test_partition``)."""
        (c0, c1), (a0, a1) = self.calibration_split(test_split)  # c0: where the test partition starts
        return slice(0, c1 - c0), slice(a0 - c0, a1 - c0)

    def _asimov_data(self, theta, test_split=0.2, sample_only_from_closest_benchmark=True, n_asimov=None):
        if not self.calibrate_ratio:
            return super()._asimov_data(theta, test_split, sample_only_from_closest_benchmark, n_asimov)
        if n_asimov is not None or sample_only_from_closest_benchmark:
            raise ValueError("the ratio calibration takes all test events: n_asimov=None and "
                             "sample_only_from_closest_benchmark=False")  # fmt: skip
        (c0, c1), (a0, a1) = self.calibration_split(test_split)
        self._calibration = self.weighted_events(theta=self.reference, start_event=c0, end_event=c1)
        x, weights = self.weighted_events(theta=np.asarray(theta, dtype=float), start_event=a0, end_event=a1)
        return x, weights / np.sum(weights)

    def _calculate_log_likelihood_ratio_kinematics(self, x_observed, theta_grid, model, theta1=None):
        log_r = super()._calculate_log_likelihood_ratio_kinematics(x_observed, theta_grid, model, theta1)
        if not self.calibrate_ratio:
            return log_r
        if self._calibration is None:
            raise RuntimeError("the ratio calibration is made with the Asimov data (expected_limits only)")
        x_cal, w_cal = self._calibration
        log_r_cal = super()._calculate_log_likelihood_ratio_kinematics(x_cal, theta_grid, model, theta1)
        return log_r - log_weighted_mean_exp(log_r_cal, w_cal)[:, np.newaxis]

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

    def _make_weighted_histo_data(self, summary_function, thetas, n_toys, test_split=0.2):
        start, end, _ = self._calculate_partition_bounds("test", test_split)
        x, weights_benchmarks = self.weighted_events(start_event=start, end_event=end)
        return summary_function(x), self._weights(thetas, None, weights_benchmarks)

    def _calculate_log_likelihood_xsec(self, n_observed, theta_grid, luminosity=300000.0):
        n_predicted = self._calculate_xsecs(theta_grid) * luminosity
        return n_observed * np.log(n_predicted) - n_predicted - gammaln(n_observed + 1.0)


def log_weighted_mean_exp(log_values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """log of the weighted mean of exp(log_values) along the last axis, without overflow."""
    shift = log_values.max(axis=-1, keepdims=True)
    mean = np.sum(weights * np.exp(log_values - shift), axis=-1) / np.sum(weights)
    return shift[..., 0] + np.log(mean)


def open_bins(edges: list[np.ndarray]) -> list[np.ndarray]:
    """MadMiner's adaptive edges (0.1% to 99.9% quantiles) with the outer edges opened."""
    out = []
    for e in edges:
        e = np.asarray(e, dtype=float).copy()
        e[0], e[-1] = -OPEN_EDGE, OPEN_EDGE
        out.append(e)
    return out
