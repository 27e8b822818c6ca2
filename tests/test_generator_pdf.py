"""The vectorised PDF reader against Pythia 8's own evaluation of the same NNPDF2.3 QCD+QED LO grid."""

import numpy as np
import pytest

from madminer_notebooks.generator.pdf import LHAGrid, PDFGridError, find_pdf_grid


@pytest.fixture(scope="module")
def grid() -> LHAGrid:
    return LHAGrid(find_pdf_grid())


@pytest.fixture(scope="module")
def pythia_pdf():
    import pythia8mc  # a hard dependency (pyproject.toml): missing, the test fails

    pythia = pythia8mc.Pythia("", False)
    for line in ("ProcessLevel:all = off", "Print:quiet = on"):
        pythia.readString(line)
    assert pythia.init()
    return pythia, pythia.getPDFPtr(2212)


@pytest.mark.parametrize("pid", [2, 1, -2, -1, 21])
def test_xf_matches_pythia_on_a_grid_of_x_and_q(grid, pythia_pdf, pid):
    _, pdf = pythia_pdf
    xs = np.geomspace(1e-4, 0.8, 37)
    qs = np.array([10.0, 37.0, 91.1876, 125.0, 480.0, 3000.0])
    x, q = (a.ravel() for a in np.meshgrid(xs, qs))
    ours = grid.xf(pid, x, q**2)
    ref = np.array([pdf.xf(pid, xi, qi * qi) for xi, qi in zip(x, q, strict=True)])
    significant = ref > 1e-3 * ref.max()
    rel = np.abs(ours[significant] / ref[significant] - 1)
    # Both interpolate the same table; they differ between knots by at most a few per mille.
    assert rel.max() < 6e-3
    assert np.median(rel) < 3e-4


def test_flavours_are_not_interchangeable(grid):
    # u and d differ by about a factor 2 at large x: a flavour mix-up cannot hide in the tolerance above.
    assert grid.xf(2, 0.3, 125.0**2) / grid.xf(1, 0.3, 125.0**2) > 2.0


def test_fixed_scale_slice_equals_general_interpolation(grid):
    x = np.geomspace(2e-4, 0.9, 500)
    for q in (20.0, 125.0, 1234.5):
        assert np.allclose(grid.xf(2, x, q**2), grid.xf(2, x, np.full_like(x, q**2)), rtol=1e-13, atol=0)


def test_grid_knots_are_reproduced_exactly(grid):
    ix, iq = 40, 20
    x, q = grid.x[ix], grid.q[iq]
    pid_index = grid.pids.index(2)
    assert grid.xf(2, np.array([x]), np.array([q**2]))[0] == pytest.approx(grid._grid[pid_index, ix, iq], rel=1e-12)


def test_missing_grid_names_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("MMNB_PDF_PATH", str(tmp_path))
    with pytest.raises(PDFGridError, match=str(tmp_path)):
        find_pdf_grid()
