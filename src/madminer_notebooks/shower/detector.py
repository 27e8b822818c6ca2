"""The detector of Delphes 3's ATLAS card (``cards/delphes_card_ATLAS.tcl``), in what changes the tutorial's
observables; each function quotes the card.

What is modelled as the card does it:

- **calorimeter towers**: every visible final-state particle leaves its energy in an ECal and an HCal cell by
  the card's energy fractions (e and photons all in the ECal, muons and neutrinos nowhere, K0S and Lambda 30/70,
  other hadrons all in the HCal); the cells are the card's eta-phi grids (ECal about 0.0174 x 1 degree up to
  |eta| = 3, HCal 0.1 x 10 degrees up to 2.5, coarser beyond); a tower's energy is drawn log-normal around
  the deposited energy with the card's resolution at the cell's centre, dropped below ``EnergyMin`` or two
  standard deviations (``EnergySignificanceMin``), and its direction is drawn uniformly inside the cell
  (``SmearTowerCenter``), which smears jet directions by the granularity;
- **jets**: anti-kT with R = 0.6 over the towers (``FastJetFinder`` on ``Calorimeter/towers``), kept above
  ``JetPTMin`` = 20 GeV, then scaled by the ``JetEnergyScale`` formula;
- **photons**: efficiency, then isolation against the energy-flow objects without electrons and muons
  (``EFlowFilter/eflow``: Delta R < 0.5, pT > 0.5 GeV, at most 12% of the photon's pT); a photon's energy is
  its ECal tower's, log-normal with the ECal resolution, its direction smeared inside its ECal cell.

Where it differs, and why that is small here:

- a photon is its own ECal cell (Delphes would merge two neutral particles in one 0.0174 x 1 degree cell, and
  subtract a track's energy from a cell it shares with a photon);
- the isolation sums the particles' true pT (Delphes sums energy-flow objects: tracks within |eta| < 2.5 with
  the card's tracking efficiency, and towers) — the isolation cut is a 12% threshold, insensitive to a few per
  cent of resolution;
- the photons' towers are left out of the jets' input, where Delphes clusters them and then removes every jet
  that contains a photon's tower (``UniqueObjectFinder``); an isolated photon carries nearly all of the energy
  around it, so the jet Delphes removes is the photon itself;
- no tracking, b- or tau-tagging, electrons and muons as objects, or missing energy: the tutorial's
  observables use jets and photons only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: PhotonIsolation of the card: other energy-flow objects with pT > 0.5 GeV within Delta R < 0.5 may carry at
#: most 12% of the photon's pT; EFlowFilter leaves electrons and muons out of them.
ISOLATION_DR = 0.5
ISOLATION_PT_MIN = 0.5
ISOLATION_PT_RATIO_MAX = 0.12
ISOLATION_EXCLUDED = (11, 13)

#: FastJetFinder of the card: anti-kT, R = 0.6, jets above 20 GeV before the jet energy scale.
JET_RADIUS = 0.6
JET_PT_MIN = 20.0


def _edges(*groups: tuple[list[float], int]) -> tuple[np.ndarray, np.ndarray]:
    """The card's ``add EtaPhiBins eta PhiBins`` lines, grouped by their number of phi bins: (sorted eta edges,
    phi bins of the cell that each edge closes). A cell spans two consecutive edges and takes the phi bins
    given with its upper edge (the first edge only opens the first cell)."""
    eta = np.concatenate([np.asarray(e, dtype=float) for e, _ in groups])
    phi = np.concatenate([np.full(len(e), n) for e, n in groups])
    order = np.argsort(eta, kind="stable")
    return eta[order], phi[order]


_HF = [-5, -4.7, -4.525, -4.35, -4.175, -4, -3.825, -3.65, -3.475, -3.3, -3.125, -2.958,
       3.125, 3.3, 3.475, 3.65, 3.825, 4, 4.175, 4.35, 4.525, 4.7, 5]  # fmt: skip
_HCAL_10 = [-3.2, *np.round(np.arange(-2.5, 2.55, 0.1), 1), 2.6, 3.3]
_HCAL_20 = [-4.9, -4.7, -4.5, -4.3, -4.1, -3.9, -3.7, -3.5, -3.3, -3, -2.8, -2.6,
            2.8, 3, 3.2, 3.5, 3.7, 3.9, 4.1, 4.3, 4.5, 4.7, 4.9]  # fmt: skip


def ecal_resolution(e: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """ECal ResolutionFormula (GeV): sqrt(E^2 0.0017^2 + E 0.101^2) for |eta| <= 3.2,
    sqrt(E^2 0.0350^2 + E 0.285^2) for 3.2 < |eta| <= 4.9; nothing is measured beyond."""
    a = np.abs(eta)
    central = np.sqrt(e**2 * 0.0017**2 + e * 0.101**2)
    forward = np.sqrt(e**2 * 0.0350**2 + e * 0.285**2)
    return np.where(a <= 3.2, central, np.where(a <= 4.9, forward, 0.0))


def hcal_resolution(e: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """HCal ResolutionFormula (GeV): sqrt(E^2 0.0302^2 + E 0.5205^2 + 1.59^2) for |eta| <= 1.7,
    sqrt(E^2 0.0500^2 + E 0.706^2) for 1.7 < |eta| <= 3.2, sqrt(E^2 0.0942^2 + E 1.00^2) up to 4.9."""
    a = np.abs(eta)
    barrel = np.sqrt(e**2 * 0.0302**2 + e * 0.5205**2 + 1.59**2)
    endcap = np.sqrt(e**2 * 0.0500**2 + e * 0.706**2)
    forward = np.sqrt(e**2 * 0.0942**2 + e * 1.00**2)
    return np.where(a <= 1.7, barrel, np.where(a <= 3.2, endcap, np.where(a <= 4.9, forward, 0.0)))


@dataclass(frozen=True)
class Calorimeter:
    """One of the card's ``SimpleCalorimeter`` modules."""

    name: str
    eta_edges: np.ndarray
    phi_bins: np.ndarray  # per edge: the phi bins of the cell it closes
    resolution: object  # (energy, eta) -> sigma
    energy_min: float
    significance_min: float = 2.0

    def cells(self, eta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(inside the calorimeter, eta cell = index of its upper edge, phi cell) of each direction."""
        k = np.searchsorted(self.eta_edges, eta, side="right")
        inside = (k > 0) & (k < len(self.eta_edges))
        k = np.clip(k, 1, len(self.eta_edges) - 1)
        n_phi = self.phi_bins[k]
        iphi = np.minimum(np.floor((np.asarray(phi) + np.pi) / (2 * np.pi) * n_phi), n_phi - 1).astype(np.int64)
        return inside, k, iphi

    def smear_in_cell(self, k: np.ndarray, iphi: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """``SmearTowerCenter``: a direction drawn uniformly inside each cell."""
        low, high = self.eta_edges[k - 1], self.eta_edges[k]
        width = 2 * np.pi / self.phi_bins[k]
        eta = low + (high - low) * rng.random(len(k))
        phi = -np.pi + (iphi + rng.random(len(k))) * width
        return eta, phi

    def centre(self, k: np.ndarray) -> np.ndarray:
        return 0.5 * (self.eta_edges[k - 1] + self.eta_edges[k])


#: ECal: 0.0174 in eta and 1 degree in phi up to |eta| = 3, the HF cells beyond (10 degrees); EnergyMin 0.5.
ECAL = Calorimeter(
    "ECal",
    *_edges(
        (list(np.arange(-85, 87) * 0.0174), 360),
        (list(-2.958 + np.arange(1, 85) * 0.0174) + list(1.4964 + np.arange(1, 85) * 0.0174), 360),
        (_HF, 36),
    ),
    resolution=ecal_resolution,
    energy_min=0.5,
)
#: HCal: 0.1 in eta and 10 degrees in phi up to |eta| = 2.5, coarser beyond (20 degrees); EnergyMin 1.0.
HCAL = Calorimeter("HCal", *_edges((_HCAL_10, 36), (_HCAL_20, 18)), resolution=hcal_resolution, energy_min=1.0)


def ecal_fraction(pdgid: np.ndarray) -> np.ndarray:
    """The card's EnergyFraction in the ECal: 1 for e, photons (and pi0), 0.3 for K0S and Lambda, 0 for muons,
    neutrinos and the other hadrons (the HCal takes the rest of a hadron's energy, nothing of a muon's)."""
    a = np.abs(pdgid)
    return np.where(np.isin(a, (11, 22, 111)), 1.0, np.where(np.isin(a, (310, 3122)), 0.3, 0.0))


def hcal_fraction(pdgid: np.ndarray) -> np.ndarray:
    a = np.abs(pdgid)
    no_hcal = np.isin(a, (11, 22, 111, 12, 13, 14, 16))
    return np.where(no_hcal, 0.0, np.where(np.isin(a, (310, 3122)), 0.7, 1.0))


def lognormal(mean: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Delphes's ``LogNormal(mean, sigma)``: a log-normal draw with that mean and standard deviation (0 for a
    zero mean), as the calorimeters measure a tower's energy."""
    mean = np.asarray(mean, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.log1p(np.where(mean > 0, (sigma / np.where(mean > 0, mean, 1.0)) ** 2, 0.0))
        mu = np.log(np.where(mean > 0, mean, 1.0)) - 0.5 * s2
    return np.where(mean > 0, np.exp(mu + np.sqrt(s2) * rng.standard_normal(mean.shape)), 0.0)


def jet_energy_scale(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """JetEnergyScale ScaleFormula: sqrt((3.0 - 0.2 |eta|)^2 / pT + 1.0), applied to the whole four-momentum."""
    return np.sqrt((3.0 - 0.2 * np.abs(eta)) ** 2 / pt + 1.0)


def photon_efficiency(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """PhotonEfficiency: 0 below 10 GeV; 0.95 for |eta| <= 1.5; 0.85 for 1.5 < |eta| <= 2.5; 0 beyond."""
    a = np.abs(eta)
    return np.where(pt <= 10.0, 0.0, np.where(a <= 1.5, 0.95, np.where(a <= 2.5, 0.85, 0.0)))


def passes_efficiency(efficiency: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Which objects the detector records, each with its probability."""
    return rng.random(np.shape(efficiency)) < efficiency


@dataclass
class Towers:
    """Measured towers of consecutive events, flat: massless four-vectors at the smeared cell directions."""

    event: np.ndarray
    e: np.ndarray
    eta: np.ndarray
    phi: np.ndarray

    def momenta(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pt = self.e / np.cosh(self.eta)
        return pt * np.cos(self.phi), pt * np.sin(self.phi), pt * np.sinh(self.eta)


def towers(calo: Calorimeter, event: np.ndarray, eta: np.ndarray, phi: np.ndarray, energy: np.ndarray,
           rng: np.random.Generator) -> Towers:  # fmt: skip
    """The towers that the deposits ``energy`` at (eta, phi) of events ``event`` make in ``calo``: summed per
    cell, measured log-normal at the cell centre's resolution, dropped below ``EnergyMin`` or below
    ``EnergySignificanceMin`` standard deviations, their directions drawn inside the cells."""
    inside, k, iphi = calo.cells(eta, phi)
    use = inside & (energy > 0)
    max_phi = int(calo.phi_bins.max())
    key = (event[use].astype(np.int64) * len(calo.eta_edges) + k[use]) * max_phi + iphi[use]
    cells, inverse = np.unique(key, return_inverse=True)
    deposited = np.bincount(inverse, weights=energy[use], minlength=len(cells))
    cell_phi = cells % max_phi
    cell_eta = (cells // max_phi) % len(calo.eta_edges)
    cell_event = cells // max_phi // len(calo.eta_edges)
    sigma = calo.resolution(deposited, calo.centre(cell_eta))
    measured = lognormal(deposited, sigma, rng)
    kept = (measured >= calo.energy_min) & (measured >= calo.significance_min * sigma)
    t_eta, t_phi = calo.smear_in_cell(cell_eta[kept], cell_phi[kept], rng)
    return Towers(cell_event[kept], measured[kept], t_eta, t_phi)
