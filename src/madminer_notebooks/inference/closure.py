"""Closure checks of trained estimators on held-out events, where the right answer is known, inside the region
that decides the limits and in the units the limits are read in.

- A likelihood ratio ``r(x|theta) = p(x|theta) / p(x|SM)`` averages to one under the SM:
  ``E_SM[r_hat(x|theta)] = 1`` at every theta. An error ``delta`` of that normalisation shifts the expected
  ``q`` of N events by ``2 N delta``, so the check reports ``2 N (E_SM[r_hat] - 1)`` in units of q, with its
  Monte-Carlo error, at points on the 68% and 95% CL contours of the histogram baseline (from its Fisher
  information): that is where the intervals are decided, and a q error of one unit there moves them visibly.
  With the ratio calibration on, the judged number is the ratio the limits use, normalised on one half of the
  held-out events and averaged over the other, with both halves' Monte-Carlo errors.
- A score estimator is a regression of the joint score ``t(x, z) = d log p(x, z|theta) / d theta`` (MadMiner's
  ``t_xz``: the derivative of the event's weight over the weight, minus ``d log sigma / d theta``, so that it
  averages to zero). The regression's defining property is the orthogonality of its residual,
  ``E[t_hat (t_xz - t_hat)^T] = 0``: an estimator off by a factor ``a`` gives ``1/a - 1`` relative to
  ``E[t_hat t_hat^T]``. ``E[t_hat] = 0`` is reported as well, but almost any fit with a bias term passes it.

A check passes when its numbers are within tolerance up to twice their Monte-Carlo error (a check that the
held-out events cannot resolve is not a failure of the estimator).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from .held_out import HeldOut, score_members
from .levels import COVERAGE, q_threshold
from .limits import ConsistentAsymptoticLimits

#: |Delta q| that a ratio estimator's normalisation error may cause on a contour
Q_TOLERANCE = 1.0
#: |E[t_hat (t_xz - t_hat)]| relative to E[t_hat^2]: a score estimator's scale within about 10%
ORTHOGONALITY_TOLERANCE = 0.1
#: |E[t_hat]| in units of its spread
SCORE_TOLERANCE = 0.1


def weighted_mean_and_error(values: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean over the last axis and its Monte-Carlo error, sqrt(sum w^2 (v - mean)^2) / sum w."""
    total = np.sum(w)
    mean = np.sum(values * w, axis=-1) / total
    deviation = values - np.expand_dims(mean, -1)
    return mean, np.sqrt(np.sum(w**2 * deviation**2, axis=-1)) / total


def contour_points(
    information: np.ndarray, centre: np.ndarray, directions: int = 8
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Points on the 68% and 95% CL contours ``d^T I d = q`` (two parameters) of a Fisher information ``I``
    around ``centre``, ``directions`` on each: (points, their CL, their direction in radians)."""
    info = np.asarray(information, dtype=float)
    try:
        lower = np.linalg.cholesky(info)
    except np.linalg.LinAlgError:
        raise ValueError("the Fisher information of the contours is not positive definite") from None
    angles = np.linspace(0.0, 2 * np.pi, directions, endpoint=False)
    unit = np.column_stack([np.cos(angles), np.sin(angles)])
    # with I = L L^T, d = sqrt(q) L^-T u satisfies d^T I d = q for every unit vector u (u = e_i: along axis i
    # when I is diagonal)
    points = [centre + np.sqrt(q_threshold(cl, 2)) * np.linalg.solve(lower.T, u) for cl in COVERAGE for u in unit]
    contours = [cl for cl in COVERAGE for _ in unit]
    return np.array(points), contours, np.tile(angles, len(COVERAGE))


def _weighted_range(values: np.ndarray, w: np.ndarray, tail: float = 0.01) -> tuple[float, float]:
    """The central ``1 - 2 tail`` of the weighted distribution of ``values`` (what the SM events look like;
    unweighted quantiles would follow the events generated at far-away benchmarks)."""
    order = np.argsort(values)
    cumulative = np.cumsum(w[order]) / np.sum(w)
    lo, hi = np.interp([tail, 1 - tail], cumulative, values[order])
    return float(lo), float(max(hi, lo + 1e-9))  # a non-empty range even for a constant


def _estimated_against_joint(ax: plt.Axes, joint: np.ndarray, est: np.ndarray, w: np.ndarray) -> None:
    finite = np.isfinite(joint) & np.isfinite(est)
    joint, est, w = joint[finite], est[finite], w[finite]
    x_range, y_range = _weighted_range(joint, w), _weighted_range(est, w)
    ax.hist2d(joint, est, bins=40, range=[x_range, y_range], weights=w, cmap="Greys", norm=LogNorm())
    lo, hi = max(x_range[0], y_range[0]), min(x_range[1], y_range[1])
    ax.plot([lo, hi], [lo, hi], "r-", lw=0.8)


@dataclass
class Closure:
    summary: dict
    estimated: np.ndarray  # (n_points or n_params, n_events)
    joint: np.ndarray
    weights: np.ndarray
    labels: list[str]
    quantity: str

    def figure(self, method: str) -> plt.Figure:
        """Ratio estimators: the q error at each contour point, with its Monte-Carlo error. Score estimators:
        estimated against joint score (weighted 2D histogram) per component."""
        fig = self._plot_ratio(method) if self.quantity == "log r" else self._plot_score(method)
        fig.tight_layout()
        return fig

    def _plot_ratio(self, method: str) -> plt.Figure:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        points = self.summary["points"]
        for variant, marker in (("raw", "o"), ("calibrated", "s")):
            if variant not in points[0]:
                continue
            for cl, colour in (("68", "tab:blue"), ("95", "tab:orange")):
                sel = [i for i, p in enumerate(points) if p["contour"] == cl]
                dq = [points[i][variant]["delta_q"] for i in sel]
                err = [points[i][variant]["delta_q_error"] for i in sel]
                axes[0].errorbar(np.degrees([points[i]["angle"] for i in sel]), dq, yerr=err, fmt=marker,
                                 color=colour, mfc="none" if variant == "raw" else colour,
                                 label=f"{variant}, {cl}% contour")  # fmt: skip
        axes[0].axhspan(-Q_TOLERANCE, Q_TOLERANCE, color="0.9", zorder=0, label="tolerance")
        axes[0].axhline(0.0, color="k", lw=0.6)
        axes[0].set_xlabel("direction on the histogram's contour [deg]")
        axes[0].set_ylabel(r"$2N\,(E_{SM}[\hat r] - 1)$  (units of $q$)")
        axes[0].legend(fontsize=7)
        ax = axes[1]  # estimated against joint log r, the 95% points pooled
        sel = np.array([p["contour"] == "95" for p in points])
        _estimated_against_joint(ax, self.joint[sel].ravel(), self.estimated[sel].ravel(),
                                 np.tile(self.weights, int(sel.sum())))  # fmt: skip
        ax.set_xlabel(r"joint $\log r(x, z|\theta)$")
        ax.set_ylabel(r"estimated $\log \hat r(x|\theta)$")
        ax.set_title("95% contour points", fontsize=9)
        fig.suptitle(f"{method.upper()} on held-out events (weighted at the SM)", fontsize=10)
        return fig

    def _plot_score(self, method: str) -> plt.Figure:
        n = len(self.labels)
        fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False)
        for ax, est, joint, label in zip(axes[0], self.estimated, self.joint, self.labels, strict=True):
            _estimated_against_joint(ax, joint, est, self.weights)
            ax.set_title(label, fontsize=9)
            ax.set_xlabel(r"joint score $t(x, z)$")
        axes[0][0].set_ylabel(r"estimated score $\hat t(x)$")
        fig.suptitle(f"{method.upper()} on held-out events (weighted at the SM)", fontsize=10)
        return fig


def _ratio_numbers(mean: np.ndarray, error: np.ndarray, n_expected: float) -> list[dict]:
    return [
        {
            "mean_r_hat": float(m),
            "mean_r_hat_error": float(e),
            "delta_q": float(2 * n_expected * (m - 1.0)),
            "delta_q_error": float(2 * n_expected * e),
        }  # fmt: skip
        for m, e in zip(np.atleast_1d(mean), np.atleast_1d(error), strict=True)
    ]


def calibrated_mean_and_error(
    log_r_hat: np.ndarray, w: np.ndarray, halves: tuple[slice, slice]
) -> tuple[np.ndarray, np.ndarray]:
    """E_A[r_hat] / E_C[r_hat]: the calibrated ratio's mean over the Asimov half A, normalised on the calibration
    half C, as the limits use it. Both means fluctuate, independently, so the relative error adds both halves'
    in quadrature (the Asimov half's alone understates it by about sqrt(2))."""
    cal, asimov = halves
    mean_c, error_c = weighted_mean_and_error(np.exp(log_r_hat[:, cal]), w[cal])
    mean_a, error_a = weighted_mean_and_error(np.exp(log_r_hat[:, asimov]), w[asimov])
    ratio = mean_a / mean_c
    return ratio, ratio * np.hypot(error_a / mean_a, error_c / mean_c)


def ratio_closure(
    thetas: np.ndarray,
    contours: list[str],
    angles: np.ndarray,
    log_r_hat: np.ndarray,
    log_r_joint: np.ndarray,
    w_sm: np.ndarray,
    n_expected: float,
    names: list[str],
    calibration: tuple[slice, slice] | None = None,
) -> Closure:
    """The ratio estimator's normalisation at ``thetas`` (points on the histogram's contours, ``contours`` their
    CL, ``angles`` their directions), in units of q for ``n_expected`` events.

    ``log_r_hat`` (n_points, n_events) is the raw estimate on the held-out events weighted ``w_sm``. With
    ``calibration`` = (the calibration half, the Asimov half) of those events, the ratio the limits use is
    judged: normalised on the first half and averaged over the second (``calibrated_mean_and_error``); the raw
    numbers over all events stay beside it."""
    log_r_hat = np.asarray(log_r_hat)
    raw = _ratio_numbers(*weighted_mean_and_error(np.exp(log_r_hat), w_sm), n_expected)
    cal = None
    if calibration is not None:
        cal = _ratio_numbers(*calibrated_mean_and_error(log_r_hat, w_sm, calibration), n_expected)
    points = []
    for i, theta in enumerate(thetas):
        p = {"theta": dict(zip(names, map(float, theta), strict=True)), "contour": contours[i],
             "angle": float(angles[i]), "raw": raw[i]}  # fmt: skip
        if cal is not None:
            p["calibrated"] = cal[i]
        points.append(p)
    judged = "calibrated" if cal is not None else "raw"
    excess = [abs(p[judged]["delta_q"]) - 2 * p[judged]["delta_q_error"] for p in points]
    summary = {
        "test": "2 N (E_SM[r_hat(x|theta)] - 1) on the histogram baseline's 68% and 95% CL contours, in units of q",
        "n_expected": float(n_expected),
        "judged": judged,
        "points": points,
        "max_abs_delta_q": {v: max(abs(p[v]["delta_q"]) for p in points) for v in ("raw", "calibrated") if v in p},
        "tolerance_q": Q_TOLERANCE,
        "passed": bool(max(excess) < Q_TOLERANCE),
    }
    labels = [f"{c}%" for c in contours]
    return Closure(summary, log_r_hat, np.asarray(log_r_joint), w_sm, labels, "log r")


def score_closure(t_hat: np.ndarray, t_xz: np.ndarray, w_sm: np.ndarray, names: list[str]) -> Closure:
    """Orthogonality of the residual and mean of a score estimator at the SM (see the module)."""
    components = {}
    n = len(names)
    mean, _ = weighted_mean_and_error(t_hat.T, w_sm)
    second = np.array([[weighted_mean_and_error(t_hat[:, i] * t_hat[:, j], w_sm)[0] for j in range(n)]
                       for i in range(n)])  # fmt: skip
    residual = t_xz - t_hat
    orthogonality = np.zeros((n, n))
    orthogonality_error = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            m, e = weighted_mean_and_error(t_hat[:, i] * residual[:, j], w_sm)
            scale = np.sqrt(second[i, i] * second[j, j])
            orthogonality[i, j], orthogonality_error[i, j] = m / scale, e / scale
    for i, name in enumerate(names):
        spread = float(np.sqrt(second[i, i] - mean[i] ** 2))
        joint_mean, joint_error = weighted_mean_and_error(t_xz[:, i], w_sm)
        components[name] = {
            "mean_t_hat": float(mean[i]),
            "std_t_hat": spread,
            "bias_in_std": abs(float(mean[i])) / spread if spread > 0 else float("inf"),
            "mean_t_xz": float(joint_mean),
            "mean_t_xz_error": float(joint_error),
        }
    excess = np.abs(orthogonality) - 2 * orthogonality_error
    worst_bias = max(c["bias_in_std"] for c in components.values())
    summary = {
        "test": "E_SM[t_hat (t_xz - t_hat)^T] = 0 relative to E_SM[t_hat t_hat^T], and E_SM[t_hat] = 0",
        "components": components,
        "orthogonality": orthogonality.tolist(),
        "orthogonality_error": orthogonality_error.tolist(),
        "max_orthogonality": float(np.abs(orthogonality).max()),
        "max_bias_in_std": worst_bias,
        "tolerance": {"orthogonality": ORTHOGONALITY_TOLERANCE, "bias_in_std": SCORE_TOLERANCE},
        "passed": bool(excess.max() < ORTHOGONALITY_TOLERANCE and worst_bias < SCORE_TOLERANCE),
    }
    return Closure(summary, t_hat.T, t_xz.T, w_sm, [f"score {n}" for n in names], "t")


def check_closure(
    kind: str,
    estimator,
    held: HeldOut,
    names: list[str],
    limits: ConsistentAsymptoticLimits,
    contour_information: np.ndarray | None = None,
) -> Closure:
    """A trained estimator's closure check on the held-out events: ``kind`` "score" (SALLY: the ensemble's
    mean score against the joint score) or "ratio" (ALICE, ALICES: the normalisation at points on the 68% and
    95% contours of ``contour_information``, the histogram baseline's Fisher information, judged as the
    limits use the ratio)."""
    if kind == "score":
        t_hat = np.mean(score_members(estimator, held.x, len(names)), axis=0)  # as the limits use it
        return score_closure(t_hat, held.t_xz, held.weights, names)
    if kind != "ratio":
        raise ValueError(f"unknown closure check {kind!r} (expected 'score' or 'ratio')")
    if contour_information is None:
        raise ValueError("the ratio closure needs the Fisher information whose contours it checks on")
    tests, contours, angles = contour_points(contour_information, limits.reference)
    log_r_hat, _ = estimator.evaluate_log_likelihood_ratio(x=held.x, theta=tests, test_all_combinations=True)
    w_theta = np.array([held.weights_at(limits, t) for t in tests])
    # the joint ratio of the normalised distributions (the estimator learns shapes; the rate is separate)
    log_r_joint = np.log(w_theta / held.weights) - np.log(w_theta.sum(axis=1) / held.weights.sum())[:, np.newaxis]
    return ratio_closure(tests, contours, angles, log_r_hat, log_r_joint, held.weights, held.n_expected, names,
                         held.calibration)  # fmt: skip
