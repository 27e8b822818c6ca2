"""From showered final-state particles to the reconstructed jets and photons of each event, as an
:class:`~madminer_notebooks.analysis.lhe_columns.EventChunk` whose "particles" are those objects (jets with
PDG id 21, photons 22), so that the parton-level reader's observables and cuts apply to them unchanged.

Per event, in the order of Delphes's ATLAS card:

1. photons: every final-state photon, its energy smeared with the ECal resolution, kept with the photon
   efficiency, then isolated (other visible particles above 0.5 GeV within Delta R < 0.5 carry at most 12%
   of its pT);
2. jets: anti-kT over the visible final-state particles without electrons and muons (the card's
   ``EFlowFilter``) and without the reconstructed photons (the card's ``UniqueObjectFinder`` gives photons
   priority), their energy smeared with the HCal resolution, kept above ``jet_pt_min`` and within
   ``jet_eta_max``.
"""

from __future__ import annotations

import numpy as np

from ..analysis.lhe_columns import EventChunk, pad
from . import detector
from .jets import Jets, antikt
from .pythia import INVISIBLE, ShoweredChunk, ShowerSettings

#: The PDG ids the reconstructed objects carry in the chunk (the reader's "j" and "a" collections).
JET_ID, PHOTON_ID = 21, 22

#: Clustering threshold before the jets' energy is smeared: below the analysis threshold, so that jets that
#: fluctuate upwards across it are not lost.
_PRE_SMEARING_FRACTION = 0.5


def _eta_phi_pt(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / np.where(pt > 0, pt, 1.0), np.sign(pz) * 1e10))
    return eta, np.arctan2(py, px), pt


def photons(showered: ShoweredChunk, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(index into the flat particles of each reconstructed photon, its smeared energy)."""
    s = showered
    eta, phi, pt = _eta_phi_pt(s.px, s.py, s.pz)
    candidate = np.flatnonzero(s.pdgid == PHOTON_ID)
    e = detector.smear_energy(s.e[candidate], detector.photon_energy_resolution(s.e[candidate], eta[candidate]), rng)
    pt_smeared = pt[candidate] * np.divide(e, s.e[candidate], out=np.zeros_like(e), where=s.e[candidate] > 0)
    seen = detector.passes_efficiency(detector.photon_efficiency(pt_smeared, eta[candidate]), rng)
    candidate, e, pt_smeared = candidate[seen], e[seen], pt_smeared[seen]
    # isolation: every other visible particle of the same event, pairs built flat
    visible = ~np.isin(np.abs(s.pdgid), INVISIBLE) & (pt > detector.ISOLATION_PT_MIN)
    starts = np.concatenate([[0], np.cumsum(s.counts)])
    ev = s.event[candidate]
    owner = np.repeat(np.arange(len(candidate)), s.counts[ev])
    offsets = np.concatenate([[0], np.cumsum(s.counts[ev])])
    other = starts[ev][owner] + np.arange(len(owner)) - offsets[owner]
    d_eta = eta[other] - eta[candidate][owner]
    d_phi = np.angle(np.exp(1j * (phi[other] - phi[candidate][owner])))
    near = visible[other] & (other != candidate[owner]) & (d_eta**2 + d_phi**2 < detector.ISOLATION_DR**2)
    sum_pt = np.bincount(owner[near], weights=pt[other][near], minlength=len(candidate))
    isolated = sum_pt <= detector.ISOLATION_PT_RATIO_MAX * pt_smeared
    return candidate[isolated], e[isolated]


def jets(showered: ShoweredChunk, exclude: np.ndarray, settings: ShowerSettings, rng: np.random.Generator) -> Jets:
    """Reconstructed jets of each event (flat particles at ``exclude`` are not clustered)."""
    s = showered
    keep = ~np.isin(np.abs(s.pdgid), (*INVISIBLE, 11, 13))
    keep[exclude] = False
    counts = np.bincount(s.event[keep], minlength=len(s.counts))
    found = antikt(counts, s.px[keep], s.py[keep], s.pz[keep], s.e[keep], settings.jet_radius,
                   _PRE_SMEARING_FRACTION * settings.jet_pt_min)  # fmt: skip
    eta, _, _ = _eta_phi_pt(found.px, found.py, found.pz)
    e = detector.smear_energy(found.e, detector.jet_energy_resolution(found.e, eta), rng)
    scale = np.divide(e, found.e, out=np.zeros_like(e), where=found.e > 0)
    px, py, pz = found.px * scale, found.py * scale, found.pz * scale
    good = (np.hypot(px, py) > settings.jet_pt_min) & (np.abs(eta) < settings.jet_eta_max)
    owner = np.repeat(np.arange(len(found.counts)), found.counts)
    order = np.lexsort((-np.hypot(px, py), owner))  # by event, then decreasing smeared pT
    order = order[good[order]]
    return Jets(np.bincount(owner[good], minlength=len(found.counts)), px[order], py[order], pz[order], e[order])


def reconstruct(lhe: EventChunk, showered: ShoweredChunk, settings: ShowerSettings,
                rng: np.random.Generator) -> EventChunk:  # fmt: skip
    """The reconstructed objects of the showered events, with the weights and global numbers (scale,
    couplings) of their events in the LHE file: an EventChunk for the reader."""
    first = lhe.first_event - 1  # ShoweredChunk.index counts from the file's first event, 0-based
    rows = showered.index - first
    photon_at, photon_e = photons(showered, rng)
    found = jets(showered, photon_at, settings, rng)
    n = len(rows)
    event_of_photon = showered.event[photon_at]
    scale = np.divide(photon_e, showered.e[photon_at], out=np.zeros_like(photon_e), where=showered.e[photon_at] > 0)
    jet_event = np.repeat(np.arange(n), found.counts)
    owner = np.concatenate([jet_event, event_of_photon])
    columns = {
        "px": np.concatenate([found.px, showered.px[photon_at] * scale]),
        "py": np.concatenate([found.py, showered.py[photon_at] * scale]),
        "pz": np.concatenate([found.pz, showered.pz[photon_at] * scale]),
        "e": np.concatenate([found.e, photon_e]),
        "pdgid": np.concatenate([np.full(len(jet_event), JET_ID), np.full(len(event_of_photon), PHOTON_ID)]),
    }
    order = np.argsort(owner, kind="stable")  # per event: jets (by pT), then photons
    padded, present = pad(np.bincount(owner, minlength=n), {name: v[order] for name, v in columns.items()})
    return EventChunk(
        first_event=lhe.first_event,
        weights={name: w[rows] for name, w in lhe.weights.items()},
        pdgid=padded["pdgid"].astype(np.int64),
        px=padded["px"],
        py=padded["py"],
        pz=padded["pz"],
        e=padded["e"],
        spin=np.zeros(present.shape),
        present=present,
        globals={name: v[rows] for name, v in lhe.globals.items()},
    )
