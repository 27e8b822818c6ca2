"""A parametrised detector for jets and photons, with the functional forms and numbers of Delphes's ATLAS
card (``cards/delphes_card_ATLAS.tcl`` of Delphes 3; quoted next to each function).

Delphes smears calorimeter towers and builds jets from particle-flow candidates; here the card's
resolutions act on the reconstructed objects themselves: a photon's energy with the ECal formula, a jet's
energy with the HCal formula. For jets that is conservative (Delphes measures their charged part with the
tracker, which is finer than the HCal), and it is the whole of the difference: the functional forms, the
coefficients and the eta ranges are the card's. A smeared object keeps its direction and its mass-to-energy
ratio (all momentum components scale with the energy), as Delphes's ``EnergySmearing`` does.
"""

from __future__ import annotations

import numpy as np

#: PhotonIsolation of the card: other particles with pT > 0.5 GeV within Delta R < 0.5 may carry at most
#: 12% of the photon's pT.
ISOLATION_DR = 0.5
ISOLATION_PT_MIN = 0.5
ISOLATION_PT_RATIO_MAX = 0.12


def photon_efficiency(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """PhotonEfficiency: 0 below 10 GeV; 0.95 for |eta| <= 1.5; 0.85 for 1.5 < |eta| <= 2.5; 0 beyond."""
    a = np.abs(eta)
    return np.where(pt <= 10.0, 0.0, np.where(a <= 1.5, 0.95, np.where(a <= 2.5, 0.85, 0.0)))


def photon_energy_resolution(e: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """ECal ResolutionFormula (GeV): sqrt(E^2 0.0017^2 + E 0.101^2) for |eta| <= 3.2,
    sqrt(E^2 0.0350^2 + E 0.285^2) for 3.2 < |eta| <= 4.9; nothing is measured beyond."""
    a = np.abs(eta)
    central = np.sqrt(e**2 * 0.0017**2 + e * 0.101**2)
    forward = np.sqrt(e**2 * 0.0350**2 + e * 0.285**2)
    return np.where(a <= 3.2, central, np.where(a <= 4.9, forward, 0.0))


def jet_energy_resolution(e: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """HCal ResolutionFormula (GeV): sqrt(E^2 0.0302^2 + E 0.5205^2 + 1.59^2) for |eta| <= 1.7,
    sqrt(E^2 0.0500^2 + E 0.706^2) for 1.7 < |eta| <= 3.2, sqrt(E^2 0.0942^2 + E 1.00^2) up to 4.9."""
    a = np.abs(eta)
    barrel = np.sqrt(e**2 * 0.0302**2 + e * 0.5205**2 + 1.59**2)
    endcap = np.sqrt(e**2 * 0.0500**2 + e * 0.706**2)
    forward = np.sqrt(e**2 * 0.0942**2 + e * 1.00**2)
    return np.where(a <= 1.7, barrel, np.where(a <= 3.2, endcap, np.where(a <= 4.9, forward, 0.0)))


def smear_energy(e: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Measured energies: Gaussian around ``e`` with width ``sigma``, as Delphes draws them (a draw at or
    below zero is no measurement: 0)."""
    return np.maximum(e + sigma * rng.standard_normal(np.shape(e)), 0.0)


def passes_efficiency(efficiency: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Which objects the detector records, each with its probability."""
    return rng.random(np.shape(efficiency)) < efficiency
