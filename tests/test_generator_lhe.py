"""The written LHE files: content, readers (MadMiner, Pythia 8, pylhe), determinism by seed, scales."""

import gzip
import re

import numpy as np
import pytest

from madminer_notebooks.generator.constants import BW_CUTOFF, MH, WH
from madminer_notebooks.generator.lhe import read_lhe_arrays


def _pt(p):
    return np.hypot(p[..., 1], p[..., 2])


def _eta(p):
    return np.arcsinh(p[..., 3] / _pt(p))


def test_file_content_matches_the_run(generate):
    path, summary = generate("sm", 4000, seed=3)
    ev = read_lhe_arrays(str(path))
    sigma = summary["cross_section_pb"]
    assert len(ev.xwgtup) == summary["events"] == 4000
    np.testing.assert_allclose(ev.xwgtup, sigma, rtol=1e-10)  # unweighted, event_norm = average
    assert set(ev.weights) == {"w", "ww", "neg_w", "neg_ww", "morphing_basis_vector_5"}
    assert list(ev.pdg_ids) == [2, 1, 2, 1, 25, 22, 22]
    assert list(ev.status) == [-1, -1, 1, 1, 2, 1, 1]

    run_card = re.search(r"<MGRunCard>(.*)</MGRunCard>", ev.header, re.S).group(1)
    entries = {
        k.strip(): v.strip() for v, k in (line.split("!")[0].split("=") for line in run_card.strip().splitlines())
    }
    assert entries["nevents"] == "4000" and entries["event_norm"] == "average" and entries["iseed"] == "3"
    assert float(entries["ebeam1"]) == float(entries["ebeam2"]) == 6500.0
    assert entries["lhaid"] == "247000" and entries["ptj"] == "20.0" and entries["drjj"] == "0.4"
    init = re.search(r"<init>\n[^\n]*\n([^\n]*)\n</init>", ev.header).group(1).split()
    assert float(init[0]) == pytest.approx(sigma, rel=1e-9)
    assert float(init[1]) == pytest.approx(summary["cross_section_error_pb"], rel=1e-9)

    p = ev.momenta
    # Momentum conservation, on-shell massless quarks and photons, photons from the Higgs.
    np.testing.assert_allclose(p[:, 0] + p[:, 1], p[:, 2] + p[:, 3] + p[:, 4], atol=1e-6)
    np.testing.assert_allclose(p[:, 4], p[:, 5] + p[:, 6], atol=1e-6)
    m_aa = np.sqrt(np.maximum((p[:, 5, 0] + p[:, 6, 0]) ** 2 - np.sum((p[:, 5, 1:] + p[:, 6, 1:]) ** 2, axis=1), 0))
    assert np.all(np.abs(m_aa - MH) < BW_CUTOFF * WH * 1.0001)
    np.testing.assert_allclose(m_aa, ev.masses[:, 4], rtol=1e-6)  # momenta carry 11 digits
    # Generation cuts on the quarks.
    quarks = p[:, 2:4]
    assert np.all(_pt(quarks) > 20.0) and np.all(np.abs(_eta(quarks)) < 5.0)
    dphi = np.angle(
        np.exp(1j * (np.arctan2(quarks[:, 0, 2], quarks[:, 0, 1]) - np.arctan2(quarks[:, 1, 2], quarks[:, 1, 1])))
    )
    assert np.all(np.hypot(_eta(quarks[:, 0]) - _eta(quarks[:, 1]), dphi) > 0.4)
    # Photons are not cut: some fall outside |eta| < 2.5 or below 20 GeV.
    assert np.mean(np.abs(_eta(p[:, 5])) > 2.5) > 0.05


def test_madminer_lhe_reader_reads_the_file_unmodified(generate, setup_file):
    from madminer.lhe import LHEReader

    path, summary = generate("ww", 300, seed=4)
    ev = read_lhe_arrays(str(path))
    reader = LHEReader(str(setup_file))
    reader.add_sample(str(path), sampled_from_benchmark="ww", is_background=False)
    reader.add_observable("pt_j1", "j[0].pt", required=True)
    reader.add_observable("m_aa", "(a[0] + a[1]).m", required=True)
    reader.analyse_samples()
    weights = reader.weights
    assert len(reader.observations["pt_j1"]) == 300
    np.testing.assert_allclose(reader.observations["pt_j1"], np.max(_pt(ev.momenta[:, 2:4]), axis=1), rtol=1e-8)
    # event_norm = average: MadMiner divides by nevents, so the sampling weights sum to the cross section.
    assert weights["ww"].sum() == pytest.approx(summary["cross_section_pb"], rel=1e-9)
    for name, values in ev.weights.items():
        np.testing.assert_allclose(weights[name], values / 300, rtol=1e-9)


def test_pythia_reads_the_gzipped_file(generate):
    import pythia8mc  # a hard dependency (pyproject.toml): missing, the test fails

    path, summary = generate("sm", 4000, seed=3)
    pythia = pythia8mc.Pythia("", False)
    for line in ("Beams:frameType = 4", f"Beams:LHEF = {path}", "PartonLevel:all = off",
                 "HadronLevel:all = off", "Print:quiet = on"):  # fmt: skip
        assert pythia.readString(line)
    assert pythia.init()
    n, first = 0, None
    while pythia.next():
        if first is None:
            first = sorted(pythia.process[i].id() for i in range(pythia.process.size()))
        n += 1
    assert pythia.infoPython().atEndOfFile()
    assert n == 4000
    assert first == sorted([90, 2212, 2212, 2, 1, 2, 1, 25, 22, 22])
    assert pythia.infoPython().sigmaGen() * 1e9 == pytest.approx(summary["cross_section_pb"], rel=1e-6)


def test_pylhe_reads_the_file(generate):
    import pylhe  # in the dev extra that drivers/test installs

    path, summary = generate("sm", 4000, seed=3)
    lhe = pylhe.LHEFile.fromfile(str(path))
    events = list(lhe.events)
    assert len(events) == 4000
    assert lhe.init.initInfo.weightingStrategy == -4
    assert set(events[0].weights) == {"w", "ww", "neg_w", "neg_ww", "morphing_basis_vector_5"}
    assert events[0].eventinfo.weight == pytest.approx(summary["cross_section_pb"], rel=1e-9)


def test_same_seed_and_jobs_give_identical_bytes(generate, setup_file, tmp_path):
    from conftest import run_generator

    path, _ = generate("sm", 6000, seed=21, jobs=2)
    again = tmp_path / "again.lhe.gz"
    run_generator("--setup", str(setup_file), "--benchmark", "sm", "--events", "6000", "--seed", "21",
                  "--jobs", "2", "--output", str(again))  # fmt: skip
    assert again.read_bytes() == path.read_bytes()
    other, _ = generate("sm", 6000, seed=22, jobs=2)
    with gzip.open(other, "rt") as a, gzip.open(path, "rt") as b:
        assert a.read() != b.read()


def test_dynamic_scale_is_half_the_transverse_mass_sum(generate):
    path, summary = generate("sm", 3000, seed=5, scale="dynamic3")
    fixed_path, fixed = generate("sm", 4000, seed=3)
    ev = read_lhe_arrays(str(path))
    p = ev.momenta
    mt = np.sqrt(np.maximum(p[..., 0] ** 2 - p[..., 3] ** 2, 0))
    np.testing.assert_allclose(ev.scale, 0.5 * (mt[:, 2] + mt[:, 3] + mt[:, 5] + mt[:, 6]), rtol=1e-7)
    assert "3 = dynamical_scale_choice" in ev.header
    # The PDFs at HT/2 (typically below 125 GeV) change the cross section by a few per cent.
    shift = summary["cross_section_pb"] / fixed["cross_section_pb"] - 1
    assert (
        abs(shift)
        > 3 * np.hypot(summary["cross_section_error_pb"], fixed["cross_section_error_pb"]) / fixed["cross_section_pb"]
    )
    np.testing.assert_allclose(read_lhe_arrays(str(fixed_path)).scale, 125.0)
