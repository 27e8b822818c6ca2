"""The numbers that say whether a method's expected limits can be trusted, on Asimov data at the SM:

- bias: the best fit in units of the 68% CL half-width (0 for a method that finds the truth), and q at the
  SM above the minimum (0 as well). The rate alone constrains only sigma(theta) = sigma(SM), a curve through
  the SM: every point of it is a best fit, and the SM, where the likelihood is evaluated too, is reported;
- the 68%/95% CL widths, and each relative to the histogram baseline's (below 1: the method extracts more
  than the histogram);
- det I / det I_truth of the Fisher information (1 for a method that captures everything the parton-level
  truth knows);
- the 68% CL half-width relative to the parton-level truth bound sqrt((I_truth^-1)_ii), the best any analysis
  of these events can do (:mod:`.fisher`), and its inverse square: the share of the truth's information that
  the limits reach;
- flags: the 68% CL interval excludes the SM; a half-width below the truth bound by more than twice the
  bound's Monte-Carlo error (over-confident: the method claims more than the events hold); the interval ends
  had not converged (moved by more than 2% of the width in the last refinement); the estimator failed its
  closure check.
"""

from __future__ import annotations

import numpy as np

from ..methods import METHODS
from .fisher import truth_bound

CONVERGENCE_LIMIT = 0.02


def fisher_ratios(fisher: dict[str, list]) -> dict[str, float]:
    """det I / det I_truth for every Fisher information next to the truth."""
    truth = np.linalg.det(np.asarray(fisher["truth"]))
    return {
        k: float(np.linalg.det(np.asarray(v)) / truth)
        for k, v in fisher.items()
        if k not in ("truth", "parameters") and not k.endswith("covariance")
    }


def fisher_errors(matrix) -> np.ndarray:
    """sqrt(diag I^-1): each parameter's expected 68% half-width from the Fisher information ``I``, the
    others profiled. Infinite for a parameter that a direction without information reaches (a singular
    ``I``: the rate's, say, for a CP-odd parameter at the SM, where the linear term vanishes; numerically
    such a matrix may be exactly singular or merely ill-conditioned, depending on round-off)."""
    info = np.asarray(matrix, dtype=float)
    w, v = np.linalg.eigh(info)
    empty = w <= 1e-12 * max(float(np.abs(w).max()), np.finfo(float).tiny)
    if not empty.any():
        return np.sqrt(np.diag(np.linalg.inv(info)))
    errors = np.sqrt(np.clip(np.diag(np.linalg.pinv(info, rcond=1e-12, hermitian=True)), 0.0, None))
    errors[np.any(np.abs(v[:, empty]) > 1e-6, axis=1)] = np.inf
    return errors


def information_fraction(matrix, truth) -> np.ndarray:
    """Per parameter (the others profiled), the share of the truth's information that the Fisher
    information ``matrix`` holds: ``(sigma_truth / sigma)^2`` with ``sigma = sqrt(diag I^-1)``. 1 for an
    approach that learns everything the parton-level truth knows; 0 for a parameter it cannot measure."""
    return (fisher_errors(truth) / fisher_errors(matrix)) ** 2


def method_quality(results: dict[str, dict], fisher: dict | None, sm: dict[str, float]) -> dict[str, dict]:
    """Quality numbers of every method in ``results`` (each as the evaluation notebook wrote it)."""
    ratios = fisher_ratios(fisher) if fisher and "truth" in fisher else {}
    bound = error = None
    if fisher and "truth" in fisher:
        bound, error = truth_bound(fisher["truth"], fisher.get("truth_covariance"))
    base = results.get("histo")
    out = {}
    for method, r in results.items():
        q: dict = {"bias_in_halfwidths": {}, "width_68": {}, "width_95": {}}
        q["width_68_relative_to_histo"], q["width_95_relative_to_histo"] = {}, {}
        excludes = False
        for name, iv in r["intervals"].items():
            lo68, hi68 = iv["68"]["low"], iv["68"]["high"]
            half = 0.5 * (hi68 - lo68)
            q["bias_in_halfwidths"][name] = (r["best_fit"][name] - sm[name]) / half
            q["width_68"][name] = hi68 - lo68
            q["width_95"][name] = iv["95"]["high"] - iv["95"]["low"]
            if base is not None:
                for cl in ("68", "95"):
                    b = base["intervals"][name][cl]
                    q[f"width_{cl}_relative_to_histo"][name] = q[f"width_{cl}"][name] / (b["high"] - b["low"])
            excludes |= not (lo68 <= sm[name] <= hi68)
        q["excludes_sm_at_68"] = bool(excludes)
        if bound is not None:
            order = fisher.get("parameters") or list(r["intervals"])
            at = {n: order.index(n) for n in r["intervals"]}
            half = {n: 0.5 * q["width_68"][n] for n in at}
            q["truth_bound_68"] = {n: float(bound[i]) for n, i in at.items()}
            q["truth_bound_68_error"] = {n: float(error[i]) for n, i in at.items()}
            q["halfwidth_68_over_truth_bound"] = {n: half[n] / bound[i] for n, i in at.items()}
            # what the limits reach of the truth's information: (truth bound / 68% half-width)^2
            q["information_fraction"] = {n: (bound[i] / half[n]) ** 2 for n, i in at.items()}
            q["over_confident"] = any(half[n] < bound[i] - 2 * error[i] for n, i in at.items())
        if "q_at_truth" in r:  # q(SM) - q_min: (distance of the best fit in sigmas)^2 near a quadratic minimum
            q["q_at_sm"] = r["q_at_truth"]

        q["converged"] = bool(r.get("max_relative_move", 0.0) < CONVERGENCE_LIMIT)
        if "closure" in r:
            q["closure_passed"] = bool(r["closure"]["passed"])
        fisher_key = METHODS[method].fisher_key if method in METHODS else None
        if fisher_key in ratios:
            q["fisher_det_relative_to_truth"] = ratios[fisher_key]
        out[method] = q
    return out


def flags(quality: dict) -> list[str]:
    """The warnings a method's quality numbers raise, in words (the report and the plotting table)."""
    return [
        text
        for text, raised in (
            ("68% CL excludes the SM", quality.get("excludes_sm_at_68")),
            ("narrower than the truth bound (over-confident)", quality.get("over_confident")),
            ("closure check failed", quality.get("closure_passed") is False),
            ("interval ends not converged", quality.get("converged") is False),
        )
        if raised
    ]
