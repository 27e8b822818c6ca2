"""The helicity amplitude: Lorentz invariance, the SM closed form, and an independent Dirac-trace
evaluation of the full EWdim6 squared matrix element built from the vertex of the physics notes."""

import itertools

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from madminer_notebooks.generator.constants import G_HWW_CPWL2, G_HWW_CWL2, G_HWW_SM, G_WFF, MW
from madminer_notebooks.generator.matrix_element import amplitude_parts
from madminer_notebooks.generator.phase_space import N_DIM, PhaseSpace

CARD_POINTS = [(0.0, 0.0), (165.2, 0.0), (0.0, 165.2), (-40.0, 73.0), (280.7, -296.2)]


@pytest.fixture(scope="module")
def momenta():
    rng = np.random.default_rng(11)
    kin = PhaseSpace().generate(rng.random((400, N_DIM)), rng.random((400, 3)))
    ok = kin.jacobian > 0
    return [p[ok][:40] for p in (kin.p1, kin.p2, kin.p3, kin.p4)]


def _dot(a, b):
    return a[..., 0] * b[..., 0] - np.sum(a[..., 1:] * b[..., 1:], axis=-1)


def _boost(p, beta):
    beta = np.asarray(beta)
    b2 = beta @ beta
    gamma = 1 / np.sqrt(1 - b2)
    bp = p[:, 1:] @ beta
    energy = gamma * (p[:, 0] + bp)
    space = p[:, 1:] + ((gamma - 1) * bp / b2 + gamma * p[:, 0])[:, None] * beta
    return np.column_stack([energy, space])


@pytest.mark.parametrize("card", CARD_POINTS)
def test_squared_amplitude_is_lorentz_invariant(momenta, card):
    rotation = Rotation.from_euler("zyx", [0.7, -1.9, 2.4]).as_matrix()

    def transform(p):
        q = _boost(p, [0.31, -0.52, 0.6])
        return np.column_stack([q[:, 0], q[:, 1:] @ rotation.T])

    before = amplitude_parts(*momenta).squared(*card)
    after = amplitude_parts(*(transform(p) for p in momenta)).squared(*card)
    np.testing.assert_allclose(after, before, rtol=1e-9)


def test_sm_part_equals_closed_form(momenta):
    p1, p2, p3, p4 = momenta
    props = (_dot(p1 - p4, p1 - p4) - MW**2) * (_dot(p2 - p3, p2 - p3) - MW**2)
    # Sum over spins of |J_d . J_u|^2 for left-handed currents is 16 (p1.p2)(p3.p4); average 1/4.
    closed = 16 * _dot(p1, p2) * _dot(p3, p4) * (G_WFF**2 * G_HWW_SM / props) ** 2 / 4
    np.testing.assert_allclose(amplitude_parts(*momenta).squared(0.0, 0.0), closed, rtol=1e-11)


def test_squared_amplitude_is_exactly_quadratic_in_card_values(momenta):
    parts = amplitude_parts(*momenta)
    basis = [(0, 0), (1, 0), (0, 1), (2, 0), (0, 2), (1, 1)]

    def monomials(cw, cp):
        return np.array([1.0, cw, cp, cw * cw, cp * cp, cw * cp])

    design = np.array([monomials(*c) for c in basis])
    coefficients = np.linalg.solve(design, np.array([parts.squared(*c) for c in basis]))
    for card in CARD_POINTS:
        np.testing.assert_allclose(monomials(*card) @ coefficients, parts.squared(*card), rtol=1e-8)


# --- an independent implementation: explicit gamma matrices and traces ---------------------------------

_I2, _Z2 = np.eye(2), np.zeros((2, 2))
_SIGMA = [np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.array([[1, 0], [0, -1]])]
# Chiral representation: gamma^0 = [[0, 1], [1, 0]], gamma^i = [[0, sigma^i], [-sigma^i, 0]], gamma5 = diag(-1, 1).
GAMMA = [np.block([[_Z2, _I2], [_I2, _Z2]])] + [np.block([[_Z2, s], [-s, _Z2]]) for s in _SIGMA]
GAMMA5 = np.block([[-_I2, _Z2], [_Z2, _I2]])
P_L, P_R = (np.eye(4) - GAMMA5) / 2, (np.eye(4) + GAMMA5) / 2
METRIC = np.diag([1.0, -1.0, -1.0, -1.0])


def _slash(p):
    return sum(METRIC[m, m] * p[m] * GAMMA[m] for m in range(4))


def _levi_civita_upper():
    """eps^{mu nu rho sigma} with eps^{0123} = -1."""
    eps = np.zeros((4, 4, 4, 4))
    for perm in itertools.permutations(range(4)):
        inversions = sum(perm[i] > perm[j] for i in range(4) for j in range(i + 1, 4))
        eps[perm] = -((-1) ** inversions)
    return eps


EPS = _levi_civita_upper()


def _trace_squared(p1, p2, p3, p4, cwl2, cpwl2):
    """(1/4) sum over spins |M|^2 with M = C J_d^mu J_u^nu V_{mu nu}, evaluated with traces."""
    q1, q2 = p1 - p4, p2 - p3
    big_p1, big_p2, big_p3 = q2, q1, -(q1 + q2)
    low = METRIC @ big_p1, METRIC @ big_p2, METRIC @ big_p3
    g_up = METRIC  # g^{mu nu} has the same entries as g_{mu nu}
    v_up = (
        G_HWW_SM * g_up
        + G_HWW_CWL2
        * cwl2
        * (np.outer(big_p3, big_p1) + np.outer(big_p2, big_p3) - (_dot(big_p1, big_p3) + _dot(big_p2, big_p3)) * g_up)
        + G_HWW_CPWL2 * cpwl2 * np.einsum("mnab,b,a->mn", EPS, low[0] - low[1], low[2])
    )
    v_low = METRIC @ v_up @ METRIC

    # L^{mu rho} = sum_spins J^mu J^rho* = Tr[pslash_out gamma^mu P_L pslash_in P_R gamma^rho]
    def lepton_tensor(p_out, p_in):
        a, b = _slash(p_out), _slash(p_in)
        return np.array([[np.trace(a @ GAMMA[m] @ P_L @ b @ P_R @ GAMMA[r]) for r in range(4)] for m in range(4)])

    l_d, l_u = lepton_tensor(p3, p2), lepton_tensor(p4, p1)
    total = np.einsum("mn,rs,mr,ns->", v_low, np.conj(v_low), l_d, l_u)
    coupling = G_WFF**2 / ((_dot(q1, q1) - MW**2) * (_dot(q2, q2) - MW**2))
    assert abs(total.imag) < 1e-9 * abs(total.real)
    return 0.25 * coupling**2 * total.real


@pytest.mark.parametrize("card", CARD_POINTS)
def test_helicity_amplitude_equals_trace_evaluation(momenta, card):
    ours = amplitude_parts(*momenta).squared(*card)
    reference = np.array([_trace_squared(*(p[i] for p in momenta), *card) for i in range(len(ours))])
    np.testing.assert_allclose(ours, reference, rtol=1e-9)
