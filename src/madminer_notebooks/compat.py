"""Narrow fixes that make MadMiner 0.9.6 work, and work fast, on today's numpy.

Each fix replaces one module-level name inside one MadMiner module, so nothing else in the process
changes; :func:`apply` is idempotent and the tests check both the behaviour and the output identity.

1. ``np.histogramdd(..., normed=False)`` in ``madminer.utils.histo`` and ``madminer.likelihood.histo``:
   numpy >= 1.24 removed ``normed``, which breaks ``AsymptoticLimits`` in the ``histo`` and ``sally``
   modes. Those two modules get a numpy proxy whose ``histogramdd`` maps ``normed`` to ``density``.
2. ``madminer.utils.interfaces.lhe._get_objects`` searches the PDG table twice per event (about 90% of
   LHE reading time). The two searches return constants; they are computed once.
"""

from __future__ import annotations

import functools
import logging
from types import ModuleType
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
_APPLIED = False


class _NumpyWithNormed:
    """numpy, except that ``histogramdd`` also accepts the removed ``normed`` keyword."""

    def __init__(self, numpy: ModuleType):
        self._np = numpy

    def __getattr__(self, name: str) -> Any:
        return getattr(self._np, name)

    def histogramdd(self, *args: Any, normed: bool | None = None, **kwargs: Any):
        if normed is not None:
            if "density" in kwargs:
                raise TypeError("histogramdd got both normed and density")
            kwargs["density"] = normed
        return self._np.histogramdd(*args, **kwargs)


class _CachedParticleTable:
    """Stands in for ``particle.Particle`` inside MadMiner's LHE module: ``findall`` with a filter that
    has no free variables (the lambdas MadMiner passes) is answered once and then from a cache."""

    def __init__(self, particle_cls: type):
        self._cls = particle_cls
        self._cache: dict[Any, list] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cls, name)

    def findall(self, filter_fn=None, *args: Any, **kwargs: Any) -> list:
        code = getattr(filter_fn, "__code__", None)
        if code is None or filter_fn.__closure__ or args or kwargs:
            return self._cls.findall(filter_fn, *args, **kwargs)
        if code not in self._cache:
            self._cache[code] = list(self._cls.findall(filter_fn))
        return list(self._cache[code])


def apply() -> None:
    """Apply all fixes (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    import madminer.likelihood.histo as likelihood_histo
    import madminer.utils.histo as utils_histo
    import madminer.utils.interfaces.lhe as lhe

    for module in (utils_histo, likelihood_histo):
        module.np = _NumpyWithNormed(np)
    lhe.Particle = _CachedParticleTable(lhe.Particle)
    lhe.get_elementary_pdg_ids = functools.lru_cache(maxsize=None)(lhe.get_elementary_pdg_ids)
    _APPLIED = True
    log.debug("MadMiner compatibility fixes applied")


def analyse_samples(reader, description: str) -> None:
    """``LHEReader.analyse_samples`` with a clear error when no event passes the cuts (MadMiner logs a
    warning and then fails with 'not enough values to unpack')."""
    try:
        reader.analyse_samples()
    except ValueError as err:
        if "not enough values to unpack" in str(err):
            raise RuntimeError(f"no event of {description} passed the observables' requirements and cuts") from err
        raise
    if reader.observations is None or len(next(iter(reader.observations.values()))) == 0:
        raise RuntimeError(f"no event of {description} passed the observables' requirements and cuts")
