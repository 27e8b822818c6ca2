"""From showered final-state particles to the reconstructed jets and photons of each event, as an
:class:`~madminer_notebooks.analysis.lhe_columns.EventChunk` whose "particles" are those objects (jets with
PDG id 21, photons 22), so that the parton-level reader's observables and cuts apply to them unchanged.

Per event, in the order of Delphes's ATLAS card (:mod:`.detector` says what is the card's and where this
differs):

1. photons: every final-state photon, measured as its ECal tower (log-normal energy, direction inside its
   cell), kept with the photon efficiency, then isolated against the other visible particles without
   electrons and muons (above 0.5 GeV within Delta R < 0.5 at most 12% of its pT);
2. jets: the other visible particles deposit their energy in ECal and HCal towers (muons and neutrinos
   none), which are measured and clustered anti-kT (``jet_radius``, the card's 0.6 by default) above
   ``jet_pt_min``; the jet energy scale follows, then ``jet_eta_max``.
"""

from __future__ import annotations

import numpy as np

from ..analysis.lhe_columns import EventChunk, pad
from . import detector
from .jets import Jets, antikt
from .pythia import INVISIBLE, ShoweredChunk
from .settings import ShowerSettings

#: The PDG ids the reconstructed objects carry in the chunk (the reader's "j" and "a" collections).
JET_ID, PHOTON_ID = 21, 22


def _eta_phi_pt(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / np.where(pt > 0, pt, 1.0), np.sign(pz) * 1e10))
    return eta, np.arctan2(py, px), pt


def photons(showered: ShoweredChunk, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(index into the flat particles of each reconstructed photon, its measured energy, eta and phi)."""
    s = showered
    eta, phi, pt = _eta_phi_pt(s.px, s.py, s.pz)
    candidate = np.flatnonzero(s.pdgid == PHOTON_ID)
    inside, k, iphi = detector.ECAL.cells(eta[candidate], phi[candidate])
    candidate, k, iphi = candidate[inside], k[inside], iphi[inside]
    true_e = s.e[candidate]
    e = detector.lognormal(true_e, detector.ecal_resolution(true_e, detector.ECAL.centre(k)), rng)
    a_eta, a_phi = detector.ECAL.smear_in_cell(k, iphi, rng)
    a_pt = e / np.cosh(a_eta)
    seen = detector.passes_efficiency(detector.photon_efficiency(a_pt, a_eta), rng)
    candidate, e, a_eta, a_phi, a_pt = candidate[seen], e[seen], a_eta[seen], a_phi[seen], a_pt[seen]
    # isolation against the energy-flow objects (the card's EFlowFilter leaves out electrons and muons)
    visible = ~np.isin(np.abs(s.pdgid), (*INVISIBLE, *detector.ISOLATION_EXCLUDED)) & (pt > detector.ISOLATION_PT_MIN)
    starts = np.concatenate([[0], np.cumsum(s.counts)])
    ev = s.event[candidate]
    owner = np.repeat(np.arange(len(candidate)), s.counts[ev])
    offsets = np.concatenate([[0], np.cumsum(s.counts[ev])])
    other = starts[ev][owner] + np.arange(len(owner)) - offsets[owner]
    d_eta = eta[other] - a_eta[owner]
    d_phi = np.angle(np.exp(1j * (phi[other] - a_phi[owner])))
    near = visible[other] & (other != candidate[owner]) & (d_eta**2 + d_phi**2 < detector.ISOLATION_DR**2)
    sum_pt = np.bincount(owner[near], weights=pt[other][near], minlength=len(candidate))
    isolated = sum_pt <= detector.ISOLATION_PT_RATIO_MAX * a_pt
    return candidate[isolated], e[isolated], a_eta[isolated], a_phi[isolated]


def jets(showered: ShoweredChunk, exclude: np.ndarray, settings: ShowerSettings, rng: np.random.Generator) -> Jets:
    """Reconstructed jets of each event from calorimeter towers (flat particles at ``exclude`` leave none)."""
    s = showered
    keep = np.ones(len(s.pdgid), dtype=bool)
    keep[exclude] = False
    eta, phi, _ = _eta_phi_pt(s.px, s.py, s.pz)
    parts = []
    for calo, fraction in ((detector.ECAL, detector.ecal_fraction), (detector.HCAL, detector.hcal_fraction)):
        deposit = np.where(keep, fraction(s.pdgid) * s.e, 0.0)
        parts.append(detector.towers(calo, s.event, eta, phi, deposit, rng))
    event = np.concatenate([t.event for t in parts])
    order = np.argsort(event, kind="stable")  # the clustering takes each event's towers together
    momenta = [np.concatenate(c)[order] for c in zip(*(t.momenta() for t in parts), strict=True)]
    energy = np.concatenate([t.e for t in parts])[order]
    counts = np.bincount(event, minlength=len(s.counts))
    found = antikt(counts, *momenta, energy, settings.jet_radius, settings.jet_pt_min)
    j_eta, _, j_pt = _eta_phi_pt(found.px, found.py, found.pz)
    scale = detector.jet_energy_scale(j_pt, j_eta)
    px, py, pz, e = found.px * scale, found.py * scale, found.pz * scale, found.e * scale
    good = np.abs(j_eta) < settings.jet_eta_max
    owner = np.repeat(np.arange(len(found.counts)), found.counts)
    order = np.lexsort((-np.hypot(px, py), owner))  # by event, then decreasing pT after the energy scale
    order = order[good[order]]
    return Jets(np.bincount(owner[good], minlength=len(found.counts)), px[order], py[order], pz[order], e[order])


def reconstruct(lhe: EventChunk, showered: ShoweredChunk, settings: ShowerSettings,
                rng: np.random.Generator) -> EventChunk:  # fmt: skip
    """The reconstructed objects of the showered events, with the weights and global numbers (scale,
    couplings) of their events in the LHE file: an EventChunk for the reader."""
    first = lhe.first_event - 1  # ShoweredChunk.index counts from the file's first event, 0-based
    rows = showered.index - first
    photon_at, photon_e, photon_eta, photon_phi = photons(showered, rng)
    found = jets(showered, photon_at, settings, rng)
    n = len(rows)
    event_of_photon = showered.event[photon_at]
    photon_pt = photon_e / np.cosh(photon_eta)
    jet_event = np.repeat(np.arange(n), found.counts)
    owner = np.concatenate([jet_event, event_of_photon])
    columns = {
        "px": np.concatenate([found.px, photon_pt * np.cos(photon_phi)]),
        "py": np.concatenate([found.py, photon_pt * np.sin(photon_phi)]),
        "pz": np.concatenate([found.pz, photon_pt * np.sinh(photon_eta)]),
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
