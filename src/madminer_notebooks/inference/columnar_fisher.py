"""MadMiner's ``FisherInformation`` with its histogram informations computed over whole columns.

``histo_information``, ``histo_information_2d`` and their equal-cross-section binning evaluate the
observable, every cut and every efficiency with Python's ``eval`` once per event, building a fresh
dictionary of math functions each time, and then fill the histogram with one boolean mask per bin: for
quick.yaml's 2D histogram about ten seconds, most of the histogram execution's Fisher information. Here the
same expressions are evaluated once over the columns of the event table (numpy's functions standing in for
the ``math`` ones MadMiner offers) and the bins are filled with ``np.bincount``. Everything after the
bin contents (the statistics check, ``_calculate_fisher_information`` with its error propagation) is
MadMiner's, and the results agree with MadMiner's to 1e-10 (``tests/test_fisher_columnar.py``; only the
order of the floating-point sums differs). An expression numpy cannot evaluate over arrays (``x if a else
b``, ``and``) is evaluated event by event with MadMiner's own function.

The total cross sections behind ``rate_information`` and ``full_information`` (``_calculate_xsec``) select
their events the same way.

``evaluation.fisher: madminer`` in a parameter file gives MadMiner's class itself (:func:`fisher_class`).
"""

from __future__ import annotations

import logging

import numpy as np
from madminer.fisherinformation import FisherInformation
from madminer.utils.various import mdot, weighted_quantile

from ..math_names import NUMPY_MATH

log = logging.getLogger(__name__)


class ColumnarFisherInformation(FisherInformation):
    """``FisherInformation`` whose histograms are filled column-wise (see the module's docstring)."""

    def _columns(self, observations: np.ndarray, expression: str) -> np.ndarray:
        """``expression`` for every event (MadMiner's ``float(eval(...))`` per event, over arrays)."""
        variables = {**NUMPY_MATH, "pi": np.pi, **{name: observations[:, i] for i, name in enumerate(self.observables)}}
        try:
            with np.errstate(all="ignore"):
                values = np.broadcast_to(np.asarray(eval(expression, variables), dtype=np.float64), len(observations))
        except (TypeError, ValueError):  # not an array expression: MadMiner's evaluation, event by event
            log.debug("%r is evaluated event by event", expression)
            return np.array([self._eval_observable(event, expression) for event in observations], dtype=np.float64)
        return np.array(values)

    def _selected(self, observations: np.ndarray, weights: np.ndarray, cuts: list[str],
                  efficiency_functions: list[str]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """The events that pass ``cuts``, their weights multiplied by the efficiencies (MadMiner's order)."""
        if cuts:
            passed = np.ones(len(observations), dtype=bool)
            for cut in cuts:
                passed &= self._columns(observations, cut).astype(bool)
            observations, weights = observations[passed], weights[passed]
        efficiencies = np.ones(len(observations))
        for function in efficiency_functions:
            efficiencies *= self._columns(observations, function)
        return observations, weights * efficiencies[:, np.newaxis]

    def _calculate_dynamic_binning(self, observable, theta, n_bins, n_events=None, cuts=None,
                                   efficiency_functions=None):  # fmt: skip
        x_pilot, weights_pilot = next(self.event_loader(batch_size=n_events))
        x_pilot, weights_pilot = self._selected(x_pilot, weights_pilot, cuts or [], efficiency_functions or [])
        values = self._columns(x_pilot, observable)
        weight_theta = mdot(self._get_theta_benchmark_matrix(theta), weights_pilot)
        return weighted_quantile(values, np.linspace(0.0, 1.0, n_bins + 1), weight_theta)[1:-1]

    def _calculate_xsec(self, theta=None, cuts=None, efficiency_functions=None, return_benchmark_xsecs=False,
                        return_error=False, include_nuisance_parameters=True, start_event=0):  # fmt: skip
        """MadMiner's total cross sections (used by ``rate_information`` and ``full_information``), with the
        cuts and efficiencies evaluated over columns."""
        if theta is None and not return_benchmark_xsecs:
            raise ValueError("Please supply theta or set return_benchmark_xsecs=True")
        sums = squares = None
        for observations, weights in self.event_loader(
            start=start_event, include_nuisance_parameters=include_nuisance_parameters
        ):
            _, weights = self._selected(observations, weights, cuts or [], efficiency_functions or [])
            batch, batch_squares = np.sum(weights, axis=0), np.sum(weights**2, axis=0)
            sums = batch if sums is None else sums + batch
            squares = batch_squares if squares is None else squares + batch_squares
        if sums is None:
            raise ValueError("No events passed cuts")
        errors = squares**0.5
        if return_benchmark_xsecs:
            return (sums, errors) if return_error else sums
        theta_matrix = self._get_theta_benchmark_matrix(theta)
        xsec, xsec_error = mdot(theta_matrix, sums), mdot(theta_matrix, errors)
        return (xsec, xsec_error) if return_error else xsec

    def _histogram(self, theta, observables, bins, histranges, cuts, efficiency_functions, n_events_dynamic_binning):
        """Per bin (flattened, the last axis fastest) and benchmark, the weights summed and the square root of
        their squares summed, as MadMiner's loops fill them; and the histogram's shape."""
        cuts, efficiency_functions = cuts or [], efficiency_functions or []
        binnings = [
            self._calculate_binning(b, cuts, efficiency_functions, r, n_events_dynamic_binning, o, theta)
            for o, b, r in zip(observables, bins, histranges, strict=True)
        ]
        shape = tuple(n for _, n in binnings)
        sums = np.zeros((int(np.prod(shape)), self.n_benchmarks))
        squares = np.zeros_like(sums)
        for observations, weights in self.event_loader():
            observations, weights = self._selected(observations, weights, cuts, efficiency_functions)
            flat = np.zeros(len(observations), dtype=np.int64)
            for observable, (boundaries, n_total) in zip(observables, binnings, strict=True):
                i_bins = np.searchsorted(boundaries, self._columns(observations, observable))
                if not ((i_bins >= 0) & (i_bins < n_total)).all():
                    raise AssertionError(f"Wrong bin {i_bins}")
                flat = flat * n_total + i_bins
            for b in range(self.n_benchmarks):
                sums[:, b] += np.bincount(flat, weights=weights[:, b], minlength=len(sums))
                squares[:, b] += np.bincount(flat, weights=weights[:, b] ** 2, minlength=len(sums))
        return sums, squares**0.5, shape

    def _histogram_information(self, theta, luminosity, sums, uncertainties, shape):
        """MadMiner's last steps: its report of the least populated bins, and the information of the bins."""
        self._check_binning_stats(sums, uncertainties, theta, n_bins_last_axis=shape[-1] if len(shape) > 1 else None)
        return self._calculate_fisher_information(
            theta,
            sums,
            luminosity,
            sum_events=True,
            weights_benchmark_uncertainties=uncertainties,
            calculate_uncertainty=True,
        )

    def histo_information(self, theta, luminosity, observable, bins, histrange=None, cuts=None,
                          efficiency_functions=None, n_events_dynamic_binning=None):  # fmt: skip
        histogram = self._histogram(
            theta, [observable], [bins], [histrange], cuts, efficiency_functions, n_events_dynamic_binning
        )
        return self._histogram_information(theta, luminosity, *histogram)

    def histo_information_2d(self, theta, luminosity, observable1, bins1, observable2, bins2, histrange1=None,
                             histrange2=None, cuts=None, efficiency_functions=None,
                             n_events_dynamic_binning=None):  # fmt: skip
        histogram = self._histogram(
            theta,
            [observable1, observable2],
            [bins1, bins2],
            [histrange1, histrange2],
            cuts,
            efficiency_functions,
            n_events_dynamic_binning,
        )
        return self._histogram_information(theta, luminosity, *histogram)

    histo_information.__doc__ = FisherInformation.histo_information.__doc__
    histo_information_2d.__doc__ = FisherInformation.histo_information_2d.__doc__


def fisher_class(choice: str) -> type[FisherInformation]:
    """``evaluation.fisher``: ``columnar`` (:class:`ColumnarFisherInformation`) or ``madminer``."""
    if choice not in FISHER_CLASSES:
        raise ValueError(f"unknown evaluation.fisher {choice!r} (choices: {', '.join(FISHER_CLASSES)})")
    return FISHER_CLASSES[choice]


FISHER_CLASSES: dict[str, type[FisherInformation]] = {
    "columnar": ColumnarFisherInformation,
    "madminer": FisherInformation,
}
