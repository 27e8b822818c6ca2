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
from scipy.special import gammaln

#: outer edges of the fixed histogram bins: open in practice, finite for MadMiner's bin-volume arithmetic
OPEN_EDGE = 1.0e30


class ConsistentAsymptoticLimits(AsymptoticLimits):
    """``AsymptoticLimits`` whose histogram model and Asimov data are the same events, and whose ratio
    estimates can be calibrated on held-out events disjoint from the Asimov data (see the module)."""

    def __init__(self, filename: str, calibrate_ratio: bool = False, reference: np.ndarray | None = None):
        super().__init__(filename)
        self.calibrate_ratio = calibrate_ratio
        self.reference = np.zeros(self.n_parameters) if reference is None else np.asarray(reference, dtype=float)
        self._calibration: tuple[np.ndarray, np.ndarray] | None = None  # (x, weights at the reference)

    def calibration_split(self, test_split: float) -> tuple[tuple[int, int], tuple[int, int]]:
        """(start, end) of the calibration events and of the Asimov events: the two halves of the test
        partition (the events are shuffled by the combine step, so each half is a random half)."""
        start, end, _ = self._calculate_partition_bounds("test", test_split)
        end = self.n_samples if end is None else end
        middle = (start + end) // 2
        return (start, middle), (middle, end)

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
