"""What the shower and the reconstruction are run with: ``analysis.shower`` of the parameters, and what a
key left out means (the jets of Delphes's ATLAS card, from :mod:`.detector`).

It depends on nothing else of the project, so that the parameter schema (:mod:`..params`) reads its keys
and defaults from here, and the shower reads them back as a :class:`ShowerSettings`, without either
importing the other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .detector import JET_PT_MIN, JET_RADIUS


@dataclass(frozen=True)
class ShowerSettings:
    """``analysis.shower``; a key left out takes the default written here."""

    mpi: bool = True  # multiple parton interactions (the underlying event); off: ~7x faster
    jet_radius: float = JET_RADIUS  # the anti-kT radius
    jet_pt_min: float = JET_PT_MIN  # GeV, of the clustered towers, before the jet energy scale
    jet_eta_max: float = 4.5

    @classmethod
    def from_params(cls, analysis: dict) -> ShowerSettings:
        given = analysis.get("shower") or {}
        return cls(**{k: given[k] for k in SHOWER_DEFAULTS if k in given})


#: each ``analysis.shower`` key and its default
SHOWER_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(ShowerSettings)}
