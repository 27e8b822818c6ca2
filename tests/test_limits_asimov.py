"""On Asimov data at the SM, the rate and histogram likelihoods must peak at the SM (MadMiner's own Asimov
data, drawn from other events than its histograms, put the histogram's best fit about a sigma off)."""

from __future__ import annotations

import numpy as np
import pytest

from madminer_notebooks.inference.asimov import open_bins
from madminer_notebooks.inference.limits import ConsistentAsymptoticLimits
from madminer_notebooks.inference.scan import resolve_limits

NAMES = ["CWL2", "CPWL2"]
GRID = [(-1.5, 3.5), (-2.5, 2.5)]


def _scan(path, mode, **extra):
    limits = ConsistentAsymptoticLimits(str(path))
    common = dict(mode=mode, theta_true=np.zeros(2), grid_resolutions=None, luminosity=300000.0,
                  include_xsec=True, test_split=0.2, n_asimov=None, sample_only_from_closest_benchmark=False,
                  return_histos=False, **extra)  # fmt: skip
    if mode == "histo":
        *_, histos = limits.expected_limits(**{**common, "return_histos": True}, hist_bins=8,
                                            thetas_eval=np.zeros((1, 2)), fix_adaptive_binning="center")  # fmt: skip
        common["hist_bins"] = open_bins(histos[0].edges)

    def log_l(thetas):
        r = limits.expected_limits(thetas_eval=np.asarray(thetas), **common)
        return np.asarray(r[3]) + np.asarray(r[4])

    return resolve_limits(log_l, NAMES, GRID, 21, truth=np.zeros(2)), log_l


def test_the_histogram_baseline_finds_the_sm_on_sm_asimov_data(combined):
    scan, _ = _scan(combined, "histo", hist_vars=["pt_j1", "dphi_jj"])
    result = scan.as_dict()
    for name in NAMES:
        iv = result["intervals"][name]["68"]
        half = 0.5 * (iv["high"] - iv["low"])
        assert abs(result["best_fit"][name]) < 0.05 * half, (name, result["best_fit"], half)
        assert iv["low"] < 0 < iv["high"]
    assert abs(result["q_at_truth"]) < 0.05**2  # q ~ (distance / sigma)^2


def test_the_rate_alone_has_the_sm_at_its_minimum(combined):
    # the rate constrains only sigma(theta) = sigma(SM), a curve through the SM: q(SM) must be its minimum
    scan, _ = _scan(combined, "rate")
    assert abs(scan.as_dict()["q_at_truth"]) < 1e-4  # 0.01 sigma


class _ShiftedRatio:
    """A ratio estimator of known form: log r_hat(x|theta) = a theta_0 u(x) + b theta_0, u the standardised
    first observable; b is a normalisation error that the calibration must remove."""

    def __init__(self, a: float = 0.3, b: float = 0.05):
        self.a, self.b = a, b

    def log_r(self, x: np.ndarray, thetas: np.ndarray) -> np.ndarray:
        u = (x[:, 0] - 60.0) / 40.0
        return np.outer(thetas[:, 0], self.a * u + self.b)


def test_ratio_calibration_and_asimov_data_are_disjoint_halves(combined, monkeypatch):
    from madminer.analysis import DataAnalyzer
    from madminer.ml import ParameterizedRatioEstimator

    fake = _ShiftedRatio()
    model = ParameterizedRatioEstimator.__new__(ParameterizedRatioEstimator)
    model.evaluate_log_likelihood_ratio = lambda x, theta, **kw: (fake.log_r(x, np.asarray(theta)), None)
    monkeypatch.setattr("madminer.limits.asymptotic_limits.load_estimator", lambda _: model)
    thetas = np.array([[-0.4, 0.0], [0.0, 0.0], [0.3, 0.2], [0.8, -0.5]])
    common = dict(mode="ml", theta_true=np.zeros(2), grid_resolutions=None, luminosity=300000.0, include_xsec=True,
                  test_split=0.2, n_asimov=None, sample_only_from_closest_benchmark=False, return_histos=False,
                  model_file="unused", thetas_eval=thetas)  # fmt: skip
    limits = ConsistentAsymptoticLimits(str(combined), calibrate_ratio=True, reference=np.zeros(2))
    llr = np.asarray(limits.expected_limits(**common)[3])

    # by hand: the calibration's mean over one half of the test partition (at the SM), the Asimov data the other
    (c0, c1), (a0, a1) = limits.calibration_split(0.2)
    start, end, _ = limits._calculate_partition_bounds("test", 0.2)
    assert (c0, a1) == (start, end or limits.n_samples) and c1 == a0 and c1 - c0 > 100 and a1 - a0 > 100
    assert limits.test_partition(0.2) == (c0, a1)
    # the same halves as slices of the test partition's events (the closure check's view of them)
    assert limits.calibration_halves(0.2) == (slice(0, c1 - c0), slice(c1 - c0, a1 - c0))
    analyzer = DataAnalyzer(str(combined))
    x_cal, w_cal = analyzer.weighted_events(theta=np.zeros(2), start_event=c0, end_event=c1)
    x_obs, w_obs = analyzer.weighted_events(theta=np.zeros(2), start_event=a0, end_event=a1)
    n = 300000.0 * limits._calculate_xsecs([np.zeros(2)])[0]
    log_norm = np.log(np.sum(w_cal * np.exp(fake.log_r(x_cal, thetas)), axis=1) / np.sum(w_cal))
    expected = n * (np.sum(w_obs * fake.log_r(x_obs, thetas), axis=1) / np.sum(w_obs) - log_norm)
    np.testing.assert_allclose(llr, expected, rtol=1e-6, atol=1e-6)
    assert llr[1] == pytest.approx(0.0, abs=1e-9)  # log r = 0 at the SM
    # the normalisation error b theta_0 is gone (uncalibrated it is n b theta_0, tens of units of log L)...
    raw = np.asarray(ConsistentAsymptoticLimits(str(combined)).expected_limits(**common)[3])
    assert abs(raw[3] - llr[3]) > 0.9 * n * fake.b * 0.8
    # ...but not by construction: on the Asimov events themselves the calibrated value would be <= 0 everywhere
    # (Jensen); on the disjoint half it differs from that by the halves' Monte-Carlo difference
    log_norm_self = np.log(np.sum(w_obs * np.exp(fake.log_r(x_obs, thetas)), axis=1) / np.sum(w_obs))
    self_calibrated = n * (np.sum(w_obs * fake.log_r(x_obs, thetas), axis=1) / np.sum(w_obs) - log_norm_self)
    assert np.all(self_calibrated <= 1e-9) and not np.allclose(self_calibrated, llr, rtol=1e-3)


def test_the_calibration_refuses_a_subset_of_the_asimov_events(combined):
    limits = ConsistentAsymptoticLimits(str(combined), calibrate_ratio=True)
    with pytest.raises(ValueError, match="all test events"):
        limits._asimov_data(np.zeros(2), 0.2, sample_only_from_closest_benchmark=True)


def _fake_score(monkeypatch):
    """A score "estimator" of known form: t_hat(x) = (standardised pT of the leading jet, signed dphi_jj)."""
    from madminer.ml import ScoreEstimator

    def score(x):
        return np.column_stack([(x[:, 0] - 60.0) / 40.0, x[:, 1]])

    model = ScoreEstimator.__new__(ScoreEstimator)
    model.evaluate_score = lambda x, **kw: score(np.asarray(x))
    monkeypatch.setattr("madminer.limits.asymptotic_limits.load_estimator", lambda _: model)
    return score


@pytest.mark.parametrize("binning", ["equal-width", "equal-probability"])
def test_sallino_is_a_binned_ratio_of_the_projected_score_at_theta_and_at_the_sm(combined, monkeypatch, binning):
    from madminer.analysis import DataAnalyzer

    score = _fake_score(monkeypatch)
    thetas = np.array([[0.0, 0.0], [0.3, 0.0], [-0.2, 0.4], [0.5, -0.5]])
    limits = ConsistentAsymptoticLimits(str(combined), sallino_binning=binning)
    common = dict(mode="sallino", theta_true=np.zeros(2), grid_resolutions=None, luminosity=300000.0,
                  include_xsec=True, test_split=0.2, n_asimov=None, sample_only_from_closest_benchmark=False,
                  return_histos=False, model_file="unused", hist_bins=10)  # fmt: skip
    llr = np.asarray(limits.expected_limits(thetas_eval=thetas, **common)[3])

    # by hand with numpy: the Asimov data (all test events, SM weights) in 10 bins of h = t_hat . u, binned at
    # the SM, times log p(bin | theta) / p(bin | SM)
    analyzer = DataAnalyzer(str(combined))
    start, end, _ = analyzer._calculate_partition_bounds("test", 0.2)
    x, w_sm = analyzer.weighted_events(theta=np.zeros(2), start_event=start, end_event=end)
    n = 300000.0 * limits._calculate_xsecs([np.zeros(2)])[0]
    expected = []
    for theta in thetas:
        _, w = analyzer.weighted_events(theta=theta, start_event=start, end_event=end)
        u = theta / np.linalg.norm(theta) if np.linalg.norm(theta) > 0 else np.array([1.0, 0.0])
        h = score(x) @ u
        order = np.argsort(h)
        cdf = np.cumsum(w_sm[order]) / np.sum(w_sm)
        lo, hi = h[order][np.searchsorted(cdf, [0.001, 0.999])]
        if binning == "equal-width":
            edges = np.linspace(lo, hi, 11)
        else:
            edges = h[order][np.searchsorted(cdf, np.linspace(0.001, 0.999, 11))]
        edges[0], edges[-1] = -np.inf, np.inf
        p_theta = np.histogram(h, edges, weights=w)[0] / np.sum(w)
        p_sm = np.histogram(h, edges, weights=w_sm)[0] / np.sum(w_sm)
        expected.append(n * np.sum(p_sm * np.log(p_theta / p_sm)))
    assert llr[0] == 0.0  # the same statistic in the same bins at the SM
    np.testing.assert_allclose(llr, expected, rtol=0.02, atol=0.02)
    assert np.all(llr[1:] < 0)  # Gibbs: the SM Asimov data prefer the SM
    assert abs(llr[1]) > 0.5  # and the statistic does see a step of 0.3 in CWL2


def test_sallino_refuses_a_reference_other_than_its_own(combined, monkeypatch):
    _fake_score(monkeypatch)
    limits = ConsistentAsymptoticLimits(str(combined))
    with pytest.raises(ValueError, match="thetaref"):
        limits.expected_limits(mode="sallino", theta_true=np.zeros(2), thetas_eval=np.zeros((1, 2)),
                               model_file="unused", thetaref=np.array([0.1, 0.0]))  # fmt: skip
    with pytest.raises(ValueError, match="unknown sallino binning 'quantiles'"):
        ConsistentAsymptoticLimits(str(combined), sallino_binning="quantiles")


@pytest.mark.parametrize("binning", ["equal-width", "equal-probability"])
@pytest.mark.parametrize("n_bins", [2, 25])
def test_the_sallino_histograms_equal_madminers_histo(binning, n_bins):
    from madminer_notebooks import compat
    from madminer_notebooks.inference.sallino import ColumnarRatio, HistoRatio

    compat.apply()  # MadMiner's Histo needs fix 1 on today's numpy
    rng = np.random.default_rng(7)
    h = np.concatenate([rng.standard_t(3, 5000), [1e3, -1e3]])  # heavy tails beyond the 99.9% quantile
    reference_weights = rng.exponential(1.0, h.size)
    weights = reference_weights * np.exp(0.4 * np.tanh(h))  # another theta: a reweighting
    weights[h < -2.0] = 0.0  # and the lowest bins empty at theta (epsilon keeps their log finite)
    ours = ColumnarRatio(h, weights, reference_weights, n_bins, binning)
    theirs = HistoRatio(h, weights, reference_weights, n_bins, binning)
    np.testing.assert_array_equal(ours.edges[0], theirs.edges[0])
    np.testing.assert_array_equal(theirs.numerator.edges[0], theirs.edges[0])  # MadMiner's Histo in these bins
    # evaluated on the filled values, on every edge itself (a value on an edge belongs to the bin above it)
    # and beyond the open edges
    probe = np.concatenate([h, ours.edges[0][1:-1], [-2e30, 2e30]])
    np.testing.assert_allclose(ours.log_likelihood(probe), theirs.log_likelihood(probe), rtol=0, atol=1e-10)
    assert np.ptp(ours.log_likelihood(h)) > 0.1  # the ratio is not flat: the comparison compares something
