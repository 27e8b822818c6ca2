"""The MadMiner compatibility fixes: behaviour where MadMiner breaks, identical output where it is slow."""

import numpy as np
import pytest

from madminer_notebooks import compat


def test_histogramdd_accepts_the_removed_normed_keyword():
    compat.apply()
    import madminer.likelihood.histo as likelihood_histo
    import madminer.utils.histo as utils_histo

    data = np.random.default_rng(0).normal(size=(500, 2))
    expected, _ = np.histogramdd(data, bins=5, range=[(-3, 3), (-3, 3)], density=False)
    for module in (utils_histo, likelihood_histo):
        got, _ = module.np.histogramdd(data, bins=5, range=[(-3, 3), (-3, 3)], normed=False)
        np.testing.assert_array_equal(got, expected)
        dens, _ = module.np.histogramdd(data, bins=5, range=[(-3, 3), (-3, 3)], normed=True)
        assert np.sum(dens) * (6 / 5) ** 2 == pytest.approx(1.0)
    with pytest.raises(TypeError):
        np.histogramdd(data, normed=False)  # the real numpy stays untouched


def test_madminer_histogram_fit_runs():
    compat.apply()
    from madminer.utils.histo import Histo

    x = np.random.default_rng(1).normal(size=(1000, 1))
    histo = Histo(x, bins=(6,), epsilon=1e-9)
    assert np.isfinite(histo.log_likelihood(x)).all()


def test_cached_particle_lookups_return_the_same_values():
    compat.apply()
    import madminer.utils.interfaces.lhe as lhe
    from particle import Particle

    assert lhe.get_elementary_pdg_ids() == [
        int(p.pdgid)
        for p in Particle.findall(
            lambda p: p.pdgid.is_sm_quark or p.pdgid.is_sm_lepton or p.pdgid.is_sm_gauge_boson_or_higgs
        )
    ]

    def neutrinos(p):
        return p.pdgid.is_sm_lepton and p.charge == 0

    first = lhe.Particle.findall(neutrinos)
    assert [int(p.pdgid) for p in first] == [int(p.pdgid) for p in Particle.findall(neutrinos)]
    assert lhe.Particle.findall(neutrinos) is not first  # callers get their own list


def _read(setup_file, path):
    from madminer.lhe import LHEReader

    reader = LHEReader(str(setup_file))
    reader.add_sample(str(path), sampled_from_benchmark="ww")
    reader.add_observable("pt_j1", "j[0].pt", required=True)
    reader.add_observable("dphi", "j[0].deltaphi(j[1])", required=True)
    reader.analyse_samples()
    return reader.observations, reader.weights


def test_lhe_reading_is_identical_with_and_without_the_fix(generate, setup_file, tmp_path, monkeypatch):
    import shutil

    import madminer.utils.interfaces.lhe as lhe

    compat.apply()
    path, _ = generate("ww", 300, seed=4)
    stock_copy, fixed_copy = tmp_path / "a.lhe.gz", tmp_path / "b.lhe.gz"  # MadMiner unzips next to the file
    shutil.copy(path, stock_copy)
    shutil.copy(path, fixed_copy)
    fixed = _read(setup_file, fixed_copy)
    with monkeypatch.context() as m:  # the stock look-ups, for this read only
        m.setattr(lhe, "Particle", lhe.Particle._cls)
        m.setattr(lhe, "get_elementary_pdg_ids", lhe.get_elementary_pdg_ids.__wrapped__)
        stock = _read(setup_file, stock_copy)
    for ours, theirs in zip(fixed, stock, strict=True):
        assert ours.keys() == theirs.keys()
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key])
