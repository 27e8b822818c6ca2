"""The held-out events at the reference point, as the closure checks and the Fisher information read them.

The estimators never saw MadMiner's test partition, so it is where they can be checked against what the
simulator knows exactly (the weights and the joint score of each event). One helper cuts and weights it, so
that no notebook cell recomputes it and no cell reads another cell's leftovers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .limits import ConsistentAsymptoticLimits


@dataclass(frozen=True)
class HeldOut:
    """MadMiner's test partition, weighted at the limits' reference point (the SM)."""

    start: int  # the partition's first event in the combined sample
    end: int  # one past its last
    x: np.ndarray  # observables, (n_events, n_observables)
    weights: np.ndarray  # each event's weight at the reference [pb]
    t_xz: np.ndarray  # the joint score d log p(x, z | theta) / d theta at the reference, (n_events, n_parameters)
    n_expected: float  # events after cuts at the reference for the luminosity
    calibration: tuple[slice, slice] | None  # the calibration and the Asimov half, when the limits calibrate

    def weights_at(self, limits: ConsistentAsymptoticLimits, theta: np.ndarray) -> np.ndarray:
        """The same events' weights at another parameter point."""
        return limits.weighted_events(theta=np.asarray(theta, dtype=float), start_event=self.start,
                                      end_event=self.end)[1]  # fmt: skip


def joint_score(weights: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """MadMiner's ``t_xz`` of weighted events at theta: the weight's gradient over the weight, minus
    ``d log sigma / d theta`` (the weighted mean of the first term over the same events)."""
    first = gradients / weights[:, np.newaxis]
    return first - np.sum(gradients, axis=0) / np.sum(weights)


def held_out(limits: ConsistentAsymptoticLimits, test_split: float, luminosity: float) -> HeldOut:
    """The held-out events of ``limits``' sample at its reference point, for ``luminosity`` in pb^-1."""
    start, end = limits.test_partition(test_split)
    reference = limits.reference
    x, weights = limits.weighted_events(theta=reference, start_event=start, end_event=end)
    _, gradients = limits.weighted_events(theta=reference, derivative=True, start_event=start, end_event=end)
    return HeldOut(
        start=start,
        end=end,
        x=x,
        weights=weights,
        t_xz=joint_score(weights, gradients[:, : len(reference)]),
        n_expected=float(luminosity * limits.xsecs(thetas=[reference])[0][0]),
        calibration=limits.calibration_halves(test_split) if limits.calibrate_ratio else None,
    )


def score_members(estimator, x: np.ndarray, n_parameters: int) -> list[np.ndarray]:
    """Each ensemble member's estimated score on ``x`` (its first ``n_parameters`` components): what SALLY's
    limits average, its closure checks and its Fisher information's spread reads. A second call on the same
    events costs nothing (compat fix 4 remembers the scores)."""
    members = getattr(estimator, "estimators", [estimator])
    return [m.evaluate_score(x=x)[:, :n_parameters] for m in members]
