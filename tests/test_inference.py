"""Best fits and intervals that do not depend on the grid; Asimov data consistent with the model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from madminer_notebooks.inference.closure import (
    calibrated_mean_and_error,
    contour_points,
    ratio_closure,
    score_closure,
)
from madminer_notebooks.inference.fisher import ensemble_information, linear_information, truth_bound
from madminer_notebooks.inference.held_out import joint_score
from madminer_notebooks.inference.intervals import GridValues, summarise
from madminer_notebooks.inference.quality import flags, method_quality
from madminer_notebooks.inference.scan import RegionAtGridEdge, resolve_limits

MU, SIGMA, RHO = np.array([0.06, -0.02]), np.array([0.094, 0.12]), 0.6
RANGES = [(-1.5, 3.5), (-2.5, 2.5)]


def gaussian_log_l(theta: np.ndarray) -> np.ndarray:
    cov = np.array([[SIGMA[0] ** 2, RHO * SIGMA[0] * SIGMA[1]], [RHO * SIGMA[0] * SIGMA[1], SIGMA[1] ** 2]])
    d = theta - MU
    return 7.0 - 0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)


def on_grid(log_l, resolution: int) -> GridValues:
    axes = tuple(np.linspace(lo, hi, resolution) for lo, hi in RANGES)
    g = GridValues(axes, np.zeros((resolution, resolution)))
    m2 = -2.0 * log_l(g.points())
    return GridValues(axes, (m2 - m2.min()).reshape(resolution, resolution))


@pytest.mark.parametrize("resolution", [21, 11, 9])
def test_a_quadratic_q_gives_its_exact_interval_on_a_coarse_grid(resolution):
    # step 0.25 (21 points) to 0.625 (9 points): comparable to or larger than the 68% width of 0.19. A linear
    # crossing between grid points gets these intervals wrong by tens of per cent (about half the width at 0.25)
    result = summarise(on_grid(gaussian_log_l, resolution), ["a", "b"])
    assert result["best_fit"]["a"] == pytest.approx(MU[0], abs=1e-9)  # a point between grid nodes
    assert result["best_fit"]["b"] == pytest.approx(MU[1], abs=1e-9)
    for i, name in enumerate("ab"):
        for cl, z in (("68", 1.0), ("95", 1.959963984540054)):
            iv = result["intervals"][name][cl]
            # profiling a Gaussian gives the marginal width whatever the correlation
            assert iv["low"] == pytest.approx(MU[i] - z * SIGMA[i], abs=1e-9)
            assert iv["high"] == pytest.approx(MU[i] + z * SIGMA[i], abs=1e-9)


def test_a_linear_reading_would_fail_this_test():
    """The test above can fail: the old linear crossing on the 21-point grid is 40% off at 68% CL."""
    g = on_grid(gaussian_log_l, 21)
    xs = g.axes[0]
    prof = g.q.min(axis=1)  # grid profile, no sub-grid minimum
    i = int(np.argmin(prof))
    high = xs[i] + (1.0 - prof[i]) / (prof[i + 1] - prof[i]) * (xs[i + 1] - xs[i])
    assert abs(high - (MU[0] + SIGMA[0])) > 0.2 * SIGMA[0]


def quartic_log_l(theta: np.ndarray) -> np.ndarray:
    u = (theta[:, 0] - 0.1) / 0.2
    return -0.5 * u**2 - 0.3 * u**4 - 0.5 * (theta[:, 1] / 0.3) ** 2 - 0.2 * u * theta[:, 1]


def test_refinement_converges_on_a_non_quadratic_likelihood():
    result = resolve_limits(quartic_log_l, ["a", "b"], RANGES, 21)
    summary = result.as_dict()
    assert summary["max_relative_move"] < 0.005 and summary["rounds"] >= 1

    # the exact 68% CL upper end of the profile: q_prof(a) = 1, with b profiled analytically
    def q_prof(a):
        u = (a - 0.1) / 0.2
        b_hat = -0.2 * u * 0.09  # d/db of the log likelihood vanishes
        m = -2 * quartic_log_l(np.array([[a, b_hat]]))[0]
        return m - (-2 * quartic_log_l(np.array([[0.1, 0.0]]))[0])

    high = brentq(lambda a: q_prof(a) - 1.0, 0.1, 1.0)
    width = summary["intervals"]["a"]["68"]["high"] - summary["intervals"]["a"]["68"]["low"]
    assert summary["intervals"]["a"]["68"]["high"] == pytest.approx(high, abs=0.002 * width)


def test_a_region_at_the_grid_edge_is_an_error():
    def edge(theta):
        return -0.5 * ((theta[:, 0] - 3.2) / 0.3) ** 2 - 0.5 * (theta[:, 1] / 0.2) ** 2

    with pytest.raises(RegionAtGridEdge, match="widen evaluation.grid.a"):
        resolve_limits(edge, ["a", "b"], RANGES, 21)


def test_quality_numbers_flag_a_biased_method():
    def result(best, lo68, hi68, lo95, hi95, move=0.001):
        iv = {"68": {"low": lo68, "high": hi68}, "95": {"low": lo95, "high": hi95}}
        return {"best_fit": {"a": best}, "intervals": {"a": iv}, "max_relative_move": move}

    fisher = {
        "truth": [[4.0, 0.0], [0.0, 4.0]],
        "histo_2d": [[2.0, 0.0], [0.0, 2.0]],
        "sally": [[3.0, 0.0], [0.0, 4.0]],
    }
    q = method_quality(
        {"histo": result(0.0, -0.1, 0.1, -0.2, 0.2), "sally": result(0.15, 0.05, 0.25, -0.05, 0.35, move=0.05)},
        fisher,
        {"a": 0.0},
    )
    assert q["histo"]["bias_in_halfwidths"]["a"] == 0.0 and not q["histo"]["excludes_sm_at_68"]
    assert q["sally"]["bias_in_halfwidths"]["a"] == pytest.approx(1.5)
    assert q["sally"]["excludes_sm_at_68"] and not q["sally"]["converged"]
    assert q["sally"]["width_95_relative_to_histo"]["a"] == pytest.approx(1.0)
    assert q["sally"]["fisher_det_relative_to_truth"] == pytest.approx(12 / 16)
    assert q["histo"]["fisher_det_relative_to_truth"] == pytest.approx(4 / 16)


def _toy_events(n: int = 40000, seed: int = 3):
    """Weighted toy events with a joint score t(x, z) = x + z and the best regression on x, t_hat = x."""
    rng = np.random.default_rng(seed)
    w_sm = rng.exponential(size=n)
    x = rng.normal(size=(n, 2))
    z = rng.normal(scale=0.7, size=(n, 2))
    return w_sm, x, x + z


def test_ratio_closure_is_read_in_q_units_on_the_contours():
    rng = np.random.default_rng(3)
    w_sm = rng.exponential(size=20000)
    x = rng.normal(size=20000)
    thetas, contours, angles = contour_points([[100.0, 0.0], [0.0, 25.0]], np.zeros(2), directions=4)
    assert contours == ["68"] * 4 + ["95"] * 4
    # points on d^T I d = q, q the 2D thresholds -2 log(1 - coverage) (chi-squared, two degrees of freedom):
    # 68.27% (1 sigma) in the first parameter, 95% in the second
    q68, q95 = -2 * np.log(1 - math.erf(1 / math.sqrt(2))), -2 * np.log(0.05)
    assert thetas[0] == pytest.approx([np.sqrt(q68 / 100), 0.0])
    assert thetas[5] == pytest.approx([0.0, np.sqrt(q95 / 25)])
    shapes = np.exp(np.outer(thetas[:, 0] + thetas[:, 1], x))  # a ratio exactly normalised on these events
    exact = np.log(shapes / (np.sum(w_sm * shapes, axis=1) / np.sum(w_sm))[:, None])
    good = ratio_closure(thetas, contours, angles, exact, exact, w_sm, 150.0, ["a", "b"])
    assert good.summary["passed"] and good.summary["max_abs_delta_q"]["raw"] < 1e-9
    # 1% too large everywhere: 2 N 0.01 = 3 units of q for N = 150 expected events, well beyond the error
    bad = ratio_closure(thetas, contours, angles, exact + np.log(1.01), exact, w_sm, 150.0, ["a", "b"])
    assert not bad.summary["passed"]
    assert bad.summary["max_abs_delta_q"]["raw"] == pytest.approx(3.0, rel=1e-6)
    assert 0 < bad.summary["points"][0]["raw"]["delta_q_error"] < 0.5
    # judged on the calibrated ratio when there is one, the raw one beside it
    halves = (slice(0, 10000), slice(10000, 20000))
    fixed = ratio_closure(thetas, contours, angles, exact + np.log(1.01), exact, w_sm, 150.0, ["a", "b"], halves)
    assert fixed.summary["passed"] and fixed.summary["judged"] == "calibrated"
    assert fixed.summary["max_abs_delta_q"]["raw"] == pytest.approx(3.0, rel=1e-6)
    # the constant factor cancels exactly: what is left is the two halves' difference of the exact ratio
    by_hand = [np.average(np.exp(exact[i, h]), weights=w_sm[h]) for i in (0, 5) for h in halves]
    assert fixed.summary["points"][0]["calibrated"]["mean_r_hat"] == pytest.approx(by_hand[1] / by_hand[0])
    assert fixed.summary["points"][5]["calibrated"]["mean_r_hat"] == pytest.approx(by_hand[3] / by_hand[2])


def test_the_calibrated_closure_error_covers_both_halves():
    """Pulls of the calibrated normalisation of an exact ratio over independent toys: unit spread when the error
    adds the calibration half's fluctuation to the Asimov half's (the Asimov half's alone gives about sqrt(2))."""
    rng = np.random.default_rng(11)
    theta = 0.3
    pulls = []
    for _ in range(400):
        x = rng.normal(size=4000)  # events of the SM: r(x|theta) = exp(theta x - theta^2 / 2) averages to one
        w = rng.exponential(size=4000)
        log_r = (theta * x - theta**2 / 2)[np.newaxis, :]
        mean, error = calibrated_mean_and_error(log_r, w, (slice(0, 2000), slice(2000, 4000)))
        pulls.append((mean[0] - 1.0) / error[0])
    assert np.mean(pulls) == pytest.approx(0.0, abs=0.15)
    assert 0.88 < np.std(pulls) < 1.12  # 400 toys: the spread's own error is about 0.035


def test_score_closure_tests_the_orthogonality_of_the_residual():
    w_sm, x, t_xz = _toy_events()
    t_xz = joint_score(w_sm, np.exp(0.0) * w_sm[:, None] * t_xz)  # centred: d log sigma subtracted
    np.testing.assert_allclose(np.sum(w_sm[:, None] * t_xz, axis=0), 0.0, atol=1e-9)
    best = x - np.sum(w_sm[:, None] * x, axis=0) / np.sum(w_sm)
    good = score_closure(best, t_xz, w_sm, ["a", "b"]).summary
    assert good["passed"] and good["max_orthogonality"] < 0.03
    # twice too large: mean zero still, but the residual is not orthogonal (1/a - 1 = -0.5)
    scaled = score_closure(2 * best, t_xz, w_sm, ["a", "b"]).summary
    assert scaled["max_bias_in_std"] < 0.02 and not scaled["passed"]
    assert scaled["orthogonality"][0][0] == pytest.approx(-0.5, abs=0.03)
    assert not score_closure(best + 0.5, t_xz, w_sm, ["a", "b"]).summary["passed"]


def test_linear_information_is_scale_free_and_the_outer_product_is_not():
    w_sm, x, t_xz = _toy_events()
    n = 200.0
    info = linear_information(x, t_xz, w_sm, n)
    # the statistic x carries Cov(x, t)^2 / Var(x) = 1 per event and parameter
    np.testing.assert_allclose(info, n * np.eye(2), atol=0.03 * n)
    mixed = x @ np.array([[3.0, 1.0], [-0.5, 2.0]])  # any invertible linear map of the statistic
    np.testing.assert_allclose(linear_information(mixed, t_xz, w_sm, n), info, rtol=1e-9)
    outer = n * np.einsum("ni,nj,n->ij", 2 * x, 2 * x, w_sm) / np.sum(w_sm)
    assert outer[0, 0] == pytest.approx(4 * info[0, 0], rel=0.05)
    mean, covariance = ensemble_information([x, 1.1 * x, 0.9 * x], t_xz, w_sm, n, np.zeros((2, 2)))
    np.testing.assert_allclose(mean, info, rtol=1e-9)
    assert covariance.shape == (2, 2, 2, 2) and np.abs(covariance).max() < 1e-9 * n**2  # rescaled members agree


def test_information_fraction_is_the_truth_errors_over_the_approach_errors_squared():
    from madminer_notebooks.inference.quality import information_fraction

    truth = np.array([[100.0, 30.0], [30.0, 50.0]])
    half = 0.5 * truth  # half the information: errors sqrt(2) larger, a share of one half in each parameter
    np.testing.assert_allclose(information_fraction(half, truth), [0.5, 0.5], rtol=1e-12)
    # a parameter without information has none of the truth's (the rate alone, for a CP-odd direction)
    assert information_fraction(np.array([[40.0, 0.0], [0.0, 0.0]]), truth)[1] == 0.0
    # profiling: the correlated truth's share of an uncorrelated approach with the same diagonal is above one
    assert np.all(information_fraction(np.diag(np.diag(truth)), truth) > 1.0)


def test_an_interval_narrower_than_the_truth_bound_is_flagged():
    truth = [[100.0, 0.0], [0.0, 25.0]]  # bounds 0.1 and 0.2
    fisher = {"parameters": ["a", "b"], "truth": truth, "truth_covariance": np.zeros((2, 2, 2, 2)).tolist()}

    def result(half_a, half_b):
        iv = {n: {"68": {"low": -h, "high": h}, "95": {"low": -2 * h, "high": 2 * h}}
              for n, h in (("a", half_a), ("b", half_b))}  # fmt: skip
        return {"best_fit": {"a": 0.0, "b": 0.0}, "intervals": iv, "max_relative_move": 0.0}

    q = method_quality({"histo": result(0.15, 0.3), "alice": result(0.15, 0.15)}, fisher, {"a": 0.0, "b": 0.0})
    assert not q["histo"]["over_confident"] and q["alice"]["over_confident"]
    assert q["alice"]["halfwidth_68_over_truth_bound"] == pytest.approx({"a": 1.5, "b": 0.75})
    # the share of the truth's information the limits reach is the inverse square of that
    assert q["alice"]["information_fraction"] == pytest.approx({"a": 1 / 1.5**2, "b": 1 / 0.75**2})
    assert q["alice"]["width_68_relative_to_histo"] == pytest.approx({"a": 1.0, "b": 0.5})
    assert flags(q["alice"]) == ["narrower than the truth bound (over-confident)"] and flags(q["histo"]) == []
    # within the bound's Monte-Carlo error it is not flagged: I_bb known to 20% moves the bound by about 10%
    covariance = np.zeros((2, 2, 2, 2))
    covariance[1, 1, 1, 1] = 5.0**2
    uncertain = {**fisher, "truth_covariance": covariance.tolist()}
    q = method_quality({"alice": result(0.15, 0.19)}, uncertain, {"a": 0.0, "b": 0.0})
    assert q["alice"]["truth_bound_68_error"]["b"] == pytest.approx(0.02, rel=0.15)
    assert not q["alice"]["over_confident"]


def test_truth_bound_error_follows_the_information_covariance():
    covariance = np.zeros((2, 2, 2, 2))
    covariance[0, 0, 0, 0] = 4.0**2  # I_aa = 100 +- 4: bound 0.1 +- 0.002
    bound, error = truth_bound([[100.0, 0.0], [0.0, 25.0]], covariance)
    np.testing.assert_allclose(bound, [0.1, 0.2])
    assert error[0] == pytest.approx(0.002, rel=0.1) and error[1] < 1e-12


def test_fisher_errors_are_infinite_where_the_information_has_a_blind_direction():
    from madminer_notebooks.inference.quality import fisher_errors

    full = [[4.0, 1.0], [1.0, 2.0]]
    np.testing.assert_allclose(fisher_errors(full), np.sqrt(np.diag(np.linalg.inv(full))))
    # the rate at the SM for a CP-even and a CP-odd parameter: nothing on the second
    assert fisher_errors([[4.0, 0.0], [0.0, 0.0]]).tolist() == [0.5, np.inf]
    assert fisher_errors([[4.0, 1e-20], [1e-20, 1e-19]]).tolist() == [0.5, np.inf]  # the same, after round-off
    # rank one along a diagonal: both parameters reach the blind direction
    assert fisher_errors([[1.0, 1.0], [1.0, 1.0]]).tolist() == [np.inf, np.inf]


def test_confidence_levels_are_one_sigma_and_95_percent_for_any_number_of_parameters():
    """The thresholds on q, against tables: 1 and 3.841 for one parameter (PDG, Table 40.2: 1 sigma and 95%),
    2.296 and 5.991 for two, 3.527 and 7.815 for three; the p-value contours at 1 - coverage."""
    from madminer_notebooks.inference.levels import p_value, q_threshold

    assert [q_threshold(cl, 1) for cl in ("68", "95")] == pytest.approx([1.0, 3.8415], abs=1e-4)
    assert [q_threshold(cl, 2) for cl in ("68", "95")] == pytest.approx([2.2957, 5.9915], abs=1e-4)
    assert [q_threshold(cl, 3) for cl in ("68", "95")] == pytest.approx([3.5267, 7.8147], abs=1e-4)
    assert [p_value("68"), p_value("95")] == pytest.approx([0.3173, 0.05], abs=1e-4)
