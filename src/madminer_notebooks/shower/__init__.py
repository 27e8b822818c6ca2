"""Shower-level events: Pythia 8 showers and hadronises each LHE event (the weights of every benchmark are
carried through untouched), FastJet clusters the final-state particles into anti-kT jets, photons are
isolated, and a parametrised detector (the efficiencies and resolutions of Delphes's ATLAS card) turns them
into reconstructed jets and photons. :class:`~.reader.ShowerLHEReader` feeds those objects to the same
observables and cuts as the parton-level reader, so every later stage is unchanged.

- :mod:`.pythia`: Pythia 8 on an LHE file, event by event, aligned with the file's events;
- :mod:`.jets`: anti-kT over many events at once (FastJet's multi-event interface);
- :mod:`.detector`: the ATLAS card's photon efficiency, isolation and energy resolutions, and the jet
  energy resolution;
- :mod:`.reconstruct`: from showered particles to reconstructed objects, in chunks of events;
- :mod:`.reader`: MadMiner's ``LHEReader`` reading those objects.


- :mod:`.settings`: ``analysis.shower`` and its defaults, which the parameter schema reads.

Importing the package is cheap (the names below load on first use): the parameter schema imports
:mod:`.settings` without importing Pythia, FastJet or MadMiner.
"""

import importlib

_LAZY = {
    "ShowerSettings": ".settings",
    "ShowerLHEReader": ".reader",
    "analysis_level": ".reader",
    "record_level": ".reader",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)
