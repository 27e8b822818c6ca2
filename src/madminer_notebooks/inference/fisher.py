"""Fisher information that can be compared across methods: scale-free for a learned statistic, and the
parton-level truth bound with its Monte-Carlo error.

MadMiner's ``full_information`` for SALLY is ``N E[t_hat t_hat^T]`` (plus the rate term). That is the
information only if ``t_hat`` *is* the score: an estimator twice too large reports four times the information,
and one too small reports less than it carries. The information that a statistic ``t_hat(x)`` carries about
theta, used linearly (which is what a histogram or a Gaussian likelihood of ``t_hat`` uses near the SM), is

    I_lin = N C^T V^-1 C,   C = Cov(t_hat, t_xz) = d E_theta[t_hat] / d theta,   V = Cov(t_hat),

for N expected events, plus the rate term ``N (d log sigma)(d log sigma)^T``. It does not change when
``t_hat`` is rescaled or mixed linearly, and it is at most the truth information (Cramér–Rao).

The truth bound ``sqrt((I_truth^-1)_ii)`` is the 68% half-width of parameter i (the others profiled) that an
analysis of the parton-level truth would reach; no method may be narrower beyond the bound's Monte-Carlo error.
"""

from __future__ import annotations

import numpy as np


def _weighted_cov(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted covariance matrix of the columns of ``a`` with those of ``b``."""
    w = w / np.sum(w)
    da = a - np.sum(w[:, np.newaxis] * a, axis=0)
    db = b - np.sum(w[:, np.newaxis] * b, axis=0)
    return (w[:, np.newaxis] * da).T @ db


def linear_information(t_hat: np.ndarray, t_xz: np.ndarray, weights: np.ndarray, n_expected: float) -> np.ndarray:
    """``N C^T V^-1 C`` of the statistic ``t_hat`` (n_events, n_stat) against the joint score ``t_xz``
    (n_events, n_params) of events weighted at the point of interest (kinematic part only)."""
    c = _weighted_cov(t_hat, t_xz, weights)
    v = _weighted_cov(t_hat, t_hat, weights)
    return n_expected * c.T @ np.linalg.solve(v, c)


def ensemble_information(
    members: list[np.ndarray], t_xz: np.ndarray, weights: np.ndarray, n_expected: float, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(information of the ensemble's mean statistic, covariance of the members' informations): each with
    the rate term ``rate`` added. The covariance has MadMiner's shape (n, n, n, n)."""
    mean = linear_information(np.mean(members, axis=0), t_xz, weights, n_expected) + rate
    each = np.array([linear_information(t, t_xz, weights, n_expected) + rate for t in members])
    n = mean.shape[0]
    flat = each.reshape(len(members), n * n)
    covariance = np.cov(flat, rowvar=False) if len(members) > 1 else np.zeros((n * n, n * n))
    return mean, covariance.reshape(n, n, n, n)


def truth_bound(information, covariance=None, samples: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(sqrt(diag I^-1), its Monte-Carlo error) of the truth information ``I`` with the covariance of its
    entries (MadMiner's, shape (n, n, n, n)); the error from matrices drawn around ``I``."""
    info = np.asarray(information, dtype=float)
    bound = np.sqrt(np.diag(np.linalg.inv(info)))
    if covariance is None:
        return bound, np.zeros_like(bound)
    n = info.shape[0]
    rng = np.random.default_rng(seed)
    cov = np.asarray(covariance, dtype=float).reshape(n * n, n * n)
    draws = rng.multivariate_normal(info.ravel(), 0.5 * (cov + cov.T), size=samples, method="eigh")
    draws = draws.reshape(samples, n, n)
    draws = 0.5 * (draws + np.swapaxes(draws, 1, 2))
    inverse_diag = np.array([np.diag(np.linalg.inv(m)) for m in draws])
    usable = np.all(inverse_diag > 0, axis=1)
    return bound, np.std(np.sqrt(inverse_diag[usable]), axis=0)
