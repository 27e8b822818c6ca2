"""Physics of the generated events: the SM against Pythia 8, the CP structure, MadMiner morphing closure."""

import numpy as np
import pytest
from scipy import stats

from madminer_notebooks.generator.constants import ALPHA_EM, BR_H_AA, MW, SW2
from madminer_notebooks.generator.lhe import read_lhe_arrays
from madminer_notebooks.generator.matrix_element import amplitude_parts
from madminer_notebooks.generator.phase_space import PhaseSpace
from madminer_notebooks.kinematics import jet_observables

PYTHIA_EVENTS = 800_000


def observables_from_file(path):
    return jet_observables(read_lhe_arrays(str(path)).momenta[:, 2:4])


def asymmetry(dphi):
    n = len(dphi)
    a = (np.sum(dphi > 0) - np.sum(dphi < 0)) / n
    return a, np.sqrt((1 - a * a) / n)


@pytest.fixture(scope="module")
def pythia_sm():
    """Pythia's W+W- fusion with this project's electroweak inputs, fixed mu_F = 125 GeV and identity CKM,
    hard process only; events with u from beam 1 and d from beam 2 that pass the generation cuts."""
    import pythia8mc  # a hard dependency (pyproject.toml): missing, the test fails

    pythia = pythia8mc.Pythia("", False)
    settings = [
        "Beams:eCM = 13000.", "HiggsSM:ff2Hff(t:WW) = on", "25:m0 = 125.", "25:mWidth = 0.00407",
        "25:doForceWidth = on", "ProcessLevel:resonanceDecays = off", "PartonLevel:all = off",
        "HadronLevel:all = off", "Check:event = off", "Print:quiet = on", "Random:setSeed = on", "Random:seed = 7",
        f"24:m0 = {MW:.6f}", f"StandardModel:sin2thetaW = {SW2:.6f}", "SigmaProcess:alphaEMorder = -1",
        f"StandardModel:alphaEMmZ = {ALPHA_EM:.12f}", "SigmaProcess:factorScale3VV = 6",
        "SigmaProcess:factorFixScale = 15625.",
    ]  # fmt: skip
    for line in settings:
        assert pythia.readString(line), line
    assert pythia.init()
    kin = []
    for _ in range(PYTHIA_EVENTS):
        assert pythia.next()
        proc = pythia.process
        if proc[3].id() == 2 and proc[4].id() == 1:
            quarks = [proc[i] for i in range(5, proc.size()) if abs(proc[i].id()) < 6]
            kin.append([(q.e(), q.px(), q.py(), q.pz()) for q in quarks])
    kin = np.array(kin)
    pt = np.hypot(kin[..., 1], kin[..., 2])
    eta = np.arcsinh(kin[..., 3] / pt)
    phi = np.arctan2(kin[..., 2], kin[..., 1])
    dphi = np.angle(np.exp(1j * (phi[:, 0] - phi[:, 1])))
    cut = (pt > 20).all(axis=1) & (np.abs(eta) < 5).all(axis=1) & (np.hypot(eta[:, 0] - eta[:, 1], dphi) > 0.4)
    info = pythia.infoPython()
    # Pythia sums |V_CKM|^2 over the final-state flavour of each quark line (its CKM entries cannot be set
    # to the identity); MadGraph's process has a diagonal CKM. Divide by the two row sums.
    v = {k: pythia.settings.parm(f"StandardModel:{k}") for k in ("Vud", "Vus", "Vub", "Vcd", "Vtd")}
    ckm_sums = (v["Vud"] ** 2 + v["Vus"] ** 2 + v["Vub"] ** 2) * (v["Vud"] ** 2 + v["Vcd"] ** 2 + v["Vtd"] ** 2)
    sigma = info.sigmaGen() * 1e9 * cut.sum() / PYTHIA_EVENTS / ckm_sums  # mb -> pb
    error = sigma * np.hypot(np.sqrt((1 - cut.mean()) / cut.sum()), info.sigmaErr() / info.sigmaGen())
    return sigma, error, jet_observables(kin[cut])


def _two_sample_chi2(a, b, bins):
    n1, _ = np.histogram(a, bins)
    n2, _ = np.histogram(b, bins)
    keep = (n1 + n2) > 0
    n1, n2 = n1[keep], n2[keep]
    s1, s2 = n1.sum(), n2.sum()
    chi2 = np.sum((np.sqrt(s2 / s1) * n1 - np.sqrt(s1 / s2) * n2) ** 2 / (n1 + n2))
    return chi2, keep.sum() - 1


def test_sm_production_cross_section_and_shapes_match_pythia(generate, pythia_sm):
    path, summary = generate("sm", 100_000, seed=101)
    # Production cross section: remove BR(H -> aa) and the truncated Breit-Wigner fraction.
    to_production = 1 / (BR_H_AA * PhaseSpace().bw_fraction)
    ours = summary["cross_section_pb"] * to_production
    ours_error = summary["cross_section_error_pb"] * to_production
    ref, ref_error = pythia_sm[:2]
    assert ours == pytest.approx(ref, rel=0.01), (ours, ours_error, ref, ref_error)

    theirs = pythia_sm[2]
    mine = observables_from_file(path)
    binning = {
        "dphi_jj": np.linspace(-np.pi, np.pi, 21),
        "m_jj": np.array([0, 100, 200, 300, 400, 500, 700, 900, 1200, 1600, 2200, 3000, 13000.0]),
        "pt_j1": np.array([20, 40, 60, 80, 100, 125, 150, 200, 250, 350, 500, 6500.0]),
    }
    for name, bins in binning.items():
        chi2, ndf = _two_sample_chi2(mine[name], theirs[name], bins)
        assert stats.chi2.sf(chi2, ndf) > 1e-3, (name, chi2, ndf)

    # The comparison has power: our sample with 5% fewer events below the median m_jj is rejected.
    m = mine["m_jj"]
    keep = np.random.default_rng(0).random(len(m)) < np.where(m > np.median(m), 1.0, 0.95)
    chi2, ndf = _two_sample_chi2(m[keep], theirs["m_jj"], binning["m_jj"])
    assert stats.chi2.sf(chi2, ndf) < 1e-3, (chi2, ndf)


def test_cp_structure_of_the_signed_delta_phi(generate):
    n = 20_000
    results = {b: generate(b, n, seed=31) for b in ("sm", "w", "ww", "neg_ww")}
    a = {b: asymmetry(observables_from_file(path)["dphi_jj"]) for b, (path, _) in results.items()}
    # CP-odd CPWL2 = +-165.2 gives opposite asymmetries of about 0.18; CP-even points give none.
    assert -0.23 < a["ww"][0] < -0.13
    assert 0.13 < a["neg_ww"][0] < 0.23
    assert abs(a["ww"][0] + a["neg_ww"][0]) < 4 * np.hypot(a["ww"][1], a["neg_ww"][1])
    assert abs(a["sm"][0]) < 4 * a["sm"][1]
    assert abs(a["w"][0]) < 4 * a["w"][1]
    # sigma(0, c) = sigma(0, -c): the interference of the CP-odd operator integrates to zero.
    s_plus, s_minus = results["ww"][1], results["neg_ww"][1]
    difference = s_plus["cross_section_pb"] - s_minus["cross_section_pb"]
    assert abs(difference) < 4 * np.hypot(s_plus["cross_section_error_pb"], s_minus["cross_section_error_pb"])


def test_madminer_morphing_reproduces_exact_weights_at_other_theta(generate, setup_file):
    from madminer.utils.interfaces.hdf5 import load_madminer_settings
    from madminer.utils.morphing import PhysicsMorpher

    path, summary = generate("sm", 4000, seed=3)
    settings = load_madminer_settings(str(setup_file), include_nuisance_benchmarks=False)
    parameters, benchmarks, components, matrix = settings[0], settings[1], settings[3], settings[4]
    names = list(benchmarks)
    basis = np.array([[benchmarks[b].values[p] for p in parameters] for b in names])
    ev = read_lhe_arrays(str(path))
    sampled = ev.xwgtup
    per_benchmark = np.array([sampled if b == "sm" else ev.weights[b] for b in names])

    morpher = PhysicsMorpher(parameters_from_madminer=parameters)
    morpher.set_components(components)
    p = ev.momenta
    parts = amplitude_parts(p[:, 0], p[:, 1], p[:, 2], p[:, 3])
    reference = parts.squared(0.0, 0.0)
    for theta in ([3.7, -5.1], [-14.2, 8.8], [0.3, 19.0]):
        morphed = (
            morpher.calculate_morphing_weights(np.array(theta), basis=basis, morphing_matrix=matrix) @ per_benchmark
        )
        exact = sampled * parts.squared(16.52 * theta[0], 16.52 * theta[1]) / reference
        np.testing.assert_allclose(morphed, exact, rtol=1e-6)
