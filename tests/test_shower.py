"""Shower-level analysis: Pythia 8 carries the LHE weights untouched, the anti-kT jets are the known ones on
hand-made configurations and Pythia's own SlowJet's on showered events, the detector smears and loses
objects as parametrised, and the CP-odd asymmetry survives the shower, diluted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import MADGRAPH_SM_PB, assert_figure
from tiny import write_params

from madminer_notebooks import compat
from madminer_notebooks.analysis import ColumnarLHEReader
from madminer_notebooks.analysis.lhe_columns import iter_chunks
from madminer_notebooks.params import ParamsError, load_params
from madminer_notebooks.shower import ShowerLHEReader, ShowerSettings, analysis_level
from madminer_notebooks.shower import detector as det
from madminer_notebooks.shower.jets import antikt
from madminer_notebooks.shower.pythia import pythia_settings, shower_file

ROOT = Path(__file__).resolve().parents[1]
OTHERS = ("w", "neg_w", "ww", "neg_ww")


@pytest.fixture(scope="module")
def lhe(generate):
    """Builtin-generator files: 1500 SM events and 6000 events sampled at the CP-odd benchmark ww."""
    return {"sm": generate("sm", 1500, seed=11)[0], "ww": generate("ww", 6000, seed=12)[0]}


def first_outgoing_pz(path: Path, benchmark: str):
    for chunk in iter_chunks(path, benchmark, 1 << 18):
        yield chunk.pz[np.arange(chunk.n), np.argmax(chunk.present, axis=1)]


def test_the_shower_carries_every_benchmark_weight_untouched(lhe):
    path = lhe["sm"]
    ours = {name: [] for name in OTHERS}
    kept = []
    chunks = list(iter_chunks(path, "sm", 1 << 18))
    for chunk, showered in zip(chunks, shower_file(path, first_outgoing_pz(path, "sm"), seed=3, mpi=True,
                                                   weight_names=OTHERS), strict=True):  # fmt: skip
        rows = showered.index - (chunk.first_event - 1)
        kept.append(showered.index)
        for name in OTHERS:
            ours[name].append(chunk.weights[name][rows])
            # Pythia's own reading of the event's weight is the file's, for the event it was matched to (to
            # the last bit or one ulp off: nextBatch hands the weights over through a product)
            np.testing.assert_allclose(showered.pythia_weights[name], chunk.weights[name][rows], rtol=1e-15, atol=0)
        assert np.all(showered.counts > 10) and np.median(showered.counts) > 100  # hadronised, not 4 partons
    index = np.concatenate(kept)
    assert np.all(np.diff(index) > 0) and len(index) >= 0.99 * 1500


def test_the_batch_read_out_is_pythias_event_record(lhe):
    """The final-state particles read out of ``nextBatch``'s arrays are those of Pythia's own event record,
    walked particle by particle, on the same events (same settings and seed)."""
    import pythia8mc

    path = lhe["sm"]
    pythia = pythia8mc.Pythia("", False)
    for line in pythia_settings(path, 11, True):
        pythia.readString(line)
    pythia.init()
    showered = shower_file(path, first_outgoing_pz(path, "sm"), seed=11, mpi=True)
    first = next(showered)  # the first chunk of the file's events
    showered.close()
    assert len(first.index) > 100 and first.index.tolist() == list(range(len(first.index)))
    walked = []
    for _ in first.index:
        assert pythia.next()
        walked.append([(p.px(), p.py(), p.pz(), p.e(), p.id()) for p in pythia.event if p.isFinal()])
    np.testing.assert_array_equal(first.counts, [len(w) for w in walked])
    columns = np.array([row for w in walked for row in w]).T
    for ours, theirs in zip((first.px, first.py, first.pz, first.e, first.pdgid), columns, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_events_pythia_lost_are_left_out_and_the_rest_stay_at_their_events(lhe):
    """Events missing from Pythia's output (a failed shower) are skipped by the matching. Here the keys hold
    extra events Pythia never saw: at the start, in a row, at a chunk's end, a whole chunk, the file's end."""
    path = lhe["sm"]
    real = np.concatenate(list(first_outgoing_pz(path, "sm")))
    lost = [0, 7, 8, 149, 150, 151, len(real) + 6]  # positions in the keys given
    is_lost = np.isin(np.arange(len(real) + len(lost)), lost)
    keys = np.empty(len(is_lost))
    keys[is_lost], keys[~is_lost] = 1e9 + np.arange(len(lost)), real
    shown = list(shower_file(path, iter([keys[:150], keys[150:152], keys[152:]]), seed=5, mpi=False))
    assert [len(c.index) for c in shown] == [146, 0, len(real) - 146]
    np.testing.assert_array_equal(np.concatenate([c.index for c in shown]), np.flatnonzero(~is_lost))
    assert [len(c.counts) for c in shown] == [len(c.index) for c in shown] and shown[1].px.size == 0


def test_antikt_on_hand_made_configurations():
    def one_event(*particles):
        pt, eta, phi = np.array(particles, dtype=float).T
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        return antikt(np.array([len(pt)]), px, py, pz, np.sqrt(px**2 + py**2 + pz**2), 0.4, 5.0)

    # two particles 0.3 apart: one jet holding both (E-scheme sum)
    jets = one_event((50, 0, 0), (30, 0, 0.3))
    assert jets.counts.tolist() == [1]
    assert jets.px[0] == pytest.approx(50 + 30 * np.cos(0.3)) and jets.py[0] == pytest.approx(30 * np.sin(0.3))
    # 0.5 apart: two jets, the harder first
    jets = one_event((30, 0, 0), (50, 0, 0.5))
    assert jets.counts.tolist() == [2] and jets.pt.tolist() == pytest.approx([50, 30])
    # anti-kT grows around the hard particle: a soft one at 0.35 joins it, one at 0.45 stays out (and is
    # below 5 GeV, so it is no jet)
    jets = one_event((100, 0, 0), (1, 0.35, 0), (1, -0.45, 0))
    assert jets.counts.tolist() == [1]
    assert jets.pz[0] == pytest.approx(np.sinh(0.35)) and jets.e[0] == pytest.approx(100 + np.cosh(0.35))
    # a soft particle 0.3 from a hard one and 0.3 from a softer one, the two 0.6 apart: it goes to the harder
    jets = one_event((100, 0, 0), (40, 0, 0.6), (2, 0, 0.3))
    assert jets.pt.tolist() == pytest.approx([np.hypot(100 + 2 * np.cos(0.3), 2 * np.sin(0.3)), 40])
    # several events at once, one of them empty
    two = antikt(np.array([2, 0, 1]), np.array([40.0, -40, 25]), np.zeros(3), np.zeros(3), np.array([40.0, 40, 25]),
                 0.4, 20.0)  # fmt: skip
    assert two.counts.tolist() == [2, 0, 1]


def test_jets_are_pythias_slowjet_jets_on_showered_events(lhe):
    """Our anti-kT (FastJet) against Pythia's own SlowJet, event by event, on the same showered particles."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in (f"Beams:LHEF = {lhe['sm']}", "Beams:frameType = 4", "PartonLevel:MPI = on", "Print:quiet = on",
                 "Random:setSeed = on", "Random:seed = 5", "SLHA:verbose = 0"):  # fmt: skip
        pythia.readString(line)
    pythia.init()
    # anti-kT, R = 0.4, jets above 20 GeV, particles within |eta| < 4.5, all visible ones, their true masses
    slow = pythia8mc.SlowJet(-1, 0.4, 20.0, 4.5, 2, 2)
    lead_ours, lead_pythia, mjj_ours, mjj_pythia = [], [], [], []
    for _ in range(300):
        if not pythia.next():
            continue
        slow.analyze(pythia.event)
        rows = [(p.px(), p.py(), p.pz(), p.e()) for p in pythia.event
                if p.isFinal() and p.isVisible() and abs(p.eta()) < 4.5]  # fmt: skip
        px, py, pz, e = np.array(rows).T
        jets = antikt(np.array([len(px)]), px, py, pz, e, 0.4, 20.0)
        assert jets.counts[0] == slow.sizeJet()
        if slow.sizeJet() < 2:
            continue
        lead_ours.append(jets.pt[0])
        lead_pythia.append(slow.pT(0))
        s = [slow.p(i) for i in range(2)]
        mjj_pythia.append((s[0] + s[1]).mCalc())
        mjj_ours.append(np.sqrt(max((e := jets.e[:2].sum()) ** 2 - jets.px[:2].sum() ** 2 - jets.py[:2].sum() ** 2
                                    - jets.pz[:2].sum() ** 2, 0.0)))  # fmt: skip
    assert len(lead_ours) > 200
    np.testing.assert_allclose(lead_ours, lead_pythia, rtol=1e-6)
    np.testing.assert_allclose(mjj_ours, mjj_pythia, rtol=1e-6)


def test_the_detector_smears_and_loses_objects_as_parametrised():
    """The card's formulas, each on 10^5 objects: log-normal energies with the resolutions' mean and width,
    the eta-phi cells and the directions drawn inside them, the tower thresholds, the jet energy scale and the
    photon efficiency."""
    rng = np.random.default_rng(7)
    n = 100_000
    for resolution, regions in (
        (det.ecal_resolution, [(50.0, 0.5), (200.0, 2.0), (80.0, 3.5)]),
        (det.hcal_resolution, [(60.0, 0.3), (5.0, 1.2), (150.0, 2.5), (600.0, 4.0)]),
    ):
        for energy, eta in regions:
            e = np.full(n, energy)
            sigma = float(resolution(e[:1], np.array([eta]))[0])
            measured = det.lognormal(e, resolution(e, np.full(n, eta)), rng)
            # log-normal: mean and width as given, always positive, the median below the mean by sigma^2 / 2E
            assert measured.min() > 0
            assert measured.mean() == pytest.approx(energy, abs=5 * sigma / np.sqrt(n))
            assert measured.std() == pytest.approx(sigma, rel=0.02 + 5 / np.sqrt(2 * n))
            s2 = np.log1p((sigma / energy) ** 2)
            assert np.log(measured).std() == pytest.approx(np.sqrt(s2), rel=5 / np.sqrt(2 * n))
            assert np.median(measured) == pytest.approx(energy * np.exp(-s2 / 2), rel=5 * sigma / energy / np.sqrt(n))
    # the card's numbers themselves: 100 GeV in the barrel ECal and HCal
    assert det.ecal_resolution(np.array([100.0]), np.array([0.0]))[0] == pytest.approx(
        np.sqrt(100**2 * 0.0017**2 + 100 * 0.101**2)
    )
    assert det.hcal_resolution(np.array([100.0]), np.array([0.0]))[0] == pytest.approx(
        np.sqrt(100**2 * 0.0302**2 + 100 * 0.5205**2 + 1.59**2)
    )
    # JetEnergyScale: sqrt((3 - 0.2 |eta|)^2 / pT + 1), 1.0167 for a central 270 GeV jet, 1.14 at 20 GeV, eta 2
    assert det.jet_energy_scale(np.array([270.0]), np.array([0.0]))[0] == pytest.approx(np.sqrt(9 / 270 + 1))
    assert det.jet_energy_scale(np.array([20.0]), np.array([-2.0]))[0] == pytest.approx(np.sqrt(2.6**2 / 20 + 1))
    # the cells: HCal 0.1 x 10 degrees in the barrel, 20 degrees forward; ECal 0.0174 x 1 degree
    inside, k, iphi = det.HCAL.cells(np.array([0.05, -2.45, 4.0, 5.2]), np.array([0.01, -3.1, 3.1, 0.0]))
    assert inside.tolist() == [True, True, True, False]
    np.testing.assert_allclose(det.HCAL.eta_edges[k[:3] - 1], [0.0, -2.5, 3.9], atol=1e-12)
    np.testing.assert_allclose(det.HCAL.eta_edges[k[:3]], [0.1, -2.4, 4.1], atol=1e-12)
    assert det.HCAL.phi_bins[k[:3]].tolist() == [36, 36, 18] and iphi[:3].tolist() == [18, 0, 17]
    inside, k, _ = det.ECAL.cells(np.array([0.3]), np.array([0.0]))
    assert det.ECAL.eta_edges[k] - det.ECAL.eta_edges[k - 1] == pytest.approx(0.0174) and det.ECAL.phi_bins[k] == 360
    eta, phi = det.HCAL.smear_in_cell(np.full(n, k_barrel := int(det.HCAL.cells(np.array([0.05]), np.zeros(1))[1][0])),
                                      np.full(n, 18), rng)  # fmt: skip
    assert k_barrel > 0 and eta.min() >= 0.0 and eta.max() < 0.1 and phi.min() >= 0.0 and phi.max() < np.pi / 18
    assert eta.mean() == pytest.approx(0.05, abs=5 * 0.1 / np.sqrt(12 * n))  # uniform inside the cell
    assert eta.std() == pytest.approx(0.1 / np.sqrt(12), rel=0.01)
    # towers: deposits in one cell add up; a tower below EnergyMin or two standard deviations is dropped
    towers = det.towers(det.HCAL, np.zeros(3, dtype=int), np.array([0.05, 0.06, 1.0]), np.array([0.01, 0.02, 1.0]),
                        np.array([400.0, 100.0, 0.9]), rng)  # fmt: skip
    assert len(towers.e) == 1 and towers.e[0] == pytest.approx(500.0, abs=5 * det.hcal_resolution(500.0, 0.05))
    # muons and neutrinos leave nothing; photons and electrons all in the ECal; hadrons in the HCal
    ids = np.array([13, -14, 22, -11, 211, 2212, 310])
    assert det.ecal_fraction(ids).tolist() == [0, 0, 1, 1, 0, 0, 0.3]
    assert det.hcal_fraction(ids).tolist() == [0, 0, 0, 0, 1, 1, 0.7]
    for pt, eta, expected in ((50.0, 0.3, 0.95), (50.0, 2.0, 0.85), (50.0, 2.7, 0.0), (8.0, 0.0, 0.0)):
        eff = det.photon_efficiency(np.full(n, pt), np.full(n, eta))
        seen = det.passes_efficiency(eff, rng).mean()
        assert seen == pytest.approx(expected, abs=5 * np.sqrt(expected * (1 - expected) / n) + 1e-12)


def analyse(reader, path: Path, benchmark: str, params: dict):
    reader.add_sample(str(path), sampled_from_benchmark=benchmark, is_background=False)
    for name, definition in params["analysis"]["observables"].items():
        reader.add_observable(name, definition, required=True)
    low, high = params["analysis"]["cuts"]["m_aa"]
    reader.add_cut(f"(a[0] + a[1]).m > {low}")
    reader.add_cut(f"(a[0] + a[1]).m < {high}")
    reader.add_cut(f"j[0].pt > {params['analysis']['cuts']['pt_j1_min']}")
    compat.analyse_samples(reader, path.name)
    return reader


def asymmetry(reader, benchmark: str) -> tuple[float, float]:
    w, sign = reader.weights[benchmark], np.sign(reader.observations["dphi_jj"])
    a = float(np.sum(w * sign) / np.sum(w))
    return a, float(np.sqrt(np.sum(w**2 * (sign - a) ** 2)) / np.sum(w))


def test_the_cp_odd_asymmetry_survives_the_shower_diluted(lhe, setup_file):
    """On 6000 events sampled at CPWL2 = +10 (theta): at parton level A is about -0.18 (physics notes); the
    shower, the jet algorithm and the detector keep its sign and most of it."""
    compat.apply()
    params = load_params(ROOT / "params" / "quick.yaml")
    parton = analyse(ColumnarLHEReader(str(setup_file)), lhe["ww"], "ww", params)
    shower = analyse(ShowerLHEReader(str(setup_file), ShowerSettings(mpi=False), seed=21), lhe["ww"], "ww", params)
    (a_parton, e_parton), (a_shower, e_shower) = asymmetry(parton, "ww"), asymmetry(shower, "ww")
    n_shower = len(shower.observations["dphi_jj"])
    assert 0.45 * 6000 < n_shower < 0.8 * 6000  # photon efficiencies, isolation, two jets, the mass window
    assert a_parton == pytest.approx(-0.18, abs=4 * e_parton)
    assert a_shower < -4 * e_shower  # the sign survives, far from zero
    assert 0.5 < a_shower / a_parton < 1.3  # diluted, not enhanced beyond fluctuations
    # the SM weights of the same events: no asymmetry at either level
    for reader in (parton, shower):
        a, e = asymmetry(reader, "sm")
        assert abs(a) < 5 * e


def test_the_shower_level_refuses_parton_smearing_and_conflicting_parameters(setup_file, tmp_path):
    reader = ShowerLHEReader(str(setup_file), ShowerSettings(), seed=1)
    with pytest.raises(ValueError, match="the detector model smears"):
        reader.set_smearing(pdgids=[22])
    bad_radius = write_params(tmp_path, {"analysis.level": "shower", "analysis.shower": {"jet_radius": 3.0}})
    with pytest.raises(ParamsError, match=r"analysis\.shower: expected a mapping with any of the keys mpi"):
        load_params(bad_radius)
    with pytest.raises(ParamsError, match=r"analysis\.level: expected one of 'parton', 'shower'"):
        load_params(write_params(tmp_path, {"analysis.level": "hadron"}))


def test_the_analysis_stage_at_shower_level(tmp_path):
    """The analysis notebook at shower level, through the driver: MadMiner files that say their level (the
    combined one too), and the parton-versus-shower plot."""
    params = write_params(tmp_path, {"analysis.level": "shower", "analysis.shower": {"mpi": False},
                                     "generation.sampling_benchmarks": ["sm", "ww"],
                                     "generation.files_per_benchmark": 1})  # fmt: skip
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "madminer_notebooks.driver", "run", "--params", str(params),
                           "--run-dir", str(run_dir), "--stages", "..combine"],
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for key in ("sm-0", "ww-0"):
        assert analysis_level(run_dir / "data" / "analysed" / f"{key}.h5") == "shower"
        # two panels (11 x 4 inches at 110 dpi), SM histograms in black and the CP-odd point's in C3 (measured:
        # 6330 and 589 pixels; empty axes have about 2900 black ones, from frames and labels, and no C3)
        assert_figure(run_dir / "plots" / f"parton_vs_shower_{key}.png", (1000, 1250), (350, 480),
                      {"black": 4500, "C3": 300})  # fmt: skip
    assert analysis_level(run_dir / "data" / "combined.h5") == "shower"
    nb = json.loads((run_dir / "notebooks" / "analysis-ww-0.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"])
    assert "shower-level analysis of ww-0 with ShowerLHEReader" in text


def test_the_same_seed_gives_the_same_reconstructed_events_and_another_seed_does_not(lhe, setup_file):
    compat.apply()
    params = load_params(ROOT / "params" / "quick.yaml")

    def observations(seed: int) -> np.ndarray:
        reader = ShowerLHEReader(str(setup_file), ShowerSettings(mpi=False), seed=seed)
        analyse(reader, lhe["sm"], "sm", params)
        return np.column_stack(list(reader.observations.values()))

    first, again, other = observations(4), observations(4), observations(5)
    np.testing.assert_array_equal(first, again)
    assert first.shape != other.shape or not np.array_equal(first, other)


class _LosingReader(ShowerLHEReader):
    """The shower reader with every 7th event of the file lost, as if Pythia had failed on it."""

    @staticmethod
    def kept(first_event: int, n: int) -> np.ndarray:
        return (first_event - 1 + np.arange(n)) % 7 != 3

    def _chunks(self, path, sampling_benchmark):
        import dataclasses

        for chunk in super()._chunks(path, sampling_benchmark):
            keep = self.kept(chunk.first_event, chunk.n)  # Pythia itself lost none here (asserted below)
            arrays = {f.name: getattr(chunk, f.name)[keep] for f in dataclasses.fields(chunk)
                      if isinstance(getattr(chunk, f.name), np.ndarray)}  # fmt: skip
            yield dataclasses.replace(chunk, **arrays, weights={k: v[keep] for k, v in chunk.weights.items()},
                                      globals={k: v[keep] for k, v in chunk.globals.items()})  # fmt: skip


def test_the_shower_level_keeps_the_files_cross_section(lhe, setup_file):
    """Before any cut the showered events carry the file's cross section, as the parton-level reader reads it
    from the same file. When events are lost in the shower, their share of the cross section goes to the others:
    exactly the sampling benchmark's (its events all weigh the same), the others' up to the lost events'
    fluctuation."""
    compat.apply()

    def read(reader) -> tuple[dict[str, np.ndarray], int]:
        reader.add_sample(str(lhe["sm"]), sampled_from_benchmark="sm")
        reader.add_observable("scale", "scale", required=True)  # every event has one: nothing is cut
        compat.analyse_samples(reader, lhe["sm"].name)
        return reader.weights

    parton = read(ColumnarLHEReader(str(setup_file)))
    shower = read(ShowerLHEReader(str(setup_file), ShowerSettings(mpi=False), seed=8))
    assert len(parton["sm"]) == len(shower["sm"]) == 1500  # Pythia lost nothing in this file
    for b in parton:
        assert np.sum(shower[b]) == pytest.approx(np.sum(parton[b]), rel=1e-12), b
    assert np.sum(parton["sm"]) == pytest.approx(MADGRAPH_SM_PB, rel=0.05)

    losing = read(_LosingReader(str(setup_file), ShowerSettings(mpi=False), seed=8))
    kept = _LosingReader.kept(1, 1500)
    assert len(losing["sm"]) == kept.sum() == 1286
    for b in parton:  # the kept events, scaled by 1500 / 1286
        np.testing.assert_allclose(losing[b], parton[b][kept] * 1500 / 1286, rtol=1e-12, err_msg=b)
    assert np.sum(losing["sm"]) == pytest.approx(np.sum(parton["sm"]), rel=1e-12)
