"""The MadMiner compatibility fixes: behaviour where MadMiner breaks, identical output where it is slow."""

import copy
from pathlib import Path

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


def test_madminer_histogram_fit_gives_the_normalised_histogram_density():
    """MadMiner's Histo (which calls histogramdd with ``normed``) fits and evaluates, and its density is the
    one written out here: the events between the 0.1% and 99.9% quantiles counted in its six bins,
    normalised to one, divided by the bin widths (the first at most twice the second's, as MadMiner caps
    it; its cap of the last one never acts); events outside go to the outer bins."""
    compat.apply()
    from madminer.utils.histo import Histo

    x = np.random.default_rng(1).normal(size=(1000, 1))
    histo = Histo(x, bins=(6,), epsilon=0.0)
    (edges,) = histo.edges
    assert len(edges) == 7
    counts, _ = np.histogram(x[:, 0], bins=edges)
    assert 990 < counts.sum() < 1000  # the tails beyond the quantiles are not counted
    widths = np.diff(edges)
    widths[0] = min(widths[0], 2 * widths[1])  # MadMiner's cap of the last bin compares its edge with a larger one
    density = counts / counts.sum() / widths
    expected = np.log(density[np.clip(np.searchsorted(edges, x[:, 0], side="right") - 1, 0, 5)])
    np.testing.assert_allclose(histo.log_likelihood(x), expected, rtol=1e-12)


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


DELPHES = Path(__file__).parent / "data" / "delphes"  # made by tests/data/make_delphes_fixture.py


def _four_momenta(pt, eta, phi, e):
    pt, eta, phi, e = (np.asarray(a, dtype=np.float64) for a in (pt, eta, phi, e))
    return np.stack([e, pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1)


def test_stock_uproot3_cannot_read_delphes_files_on_numpy_2():
    """Why fix 3 exists: MadMiner's own Delphes reading breaks before reading a single event."""
    import uproot3

    with pytest.raises((OverflowError, ValueError)):
        uproot3.open(str(DELPHES / "events.root"))["Delphes"].array("Jet.PT")


def test_delphes_reader_observables_and_weights_match_the_file(setup_file, tmp_path):
    """DelphesReader on a file with Delphes's branch layout: every observable equals the value computed
    from the numbers written into the file, and the weights are the LHE file's, event by event."""
    import shutil

    from madminer.delphes import DelphesReader
    from madminer.lhe import LHEReader

    compat.apply()
    lhe = tmp_path / "events.lhe.gz"  # MadMiner unzips next to the file: keep tests/data clean
    shutil.copy(DELPHES / "events.lhe.gz", lhe)
    reader = DelphesReader(str(setup_file))
    reader.add_sample(None, "sm", delphes_filename=str(DELPHES / "events.root"), lhe_filename=str(lhe), weights="lhe")
    reader.add_observable("pt_j1", "j[0].pt", required=True)
    reader.add_observable("eta_j2", "j[1].eta", required=True)
    reader.add_observable("dphi_jj", "j[0].deltaphi(j[1]) * (1. if j[0].eta > j[1].eta else -1.)", required=True)
    reader.add_observable("m_aa", "(a[0] + a[1]).m", required=True)
    reader.add_observable("e_a1", "a[0].e", required=True)
    reader.analyse_delphes_samples()

    truth = np.load(DELPHES / "truth.npz")
    photons = _four_momenta(*(truth[f"photon_{v}"] for v in ("pt", "eta", "phi", "e"))).sum(1)
    m_aa = np.sqrt(photons[:, 0] ** 2 - np.sum(photons[:, 1:] ** 2, axis=1))
    dphi = np.angle(np.exp(1j * (truth["jet_phi"][:, 0] - truth["jet_phi"][:, 1])))
    dphi = dphi * np.where(truth["jet_eta"][:, 0] > truth["jet_eta"][:, 1], 1.0, -1.0)
    obs = reader.observations
    assert len(obs["pt_j1"]) == len(truth["jet_pt"]) == 120
    np.testing.assert_allclose(obs["pt_j1"], truth["jet_pt"][:, 0], rtol=1e-6)
    np.testing.assert_allclose(obs["eta_j2"], truth["jet_eta"][:, 1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.abs(obs["dphi_jj"]), np.abs(dphi), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.sign(obs["dphi_jj"]), np.sign(dphi))
    # MadMiner builds the photons from the file's float32 values and keeps float32 arithmetic: the mass of two
    # hard, nearly back-to-back photons loses about four digits to cancellation
    np.testing.assert_allclose(obs["m_aa"], m_aa, rtol=2e-4)
    np.testing.assert_allclose(obs["e_a1"], truth["photon_e"][:, 0], rtol=1e-6)

    parton = LHEReader(str(setup_file))  # the same LHE file read by MadMiner's LHE path: same weights
    parton.add_sample(str(lhe), sampled_from_benchmark="sm")
    parton.add_observable("pt_j1", "j[0].pt", required=True)
    parton.analyse_samples()
    assert reader.weights.keys() == parton.weights.keys()
    for name in reader.weights:
        np.testing.assert_array_equal(reader.weights[name], parton.weights[name])


def test_a_missing_delphes_branch_names_the_file_and_branch():
    compat.apply()
    import madminer.utils.interfaces.delphes_root as delphes_root

    tree = delphes_root.uproot3.open(str(DELPHES / "events.root"))["Delphes"]
    assert len(tree.array("Event")) == 120
    with pytest.raises(KeyError, match=r"events\.root.*'GenJet\.PT'"):
        tree.array("GenJet.PT")


def _stock(module, name: str, original):
    """A context in which ``module.name`` is MadMiner's own ``original`` again."""
    import contextlib

    @contextlib.contextmanager
    def swapped():
        patched = getattr(module, name)
        setattr(module, name, original)
        try:
            yield patched
        finally:
            setattr(module, name, patched)

    return swapped()


@pytest.fixture(params=["numpy tanh", "2 sigmoid(2x) - 1"])
def tanh(request, monkeypatch):
    """Each tanh the network evaluation may choose (whichever is faster on the machine that runs it)."""
    from madminer_notebooks import network_eval

    monkeypatch.setattr(network_eval, "fastest_tanh", lambda: network_eval.TANH_CANDIDATES[request.param])
    return request.param


def test_both_tanh_candidates_are_tanh_to_float32_rounding():
    """Over the range a network's pre-activations take (and beyond, where tanh saturates): within 2e-7 of
    tanh in double precision; ``fastest_tanh`` picks one of them."""
    import torch

    from madminer_notebooks import network_eval

    x = np.linspace(-30.0, 30.0, 600_001).astype(np.float32)
    exact = np.tanh(x.astype(np.float64))
    for name, candidate in network_eval.TANH_CANDIDATES.items():
        got = candidate(torch.from_numpy(x.copy())).numpy()
        assert np.max(np.abs(got - exact)) < 2e-7, name
        assert got[0] == -1.0 and got[-1] == 1.0, name
    assert network_eval.fastest_tanh() in network_eval.TANH_CANDIDATES.values()


def test_ratio_evaluation_agrees_with_madminers_own(tanh):
    """Fixes 4 and 7: the plain ratio paths (one row per point, and every event at every point in blocks with
    the first layer split and either tanh) give MadMiner's log r to float32 rounding (its inputs built row by
    row, its torch.tanh, one call per point): about 1e-7 here; 1e-5 would still fail on any wrong weight, a
    skipped activation or a swapped theta/x column (those move log r by O(0.1))."""
    import madminer.ml.parameterized_ratio as module
    import torch
    from madminer.ml import ParameterizedRatioEstimator
    from madminer.utils.ml import eval as ml_eval

    compat.apply()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, theta = rng.normal(size=(300, 3)), rng.normal(size=(300, 2))
    estimator = ParameterizedRatioEstimator(n_hidden=(8, 8), activation="tanh")
    estimator.train(method="alice", x=x, theta=theta, y=(rng.random(300) < 0.5).astype(float)[:, None],
                    r_xz=np.exp(rng.normal(size=(300, 1))), n_epochs=1, n_workers=0, verbose="none")  # fmt: skip
    thetas = rng.normal(size=(4, 2))
    fast, t_none = estimator.evaluate_log_likelihood_ratio(x=x, theta=thetas, test_all_combinations=True)
    rows, _ = estimator.evaluate_log_likelihood_ratio(x=x, theta=theta, test_all_combinations=False)
    cls = ParameterizedRatioEstimator
    with (
        _stock(cls, "evaluate_log_likelihood_ratio", cls.evaluate_log_likelihood_ratio.__wrapped__),
        _stock(module, "evaluate_ratio_model", ml_eval.evaluate_ratio_model) as patched,
    ):
        slow, t_slow = estimator.evaluate_log_likelihood_ratio(x=x, theta=thetas, test_all_combinations=True)
        slow_rows, _ = estimator.evaluate_log_likelihood_ratio(x=x, theta=theta, test_all_combinations=False)
    assert patched is not ml_eval.evaluate_ratio_model
    assert fast.shape == slow.shape == (4, 300) and fast.dtype == slow.dtype
    assert np.std(slow) > 0.01  # a trained, non-constant network: the comparison means something
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-5)
    np.testing.assert_allclose(rows, slow_rows, rtol=0, atol=1e-5)
    assert t_none.shape == t_slow.shape == (4,) and all(t is None for t in t_none)
    # the score path still goes through MadMiner's function
    _, score = estimator.evaluate_log_likelihood_ratio(x=x, theta=thetas, evaluate_score=True)
    assert score.shape == (4, 300, 2)


@pytest.mark.parametrize("block_rows", [21, 4])
def test_the_block_evaluation_gives_every_point_and_event_its_own_value(monkeypatch, block_rows, tanh):
    """Blocks of several points (21 rows: 3 points of 7 events, the last block 1 point) and blocks of part of
    the events (4 rows: 4 + 3 events of one point): each (point, event) gets the network's own value."""
    import torch
    from madminer.utils.ml.models.ratio import DenseSingleParameterizedRatioModel

    from madminer_notebooks import network_eval

    torch.manual_seed(1)
    model = DenseSingleParameterizedRatioModel(n_observables=3, n_parameters=2, n_hidden=(6, 5)).float()
    rng = np.random.default_rng(1)
    x, thetas = rng.normal(size=(7, 3)), rng.normal(size=(10, 2))
    monkeypatch.setattr(network_eval, "BLOCK_ROWS", block_rows)
    layers = network_eval.plain_layers(model, DenseSingleParameterizedRatioModel)
    blocks = network_eval.ratio_all_combinations(model, layers, thetas, x)
    with torch.no_grad():
        one_by_one = np.array([
            model(torch.tensor(np.tile(t, (7, 1)), dtype=torch.float32), torch.tensor(x, dtype=torch.float32),
                  track_score=False)[1].numpy()[:, 0]
            for t in thetas
        ])  # fmt: skip
    np.testing.assert_allclose(blocks, one_by_one, rtol=0, atol=1e-6)


def test_models_whose_forward_pass_differs_are_left_to_madminer():
    """The morphing-aware ratio models have linear layers too but compute something else from them; a
    dropout layer changes the stack: neither takes the fast path."""
    from madminer.utils.ml.models.ratio import DenseMorphingAwareRatioModel, DenseSingleParameterizedRatioModel

    from madminer_notebooks import network_eval

    morphing = DenseMorphingAwareRatioModel(
        n_observables=3, n_parameters=2, n_hidden=(4,), components=np.eye(2), morphing_matrix=np.eye(2)
    )
    assert network_eval.plain_layers(morphing, DenseSingleParameterizedRatioModel) is None
    dropout = DenseSingleParameterizedRatioModel(n_observables=3, n_parameters=2, n_hidden=(4,), dropout_prob=0.1)
    assert network_eval.plain_layers(dropout, DenseSingleParameterizedRatioModel) is None
    plain = DenseSingleParameterizedRatioModel(n_observables=3, n_parameters=2, n_hidden=(4,))
    assert len(network_eval.plain_layers(plain, DenseSingleParameterizedRatioModel)) == 2


def test_score_evaluation_agrees_with_madminers_own(tanh):
    """Fix 4, SALLY's side: evaluate_local_score_model on one array with either tanh; MadMiner's scores to
    float32 rounding."""
    import madminer.ml.score as module
    import torch
    from madminer.ml import ScoreEstimator
    from madminer.utils.ml import eval as ml_eval

    compat.apply()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    estimator = ScoreEstimator(n_hidden=(8, 8), activation="tanh")
    estimator.train(method="sally", x=x, t_xz=rng.normal(size=(300, 2)), n_epochs=1, n_workers=0, verbose="none")
    fast = estimator.evaluate_score(x=x)
    with _stock(module, "evaluate_local_score_model", ml_eval.evaluate_local_score_model) as patched:
        slow = estimator.evaluate_score(x=x)
    assert patched is not ml_eval.evaluate_local_score_model
    assert fast.shape == (300, 2) and np.std(slow) > 0.01
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-5)


def test_the_event_table_is_read_once_per_file_version_and_each_caller_gets_its_own_weights(combined, tmp_path):
    """MadMiner reads the whole event table for each request; the cache answers repeats from memory, gives
    each caller its own weights (MadMiner scales them in place), shares the observations read-only (a write
    raises) and reads a rewritten file again."""
    import shutil

    compat.apply()
    import madminer.utils.interfaces.hdf5 as hdf5

    path = tmp_path / "events.h5"
    shutil.copyfile(combined, path)
    original = hdf5._load_samples._original
    first = hdf5._load_samples(str(path))
    for a, b in zip(first, original(str(path)), strict=True):
        np.testing.assert_array_equal(a, b)
    first[1][:] *= 2.0  # what SampleAugmenter does to its batch of weights
    with pytest.raises(ValueError, match="read-only"):
        first[0][0, 0] = 1.0
    second = hdf5._load_samples(str(path))
    for a, b in zip(second, original(str(path)), strict=True):
        np.testing.assert_array_equal(a, b)
    import h5py

    with h5py.File(path, "r+") as f:  # a new version of the file: read again
        f["samples/weights"][0, 0] = 123.0
    assert hdf5._load_samples(str(path))[1][0, 0] == 123.0


@pytest.mark.parametrize("limit", [compat.EVENT_BATCH_CACHE_BYTES, 1])
def test_sampling_from_kept_event_batches_is_madminers_to_the_bit(combined, tmp_path, monkeypatch, limit):
    """Fix 8: SampleAugmenter's samples (theta draws, events, joint ratio and score) with the passes over the
    events kept in memory are those of MadMiner's own event loader, bit for bit; so are they when a pass is
    too large to keep (``limit`` of 1 byte: every pass streams)."""
    compat.apply()
    from madminer.analysis.dataanalyzer import DataAnalyzer
    from madminer.sampling import SampleAugmenter, benchmark, random_morphing_points

    kept = DataAnalyzer.__dict__["event_loader"]
    assert isinstance(kept, compat._EventBatchCache)
    monkeypatch.setattr(kept, "_limit", limit)
    monkeypatch.setattr(kept, "_passes", {})

    def sample(folder):
        np.random.seed(5)
        sampler = SampleAugmenter(str(combined))
        sampler.sample_train_ratio(theta0=random_morphing_points(12, [("gaussian", 0.0, 0.5)] * 2),
                                   theta1=benchmark("sm"), n_samples=3000, folder=str(folder), filename="r",
                                   n_processes=1)  # fmt: skip
        sampler.sample_train_local(theta=benchmark("sm"), n_samples=2000, folder=str(folder), filename="l",
                                   n_processes=1)  # fmt: skip
        return {f.name: np.load(f) for f in sorted(folder.iterdir())}

    (tmp_path / "fast").mkdir()
    (tmp_path / "stock").mkdir()
    fast = sample(tmp_path / "fast")
    assert bool(kept._passes) == (limit > 1)  # the passes were kept, or, over the limit, not
    monkeypatch.setattr(DataAnalyzer, "event_loader", kept._original)
    stock = sample(tmp_path / "stock")
    assert sorted(fast) == sorted(stock) and len(fast) >= 8  # x, theta0, theta1, y, r_xz, t_xz of both sets
    for name in stock:
        np.testing.assert_array_equal(fast[name], stock[name], err_msg=name)
    assert np.std(fast["theta0_r.npy"]) > 0.1  # really drawn at many points


def test_each_pass_over_kept_event_batches_gets_its_own_weights(combined):
    """MadMiner scales a pass's weights in place: a later pass must not see that; the observations it only
    reads are shared and read-only."""
    compat.apply()
    from madminer.analysis.dataanalyzer import DataAnalyzer

    analyzer = DataAnalyzer(str(combined))
    reference = [w.copy() for _, w in DataAnalyzer.event_loader._original(analyzer, generated_close_to=[10.0, 0.0])]
    for point in ([10.0, 0.0], [9.0, 0.5], [9.5, -0.5]):  # the same closest benchmark: MadMiner's pass, then kept
        batches = list(analyzer.event_loader(generated_close_to=np.array(point)))
        for (_, weights), expected in zip(batches, reference, strict=True):
            np.testing.assert_array_equal(weights, expected)
            weights *= 3.0  # what SampleAugmenter does with its correction factor
    with pytest.raises(ValueError, match="read-only"):
        batches[0][0][0, 0] = 1.0


def test_a_score_is_remembered_by_the_content_of_the_network_and_the_events(monkeypatch):
    """Fix 4's memo: a second ask for the same network (even freshly loaded: another object with the same
    weights) on the same events runs no network; other weights, other events or another tanh run it
    again, and each caller may change the score it got without changing the next one's."""
    import torch
    from madminer.ml import ScoreEstimator

    from madminer_notebooks import network_eval

    compat.apply()
    runs = []
    original = network_eval.local_score
    monkeypatch.setattr(network_eval, "local_score", lambda *a: runs.append(1) or original(*a))
    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    estimator = ScoreEstimator(n_hidden=(8,), activation="tanh")
    estimator.train(method="sally", x=x, t_xz=rng.normal(size=(200, 2)), n_epochs=1, n_workers=0, verbose="none")
    first = estimator.evaluate_score(x=x)
    twin = copy.deepcopy(estimator)  # what load_estimator gives: the same weights in other tensors
    second = twin.evaluate_score(x=x)
    assert len(runs) == 1
    np.testing.assert_array_equal(first, second)
    second[:] = 0.0  # the caller's own copy
    np.testing.assert_array_equal(twin.evaluate_score(x=x), first)
    assert len(runs) == 1

    other_x = x.copy()
    other_x[17, 1] += 1e-3
    assert not np.array_equal(estimator.evaluate_score(x=other_x)[17], first[17])
    assert len(runs) == 2
    with torch.no_grad():
        twin.model.layers[-1].bias.add_(0.5)  # a retrained network, same object
    np.testing.assert_allclose(twin.evaluate_score(x=x), first + 0.5, atol=1e-6)
    assert len(runs) == 3
    chosen = network_eval.fastest_tanh()
    other = next(f for f in network_eval.TANH_CANDIDATES.values() if f is not chosen)
    monkeypatch.setattr(network_eval, "fastest_tanh", lambda: other)
    np.testing.assert_allclose(estimator.evaluate_score(x=x), first, atol=1e-5)
    assert len(runs) == 4
