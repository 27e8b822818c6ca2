"""A likelihood-ratio estimator's own bias is dominated by its normalisation: ``r(x|theta)`` must average to one
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


class RatioCalibration:
    """With ``self.calibrate_ratio``: the ratio estimate divided by its mean over the first half of the
    held-out events at each theta (weighted at ``self.reference``), and the Asimov data the second half."""

    calibrate_ratio: bool
    reference: np.ndarray
    _calibration: tuple[np.ndarray, np.ndarray] | None = None  # (x, weights at the reference)

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


def log_weighted_mean_exp(log_values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """log of the weighted mean of exp(log_values) along the last axis, without overflow."""
    shift = log_values.max(axis=-1, keepdims=True)
    mean = np.sum(weights * np.exp(log_values - shift), axis=-1) / np.sum(weights)
    return shift[..., 0] + np.log(mean)
