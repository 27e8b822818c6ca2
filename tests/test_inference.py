"""Best fits and intervals that do not depend on the grid; Asimov data consistent with the model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from madminer_notebooks.inference.closure import ratio_closure, score_closure
from madminer_notebooks.inference.intervals import GridValues, summarise
from madminer_notebooks.inference.quality import method_quality
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


def test_closure_checks_pass_an_exact_estimator_and_fail_a_misnormalised_one():
    rng = np.random.default_rng(3)
    w_sm = rng.exponential(size=20000)
    x = rng.normal(size=20000)
    thetas = np.array([[0.5, 0.0], [0.0, 0.5]])
    w_theta = np.array([w_sm * np.exp(0.3 * x) / np.mean(np.exp(0.3 * x)), w_sm * (1 + 0.1 * x)])
    exact = np.log(w_theta / w_sm) - np.log(np.sum(w_theta, axis=1) / np.sum(w_sm))[:, None]
    good = ratio_closure(thetas, exact, exact, w_sm, ["a", "b"])
    assert good.summary["passed"] and good.summary["max_normalisation_error"] < 1e-12
    bad = ratio_closure(thetas, exact + 0.05, exact, w_sm, ["a", "b"])  # 5% too large everywhere
    assert not bad.summary["passed"] and bad.summary["max_normalisation_error"] == pytest.approx(0.0513, abs=1e-3)
    t = np.column_stack([x, -x]) - np.array([np.sum(w_sm * x), -np.sum(w_sm * x)]) / np.sum(w_sm)
    assert score_closure(t, t, w_sm, ["a", "b"]).summary["passed"]
    assert not score_closure(t + 0.5, t, w_sm, ["a", "b"]).summary["passed"]


def test_fisher_errors_are_infinite_where_the_information_has_a_blind_direction():
    from madminer_notebooks.inference.quality import fisher_errors

    full = [[4.0, 1.0], [1.0, 2.0]]
    np.testing.assert_allclose(fisher_errors(full), np.sqrt(np.diag(np.linalg.inv(full))))
    # the rate at the SM for a CP-even and a CP-odd parameter: nothing on the second
    assert fisher_errors([[4.0, 0.0], [0.0, 0.0]]).tolist() == [0.5, np.inf]
    assert fisher_errors([[4.0, 1e-20], [1e-20, 1e-19]]).tolist() == [0.5, np.inf]  # the same, after round-off
    # rank one along a diagonal: both parameters reach the blind direction
    assert fisher_errors([[1.0, 1.0], [1.0, 1.0]]).tolist() == [np.inf, np.inf]
