"""Closure checks of trained estimators on held-out events, where the right answer is known.

- A likelihood ratio ``r(x|theta) = p(x|theta) / p(x|SM)`` averages to one under the SM:
  ``E_SM[r_hat(x|theta)] = 1`` at every theta. Its deviation is the estimator's normalisation error; a few per
  cent of it move the expected log-likelihood of a hundred events by several units.
- A score at the SM averages to zero: ``E_SM[t_hat(x)] = 0`` (in units of the score's spread).
- Estimates follow the joint quantities ``log r(x, z|theta)`` and ``t(x, z)`` that the simulator knows per
  event (their conditional mean given x is what the estimator learns); the plots show them side by side.

The thresholds are what the limits tolerate: a normalisation error ``delta`` shifts ``q`` of n expected events
by about ``2 n delta``; on the tutorial's hundred-odd events 3% already moves q by several units, so a ratio
estimator passes at 3% and a score estimator at 0.1 standard deviations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..plotting import save_figure

RATIO_TOLERANCE = 0.03
SCORE_TOLERANCE = 0.1


def _weighted_mean(values: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(values * w) / np.sum(w))


@dataclass
class Closure:
    summary: dict
    estimated: np.ndarray  # (n_points or n_params, n_events)
    joint: np.ndarray
    weights: np.ndarray
    labels: list[str]
    quantity: str

    def plot(self, path: Path, method: str) -> plt.Figure:
        """Estimated against joint values (weighted 2D histogram) for each test point or score component."""
        n = len(self.labels)
        fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False)
        for ax, est, joint, label in zip(axes[0], self.estimated, self.joint, self.labels, strict=True):
            finite = np.isfinite(joint) & np.isfinite(est)
            lo, hi = np.percentile(np.concatenate([joint[finite], est[finite]]), [1, 99])
            ax.hist2d(
                joint[finite],
                est[finite],
                bins=40,
                range=[[lo, hi], [lo, hi]],
                weights=self.weights[finite],
                cmap="Greys",
                cmin=1e-30,
            )
            ax.plot([lo, hi], [lo, hi], "r-", lw=0.8)
            ax.set_title(label, fontsize=9)
            ax.set_xlabel(f"joint {self.quantity}")
        axes[0][0].set_ylabel(f"estimated {self.quantity}")
        fig.suptitle(f"{method.upper()} on held-out events (weighted at the SM)", fontsize=10)
        fig.tight_layout()
        save_figure(fig, path)
        return fig


def ratio_closure(
    thetas: np.ndarray, log_r_hat: np.ndarray, log_r_joint: np.ndarray, w_sm: np.ndarray, names: list[str]
) -> Closure:
    """Normalisation and mean log r of a ratio estimator at each test point; passes when every
    ``|E_SM[r_hat] - 1| < RATIO_TOLERANCE``."""
    points = []
    for theta, est, joint in zip(thetas, log_r_hat, log_r_joint, strict=True):
        norm = _weighted_mean(np.exp(est), w_sm)
        points.append(
            {
                "theta": dict(zip(names, map(float, theta), strict=True)),
                "mean_r_hat": norm,
                "mean_log_r_hat": _weighted_mean(est, w_sm),
                "mean_log_r_joint": _weighted_mean(joint, w_sm),
            }
        )
    worst = max(abs(p["mean_r_hat"] - 1.0) for p in points)
    labels = [", ".join(f"{n}={v:+.1f}" for n, v in p["theta"].items()) for p in points]
    summary = {
        "test": "E_SM[r_hat(x|theta)] = 1",
        "points": points,
        "max_normalisation_error": worst,
        "tolerance": RATIO_TOLERANCE,
        "passed": bool(worst < RATIO_TOLERANCE),
    }
    return Closure(summary, np.asarray(log_r_hat), np.asarray(log_r_joint), w_sm, labels, "log r")


def score_closure(t_hat: np.ndarray, t_joint: np.ndarray, w_sm: np.ndarray, names: list[str]) -> Closure:
    """Mean estimated score at the SM in units of its spread; passes below ``SCORE_TOLERANCE``."""
    components = {}
    for i, name in enumerate(names):
        mean = _weighted_mean(t_hat[:, i], w_sm)
        spread = np.sqrt(_weighted_mean((t_hat[:, i] - mean) ** 2, w_sm))
        joint_mean = _weighted_mean(t_joint[:, i], w_sm)
        components[name] = {
            "mean_t_hat": mean,
            "std_t_hat": float(spread),
            "mean_t_joint": joint_mean,
            "bias_in_std": abs(mean) / spread if spread > 0 else float("inf"),
        }
    worst = max(c["bias_in_std"] for c in components.values())
    summary = {
        "test": "E_SM[t_hat(x)] = 0",
        "components": components,
        "max_bias_in_std": worst,
        "tolerance": SCORE_TOLERANCE,
        "passed": bool(worst < SCORE_TOLERANCE),
    }
    return Closure(summary, t_hat.T, t_joint.T, w_sm, [f"score {n}" for n in names], "t")
