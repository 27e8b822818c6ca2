"""Phase space of p p -> j j H(-> gamma gamma) in lab-frame variables, with generation cuts.

The unit hypercube of the adaptive grid is mapped to (pT_3, pT_4, y_3, y_4, y_H, Delta phi, m_H); the
Bjorken x of both partons follow from momentum conservation. The pT mapping flattens the t-channel
W propagators, 1 / (pT^2 + MW^2)^2; the Higgs rapidity is mapped onto the range that keeps x1, x2 <= 1
for the given jets, so no point is wasted on the kinematic boundary; and the Higgs mass is sampled from
its Breit-Wigner truncated at MadGraph's bwcutoff. The adaptive grid only has to learn what is left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .constants import BEAM_ENERGY, BW_CUTOFF, MH, MW, WH

#: Dimensions of the adapted grid; the azimuth of the event and the decay angles are sampled flat.
N_DIM = 7


@dataclass(frozen=True)
class GenerationCuts:
    """MadGraph run-card cuts on the two quarks (``ptj``, ``etaj``, ``drjj``); photons are uncut
    (``cut_decays = False``)."""

    ptj: float = 20.0
    etaj: float = 5.0
    drjj: float = 0.4

    def __post_init__(self) -> None:
        if not (self.ptj > 0 and self.etaj > 0 and self.drjj >= 0):
            raise ValueError(f"generation cuts need ptj > 0, etaj > 0 and drjj >= 0, got {self}")


@dataclass
class Kinematics:
    """Momenta (E, px, py, pz) of one batch and the phase-space weight (Jacobian, flux excluded)."""

    x1: np.ndarray
    x2: np.ndarray
    p1: np.ndarray  # u from beam 1
    p2: np.ndarray  # d from beam 2
    p3: np.ndarray  # outgoing u (from the d line)
    p4: np.ndarray  # outgoing d (from the u line)
    ph: np.ndarray  # Higgs
    a1: np.ndarray  # photons
    a2: np.ndarray
    mass: np.ndarray  # Higgs virtuality sqrt(pH^2)
    jacobian: np.ndarray  # phase space * PDF-x measure * Breit-Wigner sampling factor; 0 outside cuts


def _massless(pt: np.ndarray, y: np.ndarray, phi: np.ndarray) -> np.ndarray:
    return np.stack([pt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(y)], axis=-1)


def _boost_from_rest(p_rest: np.ndarray, parent: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Boost momenta given in the rest frame of ``parent`` (of invariant mass ``mass``) to the lab."""
    beta_gamma = parent[:, 1:] / mass[:, None]
    gamma = parent[:, 0] / mass
    bp = np.einsum("ij,ij->i", beta_gamma, p_rest[:, 1:])
    energy = gamma * p_rest[:, 0] + bp
    factor = bp / (gamma + 1.0) + p_rest[:, 0]
    return np.concatenate([energy[:, None], p_rest[:, 1:] + factor[:, None] * beta_gamma], axis=1)


class PhaseSpace:
    """Maps points of [0, 1)^7 plus flat extra randoms to weighted events."""

    def __init__(self, cuts: GenerationCuts | None = None, sqrt_s: float = 2 * BEAM_ENERGY):
        self.cuts = cuts or GenerationCuts()
        self.sqrt_s = sqrt_s
        self.s = sqrt_s**2
        pt_max = sqrt_s / 2
        # u = 1 / (pT^2 + MW^2) is sampled uniformly.
        self._u_lo = 1.0 / (self.cuts.ptj**2 + MW**2)
        self._u_hi = 1.0 / (pt_max**2 + MW**2)
        # Breit-Wigner in m^2: m^2 = MH^2 + MH WH tan(t), t uniform in [t_lo, t_hi].
        self._t_lo = math.atan(((MH - BW_CUTOFF * WH) ** 2 - MH**2) / (MH * WH))
        self._t_hi = math.atan(((MH + BW_CUTOFF * WH) ** 2 - MH**2) / (MH * WH))
        #: Fraction of the Breit-Wigner inside the cutoff window.
        self.bw_fraction = (self._t_hi - self._t_lo) / math.pi

    def generate(self, x: np.ndarray, flat: np.ndarray) -> Kinematics:
        """``x``: (n, 7) points of the adapted grid; ``flat``: (n, 3) uniforms for phi, cos theta*, phi*."""
        eta = self.cuts.etaj
        u3 = self._u_lo + x[:, 0] * (self._u_hi - self._u_lo)
        u4 = self._u_lo + x[:, 1] * (self._u_hi - self._u_lo)
        pt3 = np.sqrt(1.0 / u3 - MW**2)
        pt4 = np.sqrt(1.0 / u4 - MW**2)
        y3 = eta * (2 * x[:, 2] - 1)
        y4 = eta * (2 * x[:, 3] - 1)
        dphi = 2 * math.pi * x[:, 5]
        t = self._t_lo + x[:, 6] * (self._t_hi - self._t_lo)
        m2 = MH**2 + MH * WH * np.tan(t)
        mass = np.sqrt(m2)
        phi3 = 2 * math.pi * flat[:, 0]

        p3 = _massless(pt3, y3, phi3)
        p4 = _massless(pt4, y4, phi3 + dphi)
        ptx, pty = -(p3[:, 1] + p4[:, 1]), -(p3[:, 2] + p4[:, 2])
        mt_h2 = m2 + ptx**2 + pty**2
        # Light-cone components E +- pz of the jets; the Higgs takes u = mT e^{y_H} and mT^2 / u.
        jets_plus = pt3 * np.exp(y3) + pt4 * np.exp(y4)
        jets_minus = pt3 * np.exp(-y3) + pt4 * np.exp(-y4)
        # x1, x2 <= 1 bound ln u to [ln(mT^2 / (sqrt s - P-)), ln(sqrt s - P+)]. The PDF-weighted integrand
        # peaks near u* = mT sqrt(P+/P-), where x1 x2 ~ (P+ + u)(P- + mT^2/u) is smallest: the lower half of
        # the grid coordinate covers [lower limit, ln u*], the upper half [ln u*, upper limit], so the peak
        # stays at the same coordinate for all jet configurations and every point is kinematically allowed.
        room_plus = self.sqrt_s - jets_plus
        room_minus = self.sqrt_s - jets_minus
        open_ = (room_plus > 0) & (room_minus > 0)
        log_hi = np.log(np.where(open_, room_plus, 1.0))
        log_lo = np.log(mt_h2) - np.log(np.where(open_, room_minus, 1.0))
        open_ &= log_hi > log_lo
        centre = np.clip(0.5 * (np.log(mt_h2) + np.log(jets_plus) - np.log(jets_minus)), log_lo, log_hi)
        lower = x[:, 4] < 0.5
        log_u = np.where(
            lower, log_lo + 2 * x[:, 4] * (centre - log_lo), centre + (2 * x[:, 4] - 1) * (log_hi - centre)
        )
        log_span = np.where(open_, 2 * np.where(lower, centre - log_lo, log_hi - centre), 0.0)  # d ln u / dx
        u_plus = np.exp(np.where(open_, log_u, 0.0))
        u_minus = mt_h2 / u_plus
        ph = np.stack([(u_plus + u_minus) / 2, ptx, pty, (u_plus - u_minus) / 2], axis=-1)
        x1 = np.where(open_, (jets_plus + u_plus) / self.sqrt_s, 0.5)
        x2 = np.where(open_, (jets_minus + u_minus) / self.sqrt_s, 0.5)
        e1 = x1 * self.sqrt_s / 2
        e2 = x2 * self.sqrt_s / 2
        zeros = np.zeros_like(e1)
        p1 = np.stack([e1, zeros, zeros, e1], axis=-1)
        p2 = np.stack([e2, zeros, zeros, -e2], axis=-1)

        # Isotropic H -> gamma gamma in the Higgs rest frame.
        cos_t = 2 * flat[:, 1] - 1
        sin_t = np.sqrt(np.maximum(0.0, 1 - cos_t**2))
        phi_d = 2 * math.pi * flat[:, 2]
        half = mass / 2
        k = np.stack([half, half * sin_t * np.cos(phi_d), half * sin_t * np.sin(phi_d), half * cos_t], axis=-1)
        k_bar = k * np.array([1.0, -1.0, -1.0, -1.0])
        a1 = _boost_from_rest(k, ph, mass)
        a2 = _boost_from_rest(k_bar, ph, mass)

        # d^3p/(2E) = d^2pT dy / 2 for each final-state particle; the x1 x2 delta functions give 2/s.
        two_pi = 2 * math.pi
        d_pt2 = (self._u_lo - self._u_hi) / (u3 * u3) * (self._u_lo - self._u_hi) / (u4 * u4)  # d(pT3^2) d(pT4^2)
        measure = (
            d_pt2
            / 4.0  # pT dpT = d(pT^2) / 2, twice
            * (2 * eta) ** 2
            * log_span  # dy_H = d ln u
            * two_pi  # phi_3
            * two_pi  # Delta phi
        )
        jacobian = measure * (two_pi**4) / (2 * (two_pi**3)) ** 3 * (2.0 / self.s) * self.bw_fraction

        d_y = y3 - y4
        d_phi = np.angle(np.exp(1j * dphi))
        passed = open_ & (d_y**2 + d_phi**2 > self.cuts.drjj**2)
        jacobian = np.where(passed, jacobian, 0.0)
        return Kinematics(x1, x2, p1, p2, p3, p4, ph, a1, a2, mass, jacobian)
