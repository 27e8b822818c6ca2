"""The combined sample carries each benchmark's cross section once, however its events were split into files.

The same generated events are analysed as one file per benchmark and as three files per benchmark (the
files cut out of the one, each with its own ``nevents``), then combined as the combine notebook does it. The
cross section, and the rate, histogram and truth Fisher information that MadMiner computes from the combined
file, must not change; without the k-factors every one of them triples.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import MADGRAPH_SM_PB

from madminer_notebooks import compat
from madminer_notebooks.analysis import ColumnarLHEReader
from madminer_notebooks.chain import combine_k_factors

SAMPLING = ("sm", "w", "ww")
EVENTS = 1500
OBSERVABLES = {"pt_j1": "j[0].pt", "dphi_jj": "j[0].deltaphi(j[1]) * (1. if j[0].eta > j[1].eta else -1.)"}
LUMINOSITY = 300_000.0


def split_lhe(path: Path, parts: int, folder: Path) -> list[Path]:
    """The events of one LHE file in ``parts`` files of consecutive events, each with its own ``nevents``."""
    text = gzip.decompress(path.read_bytes()).decode()
    head, rest = text.split("<event>", 1)
    events = ["<event>" + e for e in rest.rsplit("</LesHouchesEvents>", 1)[0].split("<event>")]
    tail = "</LesHouchesEvents>\n"
    out = []
    for i, chunk in enumerate(np.array_split(np.array(events, dtype=object), parts)):
        header = re.sub(r"^\s*\d+\s*=\s*nevents", f"  {len(chunk)} = nevents", head, count=1, flags=re.M)
        target = folder / f"{path.name.removesuffix('.lhe.gz')}-{i}.lhe.gz"
        target.write_bytes(gzip.compress((header + "".join(chunk) + tail).encode()))
        out.append(target)
    return out


def analyse(setup_file: Path, lhe: Path, benchmark: str, out: Path) -> str:
    reader = ColumnarLHEReader(str(setup_file))
    reader.add_sample(str(lhe), sampled_from_benchmark=benchmark)
    for name, expression in OBSERVABLES.items():
        reader.add_observable(name, expression, required=True)
    reader.add_cut("pt_j1 > 30.")
    reader.analyse_samples()
    reader.save(str(out))
    return str(out)


def combine(setup_file: Path, files: dict[str, list[Path]], folder: Path, k_factors: bool) -> Path:
    from madminer.sampling import combine_and_shuffle

    params = {"generation": {"backend": "builtin", "sampling_benchmarks": list(files),
                             "files_per_benchmark": len(next(iter(files.values())))}}  # fmt: skip
    analysed = [analyse(setup_file, p, b, folder / f"{p.name}.h5") for b, paths in files.items() for p in paths]
    out = folder / f"combined-{len(analysed)}-{k_factors}.h5"
    np.random.seed(1)
    combine_and_shuffle(analysed, str(out), k_factors=combine_k_factors(params) if k_factors else None)
    return out


def numbers(combined: Path) -> dict[str, np.ndarray]:
    from madminer.analysis import DataAnalyzer
    from madminer.fisherinformation import FisherInformation

    sm = np.zeros(2)
    fisher = FisherInformation(str(combined))
    return {
        "xsec": DataAnalyzer(str(combined)).xsecs(thetas=[sm, [1.0, 0.0], [0.0, 1.0]])[0],
        "truth": fisher.truth_information(theta=sm, luminosity=LUMINOSITY)[0],
        "rate": fisher.rate_information(theta=sm, luminosity=LUMINOSITY)[0],
        "histo": fisher.histo_information(
            theta=sm, luminosity=LUMINOSITY, observable="pt_j1", bins=[30.0, 60.0, 100.0, 200.0, 1e4]
        )[0],  # fmt: skip
    }


def test_combined_cross_section_does_not_depend_on_the_files_per_benchmark(generate, setup_file, tmp_path):
    compat.apply()
    generated = {b: generate(b, EVENTS, 17) for b in SAMPLING}
    one = {b: [path] for b, (path, _) in generated.items()}
    three = {b: split_lhe(path, 3, tmp_path) for b, (path, _) in generated.items()}

    single = numbers(combine(setup_file, one, tmp_path, k_factors=True))
    split = numbers(combine(setup_file, three, tmp_path, k_factors=True))
    for key in single:  # the same events, the same weights: equal to round-off
        np.testing.assert_allclose(split[key], single[key], rtol=1e-9, err_msg=key)

    # the combined SM cross section after a cut is at most the generator's (before cuts), and not far below
    sigma_gen = generated["sm"][1]["cross_section_pb"]
    assert 0.5 * sigma_gen < single["xsec"][0] <= sigma_gen
    assert sigma_gen == pytest.approx(MADGRAPH_SM_PB, rel=0.05)

    # what the k-factors prevent: the three files counted three times
    plain = numbers(combine(setup_file, three, tmp_path, k_factors=False))
    np.testing.assert_allclose(plain["xsec"], 3 * single["xsec"], rtol=1e-9)
    np.testing.assert_allclose(plain["truth"], 3 * single["truth"], rtol=1e-9)


def test_k_factors_follow_the_files_of_each_benchmark():
    builtin = {"generation": {"backend": "builtin", "sampling_benchmarks": ["sm", "w"], "files_per_benchmark": 4}}
    assert combine_k_factors(builtin) == [0.25] * 8
    external = {"generation": {"backend": "external", "events": [
        {"benchmark": "sm", "path": "a"}, {"benchmark": "w", "path": "b"}, {"benchmark": "sm", "path": "c"},
        {"benchmark": "sm", "path": "d"}]}}  # fmt: skip
    assert combine_k_factors(external) == pytest.approx([1 / 3, 1.0, 1 / 3, 1 / 3])
