"""Helicity amplitude of u d -> d u H through W+ W- fusion with the EWdim6 H W W vertex.

Only left-handed quark currents couple to the W, so a single helicity configuration contributes and
the amplitude is linear in the two Wilson coefficients:

    A(c) = A_SM + CWL2 * A_W + CPWL2 * A_Wt,

so the squared matrix element at any card point follows from three complex numbers per event.
That is what makes exact weights at every benchmark cheap, and what makes MadMiner's quadratic
morphing exact. Four-vectors are arrays of shape (..., 4) holding (E, px, py, pz).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import G_HWW_CPWL2, G_HWW_CWL2, G_HWW_SM, G_WFF, MW


def left_spinor(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-component left-handed Weyl spinor of a massless momentum, normalised to u^dagger u = 2E.

    It solves (E + p.sigma) u = 0 (helicity -1/2). Of the two equivalent closed forms the one that is
    regular for the momentum's hemisphere is used; the phase difference between them drops out of
    |A|^2 because every spinor enters the amplitude exactly once.
    """
    e, px, py, pz = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
    forward = pz >= 0
    plus = np.sqrt(np.where(forward, e + pz, 1.0))
    minus = np.sqrt(np.where(forward, 1.0, e - pz))
    perp = px + 1j * py
    up = np.where(forward, np.conj(perp) / plus, minus)
    down = np.where(forward, -plus, -perp / minus)
    return up, down


def left_current(out: np.ndarray, inc: np.ndarray) -> tuple[np.ndarray, ...]:
    """J^mu = ubar_L(out) gamma^mu P_L u_L(in) = u_L(out)^dagger sigmabar^mu u_L(in), contravariant,
    as a tuple of four complex arrays (sigmabar^mu = (1, -sigma))."""
    a0, a1 = (np.conj(c) for c in left_spinor(out))
    b0, b1 = left_spinor(inc)
    a0b1, a1b0 = a0 * b1, a1 * b0
    a0b0, a1b1 = a0 * b0, a1 * b1
    return (a0b0 + a1b1, -(a0b1 + a1b0), 1j * (a0b1 - a1b0), a1b1 - a0b0)


def _dot(a: tuple, b: tuple):
    return a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3]


def epsilon_contract(a: tuple, b: tuple, c: tuple, d: tuple):
    """eps^{mu nu rho sigma} a_mu b_nu c_rho d_sigma with eps^{0123} = -1 (the UFO/ALOHA convention).

    Vectors are contravariant tuples of four components. c and d are contracted first into the
    antisymmetric T^{mu nu} = eps^{mu nu rho sigma} c_rho d_sigma, which is cheap for real c, d.
    Lowering flips spatial signs; with [0123] = +1 for the symbol, eps^{mu nu rho sigma} = -[mu nu rho sigma].
    """
    cl = (c[0], -c[1], -c[2], -c[3])
    dl = (d[0], -d[1], -d[2], -d[3])
    al = (a[0], -a[1], -a[2], -a[3])
    bl = (b[0], -b[1], -b[2], -b[3])

    def m(i: int, j: int):  # c_i d_j - c_j d_i
        return cl[i] * dl[j] - cl[j] * dl[i]

    # T^{mu nu} = -[mu nu rho sigma] c_rho d_sigma, summed over the two orderings of (rho, sigma).
    t01 = -m(2, 3)
    t02 = m(1, 3)
    t03 = -m(1, 2)
    t12 = -m(0, 3)
    t13 = m(0, 2)
    t23 = -m(0, 1)

    def w(i: int, j: int):  # a_i b_j - a_j b_i
        return al[i] * bl[j] - al[j] * bl[i]

    return t01 * w(0, 1) + t02 * w(0, 2) + t03 * w(0, 3) + t12 * w(1, 2) + t13 * w(1, 3) + t23 * w(2, 3)


@dataclass(frozen=True)
class AmplitudeParts:
    """The three coefficient amplitudes per event (common coupling and propagator factors included)."""

    sm: np.ndarray
    cwl2: np.ndarray
    cpwl2: np.ndarray

    def select(self, idx: np.ndarray) -> AmplitudeParts:
        """The parts of a subset of events (e.g. the accepted ones)."""
        return AmplitudeParts(self.sm[idx], self.cwl2[idx], self.cpwl2[idx])

    def squared(self, cwl2: float | np.ndarray, cpwl2: float | np.ndarray) -> np.ndarray:
        """Spin- and colour-averaged |M|^2 at card values (TeV^-2).

        Average over 4 helicity and 9 colour states of the initial quarks, colour sum 9: factor 1/4.
        """
        amp = self.sm + cwl2 * self.cwl2 + cpwl2 * self.cpwl2
        return 0.25 * (amp.real**2 + amp.imag**2)


def amplitude_parts(p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, p4: np.ndarray) -> AmplitudeParts:
    """Amplitude pieces for u(p1) d(p2) -> u(p3) d(p4) H (p1, p2 incoming; p3, p4, pH = p1+p2-p3-p4 outgoing).

    The u line u(p1) -> d(p4) emits W+ (q1 = p1 - p4); the d line d(p2) -> u(p3) emits W- (q2 = p2 - p3).
    In the vertex (W-, mu, P1), (W+, nu, P2), (H, P3) all momenta are incoming: P1 = q2, P2 = q1,
    P3 = -(q1 + q2). Massless currents are conserved (J_u.q1 = J_d.q2 = 0), so the q^mu q^nu part of
    the W propagators and the J_d.P1, J_u.P2 terms drop.
    """
    j_u = left_current(p4, p1)  # couples to W+ (index nu)
    j_d = left_current(p3, p2)  # couples to W- (index mu)
    q1 = tuple(p1[:, i] - p4[:, i] for i in range(4))
    q2 = tuple(p2[:, i] - p3[:, i] for i in range(4))
    big_p3 = tuple(-(a + b) for a, b in zip(q1, q2, strict=True))
    q1q1, q2q2 = _dot(q1, q1), _dot(q2, q2)

    jj = _dot(j_d, j_u)
    # CP-even: P3^mu P1^nu + P2^mu P3^nu - (P1.P3 + P2.P3) g^{mu nu}, with P1 = q2, P2 = q1.
    x_w = (
        _dot(j_d, big_p3) * _dot(j_u, q2)
        + _dot(j_d, q1) * _dot(j_u, big_p3)
        - (_dot(q2, big_p3) + _dot(q1, big_p3)) * jj
    )
    # CP-odd: eps^{mu nu a b} (P1_b - P2_b) P3_a
    x_wt = epsilon_contract(j_d, j_u, big_p3, tuple(a - b for a, b in zip(q2, q1, strict=True)))

    prop = G_WFF**2 / ((q1q1 - MW**2) * (q2q2 - MW**2))
    return AmplitudeParts(sm=prop * G_HWW_SM * jj, cwl2=prop * G_HWW_CWL2 * x_w, cpwl2=prop * G_HWW_CPWL2 * x_wt)
