"""The columnar reader against MadMiner's own LHEReader: same events, weights, observables and HDF5 file."""

from __future__ import annotations

import gzip
import logging
import re
import shutil

import h5py
import numpy as np
import pytest
from mg_style import to_madgraph_style

from madminer_notebooks import compat
from madminer_notebooks.analysis import AnalysisError, ColumnarLHEReader
from madminer_notebooks.analysis.lhe_columns import LHEFormatError

REAL_MADGRAPH = __import__("pathlib").Path(__file__).parent / "data" / "madgraph" / "w.lhe.gz"

#: the tutorial's observables, plus ones that exercise the rest of the expression language
OBSERVABLES = {
    "pt_j1": "j[0].pt",
    "dphi_jj": "j[0].deltaphi(j[1]) * (1. if j[0].eta > j[1].eta else -1.)",
    "m_jj": "(j[0] + j[1]).m",
    "deta_jj": "abs(j[0].eta - j[1].eta)",
    "pt_aa": "(a[0] + a[1]).pt",
    "m_aa": "(a[0] + a[1]).m",
    "n_jets": "len(j)",
    "last_jet_e": "j[-1].e",
    "third_jet_pt": "j[2].pt",  # no third jet: fails in every event (optional, NaN)
    "both_central": "abs(j[0].eta) < 2.5 and abs(j[1].eta) < 2.5 or not j[0].pt > 50",
    "ratio": "min(j[0].pt, j[1].pt) / max(a[0].pt, a[1].pt) if j[0].pt > 0 else 0.0",
    "cosh_deta": "cosh(a[0].eta - a[1].eta) + sqrt(j[1].pt) + pi",
    "dr_aj": "a[0].deltaR(j[0])",
    "truth_spin": "p_truth[0].spin + p_truth[0].pdgid",
    "charge": "j[0].charge + (j[0] + j[1]).charge",
    "met": "met.pt",
    "scale": "scale * alpha_qed",
    "zero_division": "1.0 / (len(a) - 2)",  # Python numbers: ZeroDivisionError in MadMiner, no value
    "numpy_division": "j[0].pt / (len(a) - 2)",  # a numpy number (particle property): inf, kept
    "b_tag": "j[0].b_tag or j[1].b_tag",
}
TUTORIAL = {k: OBSERVABLES[k] for k in ("pt_j1", "dphi_jj", "m_jj", "deta_jj", "pt_aa", "m_aa")}
CUTS = ["(a[0] + a[1]).m > 120.", "m_aa < 130.", "pt_j1 > 30.", "j[3].pt > 10."]


def _readers(setup_file, lhe, sampling, smearing=False, observables=OBSERVABLES, cuts=CUTS, required=("pt_j1", "m_aa")):
    from madminer.lhe import LHEReader

    compat.apply()
    out = []
    for cls in (ColumnarLHEReader, LHEReader):
        r = cls(str(setup_file))
        r.add_sample(str(lhe), sampled_from_benchmark=sampling)
        if smearing:
            r.set_smearing(pdgids=[1, 2, 3, 4, 5, 21, -1, -2, -3, -4, -5], energy_resolution_abs=0.0,
                           energy_resolution_rel=0.1, pt_resolution_abs=None, pt_resolution_rel=None,
                           eta_resolution_abs=0.1, eta_resolution_rel=0.0, phi_resolution_abs=0.1,
                           phi_resolution_rel=0.0)  # fmt: skip
        for name, expression in observables.items():
            r.add_observable(name, expression, required=name in required)
        for i, cut in enumerate(cuts):
            r.add_cut(cut, required=i == 3)  # 'required' cuts pass where they cannot be evaluated
        np.random.seed(7)
        r.analyse_samples()
        out.append(r)
    return out


def _assert_identical(columnar, madminer, tmp_path):
    assert list(columnar.observations) == list(madminer.observations)
    for name, expected in madminer.observations.items():
        got = columnar.observations[name]
        assert got.shape == expected.shape, name
        expected = expected.astype(float)
        assert np.array_equal(np.isnan(got), np.isnan(expected)), name
        ok = ~np.isnan(expected)
        # the same vector formulas; met is a sum that cancels to ~1e-13 GeV, so it gets an absolute tolerance
        np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-10, atol=1e-9 if name == "met" else 0, err_msg=name)
    assert list(columnar.weights) == list(madminer.weights)
    for name, expected in madminer.weights.items():
        assert np.array_equal(columnar.weights[name], expected), name  # bit for bit
    assert columnar.signal_events_per_benchmark == madminer.signal_events_per_benchmark
    if any(v.dtype == object for v in madminer.observations.values()):
        return  # MadMiner cannot save mixed Python objects (bool/None) itself; compared value by value above
    files = []
    for r, name in ((columnar, "columnar.h5"), (madminer, "madminer.h5")):
        r.save(str(tmp_path / name), shuffle=False)
        files.append(tmp_path / name)
    with h5py.File(files[0]) as a, h5py.File(files[1]) as b:
        names_a, names_b = [], []
        a.visit(names_a.append)
        b.visit(names_b.append)
        assert names_a == names_b
        for key in names_b:
            if isinstance(b[key], h5py.Dataset):
                x, y = a[key][()], b[key][()]
                if getattr(x, "dtype", None) is not None and x.dtype.kind == "f":
                    np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-9, equal_nan=True, err_msg=key)
                else:
                    assert np.array_equal(x, y), key


def test_builtin_file_gives_madminers_events_weights_and_file(setup_file, generate, tmp_path):
    lhe, _ = generate("sm", 1500, 11)
    local = tmp_path / "sm.lhe.gz"
    shutil.copy(lhe, local)
    columnar, madminer = _readers(setup_file, local, "sm", observables=TUTORIAL)
    _assert_identical(columnar, madminer, tmp_path)  # including the HDF5 files
    columnar, madminer = _readers(setup_file, local, "sm")
    assert 1000 < len(columnar.observations["pt_j1"]) < 1500
    assert np.all(np.isnan(columnar.observations["third_jet_pt"]))
    assert np.all(np.isnan(columnar.observations["zero_division"]))
    assert np.all(np.isinf(columnar.observations["numpy_division"]))
    _assert_identical(columnar, madminer, tmp_path)


@pytest.mark.parametrize("plain", [True, False])
def test_madgraph_29_style_file_plain_and_gzipped(setup_file, generate, tmp_path, plain):
    lhe, _ = generate("w", 800, 12)
    target = tmp_path / ("w.lhe" if plain else "w.lhe.gz")
    to_madgraph_style(lhe, target)
    columnar, madminer = _readers(setup_file, target, "w", observables=TUTORIAL)
    _assert_identical(columnar, madminer, tmp_path)


def test_real_madgraph_3_file(setup_file, tmp_path):
    local = tmp_path / "w.lhe.gz"
    shutil.copy(REAL_MADGRAPH, local)
    columnar, madminer = _readers(setup_file, local, "w", cuts=[])
    assert len(columnar.observations["m_aa"]) == 150
    _assert_identical(columnar, madminer, tmp_path)


def test_event_norm_sum_uses_weights_as_written(setup_file, generate, tmp_path):
    lhe, summary = generate("sm", 600, 13)
    with gzip.open(lhe, "rt") as f:
        text = f.read().replace("= event_norm", "= event_norm", 1)
    text = text.replace("average = event_norm", "sum = event_norm")
    assert "sum = event_norm" in text
    target = tmp_path / "sum.lhe"
    target.write_text(text)
    columnar, madminer = _readers(setup_file, target, "sm", cuts=[])
    _assert_identical(columnar, madminer, tmp_path)
    # with 'sum' nothing is divided by nevents: every event carries the full cross section
    assert np.mean(columnar.weights["sm"]) == pytest.approx(summary["cross_section_pb"], rel=1e-6)


def test_smearing_follows_madminers_resolution_model_and_its_seed(setup_file, generate, tmp_path):
    lhe, _ = generate("sm", 8000, 14)
    local = tmp_path / "sm.lhe.gz"
    shutil.copy(lhe, local)
    observables = {"pt_j1": "j[0].pt", "e_j1": "j[0].e", "truth_e": "max(p_truth[2].e, p_truth[3].e)",
                   "eta_j1": "j[0].eta", "m_aa": "(a[0] + a[1]).m"}  # fmt: skip
    columnar, madminer = _readers(setup_file, local, "sm", smearing=True, observables=observables, cuts=[],
                                  required=tuple(observables))  # fmt: skip
    for r in (columnar, madminer):
        assert np.all(r.observations["m_aa"] == pytest.approx(125.0, abs=0.1))  # photons are not smeared
    # the relative smearing of the leading jet energy: same mean and width (MadMiner's 10%) within statistics
    for stat in (np.mean, np.std):
        values = [stat(r.observations["e_j1"] / r.observations["truth_e"]) for r in (columnar, madminer)]
        assert values[0] == pytest.approx(values[1], rel=0.03)
    q = [np.percentile(r.observations["pt_j1"], [10, 50, 90]) for r in (columnar, madminer)]
    np.testing.assert_allclose(q[0], q[1], rtol=0.03)
    again, _ = _readers(setup_file, local, "sm", smearing=True, observables=observables, cuts=[],
                        required=tuple(observables))  # fmt: skip
    assert np.array_equal(again.observations["pt_j1"], columnar.observations["pt_j1"])  # same seed, same values


def _columnar(setup_file, lhe, sampling, observables):
    compat.apply()
    r = ColumnarLHEReader(str(setup_file))
    r.add_sample(str(lhe), sampled_from_benchmark=sampling)
    for name, expression in observables.items():
        r.add_observable(name, expression, required=True)
    return r


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("j[0].pt +", "observable 'bad' = 'j[0].pt +': syntax error"),
        ("jets[0].pt", "unknown name 'jets'"),
        ("j[0].ptt", "particles have no property 'ptt'"),
        ("sqrt(j[0].pt - 1e9)", "event 1: observable 'bad'"),
    ],
)
def test_a_bad_observable_is_named_before_anything_is_written(setup_file, generate, tmp_path, expression, message):
    lhe, _ = generate("sm", 300, 15)
    with pytest.raises(AnalysisError, match=re.escape(message)):
        r = _columnar(setup_file, lhe, "sm", {"pt": "j[0].pt", "bad": expression})
        if "sqrt" not in expression:
            r.check_expressions()
        r.analyse_samples()
    assert not list(tmp_path.iterdir())


def _cut_outgoing_line(path):
    """Event 7's first outgoing quark line loses its last two columns (MadMiner reads status-1 lines only)."""
    head, *events = path.read_text().split("<event>")
    lines = events[6].split("\n")
    lines[4] = " ".join(lines[4].split()[:11])
    events[6] = "\n".join(lines)
    path.write_text("<event>".join([head, *events]))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ({"truncate_in_event": 40}, "ends inside event 40"),
        ("cut", "event 7: malformed event"),
        ({"drop_weight": (9, "neg_w")}, "event 9: its weights"),
    ],
)
def test_a_broken_file_names_the_event(setup_file, generate, tmp_path, damage, message):
    lhe, _ = generate("w", 300, 16)
    target = tmp_path / "broken.lhe"
    to_madgraph_style(lhe, target, **(damage if isinstance(damage, dict) else {}))
    if damage == "cut":
        _cut_outgoing_line(target)
    r = _columnar(setup_file, target, "w", {"pt": "j[0].pt"})
    with pytest.raises(LHEFormatError, match=message):
        r.analyse_samples()


def _nth_event_edit(n: int, edit):
    """A damage of the text of event ``n`` (1-based) only."""

    def damage(text: str) -> str:
        head, *events = text.split("<event>")
        events[n - 1] = edit(events[n - 1])
        return "<event>".join([head, *events])

    return damage


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        # a file that is not an LHE file at all (a log saved with the wrong name), a header without events
        (lambda text: "INFO: generation finished\n" * 50, "no <MGRunCard> in the header (MadMiner reads nevents"),
        (lambda text: text[: text.index("<event>")] + "</LesHouchesEvents>\n", "no <event> in the file"),
        (lambda text: text.replace("</rwgt>", ""), "event 1: <rwgt> without </rwgt>"),
        (_nth_event_edit(5, lambda e: re.sub(r"<rwgt>.*?</rwgt>", "", e, count=1, flags=re.S)),
         "event 5 has no <rwgt> block while earlier events do"),
        (_nth_event_edit(2, lambda e: re.sub(r"(<wgt id='[^']+'>)\s*[^<]+", r"\1 nan-ish ", e, count=1)),
         "a <wgt> value in events 1..300: could not convert string to float"),
    ],
)  # fmt: skip
def test_a_broken_file_names_what_is_wrong(setup_file, generate, tmp_path, damage, message):
    lhe, _ = generate("w", 300, 16)
    target = tmp_path / "broken.lhe"
    to_madgraph_style(lhe, target)
    target.write_text(damage(target.read_text()))
    r = _columnar(setup_file, target, "w", {"pt": "j[0].pt"})
    with pytest.raises(LHEFormatError, match=re.escape(f"{target}: ") + ".*" + re.escape(message)):
        r.analyse_samples()


def test_a_truncated_gzip_stream_is_named(setup_file, generate, tmp_path):
    lhe, _ = generate("sm", 2000, 17)
    data = lhe.read_bytes()
    target = tmp_path / "cut.lhe.gz"
    target.write_bytes(data[: len(data) // 2])
    r = _columnar(setup_file, target, "sm", {"pt": "j[0].pt"})
    with pytest.raises(LHEFormatError, match="cut.lhe.gz: the compressed file is truncated"):
        r.analyse_samples()


def test_python_beyond_the_column_subset_falls_back_to_madminer_with_the_reason(setup_file, generate, tmp_path, caplog):
    lhe, _ = generate("sm", 400, 18)
    local = tmp_path / "sm.lhe.gz"
    shutil.copy(lhe, local)
    observables = {"pt_j1": "j[0].pt", "sum_pt": "sum([p.pt for p in j])"}
    with caplog.at_level(logging.WARNING):
        columnar, madminer = _readers(setup_file, local, "sm", observables=observables, cuts=[], required=("pt_j1",))
    assert columnar.fallbacks and "ListComp" in columnar.fallbacks[0][1]
    assert "read by MadMiner's per-event LHE parser" in caplog.text
    _assert_identical(columnar, madminer, tmp_path)


def test_small_chunks_give_the_same_result(setup_file, generate, tmp_path):
    lhe, _ = generate("sm", 1500, 11)
    readers = []
    for chunk in (1 << 14, 8 << 20):
        r = ColumnarLHEReader(str(setup_file), chunk_bytes=chunk)
        r.add_sample(str(lhe), sampled_from_benchmark="sm")
        r.add_observable("m_jj", "(j[0] + j[1]).m", required=True)
        r.analyse_samples()
        readers.append(r)
    assert np.array_equal(readers[0].observations["m_jj"], readers[1].observations["m_jj"])
    assert np.array_equal(readers[0].weights["w"], readers[1].weights["w"])
