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

The other two changes to what ``AsymptoticLimits`` computes are :mod:`.sallino` (SALLY's histograms) and
:mod:`.calibration` (the ratio estimators' normalisation); :mod:`.limits` puts the three together.
"""

from __future__ import annotations

import numpy as np
from madminer.limits import AsymptoticLimits
from scipy.special import gammaln

#: outer edges of the fixed histogram bins: open in practice, finite for MadMiner's bin-volume arithmetic
OPEN_EDGE = 1.0e30


class ConsistentAsimov(AsymptoticLimits):
    """``AsymptoticLimits`` whose histograms are filled from the Asimov events (all held-out events, exact
    weights) and whose rate term keeps the Asimov number of events as it is."""

    def test_partition(self, test_split: float) -> tuple[int, int]:
        """(start, end) of the held-out events: MadMiner's test partition, which no estimator was trained on."""
        start, end, _ = self._calculate_partition_bounds("test", test_split)
        return start, self.n_samples if end is None else end

    def _make_weighted_histo_data(self, summary_function, thetas, n_toys, test_split=0.2):
        start, end = self.test_partition(test_split)
        x, weights_benchmarks = self.weighted_events(start_event=start, end_event=end)
        return summary_function(x), self._weights(thetas, None, weights_benchmarks)

    def _calculate_log_likelihood_xsec(self, n_observed, theta_grid, luminosity=300000.0):
        n_predicted = self._calculate_xsecs(theta_grid) * luminosity
        return n_observed * np.log(n_predicted) - n_predicted - gammaln(n_observed + 1.0)


def open_bins(edges: list[np.ndarray]) -> list[np.ndarray]:
    """MadMiner's adaptive edges (0.1% to 99.9% quantiles) with the outer edges opened."""
    out = []
    for e in edges:
        e = np.asarray(e, dtype=float).copy()
        e[0], e[-1] = -OPEN_EDGE, OPEN_EDGE
        out.append(e)
    return out
