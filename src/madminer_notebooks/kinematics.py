"""Parton-level jet observables computed from momentum arrays (for plots and checks of event files;
the analysis itself uses MadMiner's expressions)."""

from __future__ import annotations

import numpy as np


def jet_observables(jets: np.ndarray) -> dict[str, np.ndarray]:
    """pT of the leading jet, signed Delta phi_jj and m_jj of two massless jets, ``jets`` (n, 2, 4) as
    (E, px, py, pz). Delta phi = wrap(phi(j0) - phi(j1)) into (-pi, pi], times +1 if eta(j0) > eta(j1),
    -1 otherwise, with j0 the leading jet."""
    pt = np.hypot(jets[..., 1], jets[..., 2])
    eta = np.arcsinh(jets[..., 3] / pt)
    phi = np.arctan2(jets[..., 2], jets[..., 1])
    rows = np.arange(len(pt))
    lead = np.argmax(pt, axis=1)
    dphi = np.angle(np.exp(1j * (phi[rows, lead] - phi[rows, 1 - lead])))
    signed = np.where(eta[rows, lead] > eta[rows, 1 - lead], dphi, -dphi)
    m2 = 2 * pt[:, 0] * pt[:, 1] * (np.cosh(eta[:, 0] - eta[:, 1]) - np.cos(phi[:, 0] - phi[:, 1]))
    return {"pt_j1": pt[rows, lead], "dphi_jj": signed, "m_jj": np.sqrt(m2)}
