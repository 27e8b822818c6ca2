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
"""

from .pythia import ShowerSettings
from .reader import ShowerLHEReader, analysis_level, record_level

__all__ = ["ShowerLHEReader", "ShowerSettings", "analysis_level", "record_level"]
