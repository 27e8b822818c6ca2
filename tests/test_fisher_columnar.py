"""The columnar histogram Fisher information is MadMiner's, to 1e-10, on a real combined MadMiner file."""

from __future__ import annotations

import numpy as np
import pytest

from madminer_notebooks import compat

THETA = np.zeros(2)
LUMINOSITY = 300_000.0  # pb^-1


@pytest.fixture(scope="module")
def informations(combined):
    compat.apply()
    from madminer.fisherinformation import FisherInformation

    from madminer_notebooks.inference.columnar_fisher import ColumnarFisherInformation

    return FisherInformation(str(combined)), ColumnarFisherInformation(str(combined))


CASES = {
    # quick.yaml's histogram baseline: 8 x 8 bins of equal cross section
    "2d dynamic": ("histo_information_2d", dict(observable1="pt_j1", bins1=8, observable2="dphi_jj", bins2=8)),
    "1d dynamic": ("histo_information", dict(observable="pt_j1", bins=25)),
    "1d fixed range": ("histo_information", dict(observable="pt_j1", bins=10, histrange=(30.0, 300.0))),
    "1d edges, math": ("histo_information", dict(observable="sqrt(pt_j1) * cos(dphi_jj)", bins=[-5.0, 0.0, 5.0])),
    "cuts, efficiency": (
        "histo_information",
        dict(observable="dphi_jj", bins=6, cuts=["pt_j1 > 50.", "abs(dphi_jj) < 3."], efficiency_functions=["0.9"]),
    ),
    # a conditional expression is not an array expression: evaluated event by event, as MadMiner does
    "per event": ("histo_information", dict(observable="pt_j1 if dphi_jj > 0 else -pt_j1", bins=5)),
}


@pytest.mark.parametrize("case", CASES)
def test_histogram_information_equals_madminers(informations, case):
    theirs, ours = informations
    name, kwargs = CASES[case]
    expected = getattr(theirs, name)(theta=THETA, luminosity=LUMINOSITY, **kwargs)
    got = getattr(ours, name)(theta=THETA, luminosity=LUMINOSITY, **kwargs)
    for e, g in zip(expected, got, strict=True):  # the information matrix and its covariance
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=0.0)
    assert expected[0][0, 0] > 1.0  # a real information: many events, a strong dependence on CWL2


def test_cross_sections_and_rate_information_equal_madminers(informations):
    theirs, ours = informations
    cases = [
        {"theta": THETA},
        {"return_benchmark_xsecs": True, "return_error": True},
        {"theta": THETA + 0.5, "cuts": ["pt_j1 > 60."], "efficiency_functions": ["0.8"], "start_event": 7},
    ]
    for kwargs in cases:
        expected = np.atleast_1d(theirs._calculate_xsec(**kwargs))
        got = np.atleast_1d(ours._calculate_xsec(**kwargs))
        for e, g in zip(expected, got, strict=True):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(ours.rate_information(theta=THETA, luminosity=LUMINOSITY)[0],
                               theirs.rate_information(theta=THETA, luminosity=LUMINOSITY)[0], rtol=1e-10)  # fmt: skip


def test_the_switch_names_its_choices():
    from madminer.fisherinformation import FisherInformation

    from madminer_notebooks.inference.columnar_fisher import ColumnarFisherInformation, fisher_class

    assert fisher_class("madminer") is FisherInformation
    assert fisher_class("columnar") is ColumnarFisherInformation
    with pytest.raises(ValueError, match="evaluation.fisher 'fast'.*columnar, madminer"):
        fisher_class("fast")
