"""Best fits and profiled 1D intervals from q = -2 Delta log L on a grid."""

import numpy as np
import pytest

from madminer_notebooks.inference import q_on_grid, summarise


def _grid(n=81):
    a, b = np.meshgrid(np.linspace(-2, 2, n), np.linspace(-1, 3, n))
    return np.column_stack([a.ravel(), b.ravel()])


def test_gaussian_likelihood_gives_analytic_intervals():
    theta = _grid()
    # log r for a correlated Gaussian with means (0.3, 1.0), sigmas (0.2, 0.5), correlation 0.6
    mu, sigma, rho = np.array([0.3, 1.0]), np.array([0.2, 0.5]), 0.6
    cov = np.array([[sigma[0] ** 2, rho * sigma[0] * sigma[1]], [rho * sigma[0] * sigma[1], sigma[1] ** 2]])
    d = theta - mu
    log_r = -0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
    result = summarise(theta, q_on_grid(log_r, 0.0), ["a", "b"])
    assert result["best_fit"] == {"a": pytest.approx(0.3), "b": pytest.approx(1.0)}
    for i, name in enumerate("ab"):
        for cl, z in (("68", 1.0), ("95", 1.959964)):
            iv = result["intervals"][name][cl]
            # profiling a Gaussian gives the marginal width sigma_i, whatever the correlation; linear
            # interpolation on a grid with step 0.05 is good to a fifth of the step
            assert iv["low"] == pytest.approx(mu[i] - z * sigma[i], abs=0.01)
            assert iv["high"] == pytest.approx(mu[i] + z * sigma[i], abs=0.01)
            assert not iv["open_low"] and not iv["open_high"]


def test_interval_reaching_the_grid_edge_is_flagged_open():
    theta = _grid(41)
    log_r = -0.5 * ((theta[:, 0] - 1.9) / 0.5) ** 2 - 0.5 * (theta[:, 1] / 0.1) ** 2
    iv = summarise(theta, q_on_grid(log_r, np.zeros(len(theta))), ["a", "b"])["intervals"]["a"]["95"]
    assert iv["open_high"] and iv["high"] == pytest.approx(2.0) and not iv["open_low"]
