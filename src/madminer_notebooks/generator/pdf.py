"""Vectorised reader for LHAPDF6 ``lhagrid1`` parton-density grids.

MadGraph's default PDF (``nn23lo1``, NNPDF2.3 QCD+QED LO) ships as an LHAPDF6 grid inside the
``pythia8mc`` wheel, so no LHAPDF installation is needed. Evaluation is the LHAPDF standard
log-bicubic scheme: cubic Hermite interpolation in ln x and ln Q^2 with finite-difference
derivatives, done for whole arrays of points at once because the generator calls it for
10^5 phase-space points per batch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .constants import PDF_GRID_FILE


class PDFGridError(RuntimeError):
    """The PDF grid file is missing or not a readable lhagrid1 file."""


def find_pdf_grid(name: str = PDF_GRID_FILE) -> Path:
    """Locate a grid file: in ``$MMNB_PDF_PATH`` if set (and only there), else Pythia 8's data folder
    of this environment."""
    if os.environ.get("MMNB_PDF_PATH"):
        candidates = [Path(os.environ["MMNB_PDF_PATH"]) / name]
    else:
        candidates = []
        if os.environ.get("PYTHIA8DATA"):
            candidates.append(Path(os.environ["PYTHIA8DATA"]).parent / "pdfdata" / name)
        for prefix in dict.fromkeys([sys.prefix, sys.base_prefix]):
            candidates.append(Path(prefix) / "share" / "Pythia8" / "pdfdata" / name)
    for path in candidates:
        if path.is_file():
            return path
    searched = ", ".join(str(p.parent) for p in candidates)
    raise PDFGridError(
        f"PDF grid {name} not found (searched {searched}); install pythia8mc==8.317.2 "
        "or set MMNB_PDF_PATH to a folder that holds it"
    )


def _hermite_derivatives(t: np.ndarray, values: np.ndarray, axis: int) -> np.ndarray:
    """d(values)/dt at the knots: mean of the neighbouring slopes, one-sided at the ends."""
    v = np.moveaxis(values, axis, 0)
    slopes = np.diff(v, axis=0) / np.diff(t).reshape((-1,) + (1,) * (v.ndim - 1))
    d = np.empty_like(v)
    d[0] = slopes[0]
    d[-1] = slopes[-1]
    d[1:-1] = 0.5 * (slopes[:-1] + slopes[1:])
    return np.moveaxis(d, 0, axis)


class LHAGrid:
    """One member of an LHAPDF6 set with a single Q subgrid, e.g. NNPDF2.3 QCD+QED LO.

    ``xf(pid, x, q2)`` returns x f(x, Q^2) like LHAPDF's ``xfxQ2``; outside the grid the values are
    frozen at the border, as in Pythia's reader.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        try:
            text = self.path.read_text()
        except OSError as err:
            raise PDFGridError(f"cannot read PDF grid {self.path}: {err.strerror}") from err
        blocks = [b for b in text.split("---") if b.strip()]
        if len(blocks) < 2 or "lhagrid1" not in blocks[0]:
            raise PDFGridError(f"{self.path} is not an LHAPDF6 lhagrid1 file")
        if len(blocks) != 2:
            raise PDFGridError(f"{self.path}: only grids with one Q subgrid are supported, found {len(blocks) - 1}")
        lines = blocks[1].strip().splitlines()
        self.x = np.array(lines[0].split(), dtype=float)
        self.q = np.array(lines[1].split(), dtype=float)
        self.pids = [int(p) for p in lines[2].split()]
        values = np.array(" ".join(lines[3:]).split(), dtype=float)
        nx, nq, nf = len(self.x), len(self.q), len(self.pids)
        if values.size != nx * nq * nf:
            raise PDFGridError(f"{self.path}: expected {nx * nq * nf} grid values, found {values.size}")
        # File order: x outermost, then Q, then flavour.
        self._grid = values.reshape(nx, nq, nf).transpose(2, 0, 1).copy()  # (flavour, x, q)
        self._logx = np.log(self.x)
        self._logq2 = np.log(self.q**2)
        self._dgrid_dlogx = _hermite_derivatives(self._logx, self._grid, axis=1)
        self._slices: dict[tuple[int, float], tuple[np.ndarray, np.ndarray]] = {}

    def _index(self, pid: int) -> int:
        try:
            return self.pids.index(pid)
        except ValueError:
            raise KeyError(f"flavour {pid} not in PDF grid {self.path.name} (has {self.pids})") from None

    def _q_weights(self, logq2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Knots iq-1 .. iq+2 and the weights with which the cubic Hermite step in ln Q^2 combines the
        values there (it is linear in them): result = sum_k weight_k * value(knot_k)."""
        t_all = self._logq2
        nq = len(t_all)
        iq = np.clip(np.searchsorted(t_all, logq2, side="right") - 1, 0, nq - 2)
        knots = np.clip(iq[:, None] + np.arange(-1, 3)[None, :], 0, nq - 1)
        t = t_all[knots]
        dq = t[:, 2] - t[:, 1]
        g00, g10, g01, g11 = _hermite_basis((logq2 - t[:, 1]) / dq)
        inv_lo = 1.0 / np.where(t[:, 1] > t[:, 0], t[:, 1] - t[:, 0], 1.0)
        inv_mid = 1.0 / dq
        inv_hi = 1.0 / np.where(t[:, 3] > t[:, 2], t[:, 3] - t[:, 2], 1.0)
        # Derivatives at the two inner knots as linear forms in (v0, v1, v2, v3).
        zero = np.zeros_like(dq)
        mid = np.stack([zero, -inv_mid, inv_mid, zero], axis=1)
        lo_side = np.stack([-inv_lo, inv_lo, zero, zero], axis=1)
        hi_side = np.stack([zero, zero, -inv_hi, inv_hi], axis=1)
        d_lo = np.where((iq > 0)[:, None], 0.5 * (lo_side + mid), mid)
        d_hi = np.where((iq < nq - 2)[:, None], 0.5 * (mid + hi_side), mid)
        weights = (g10 * dq)[:, None] * d_lo + (g11 * dq)[:, None] * d_hi
        weights[:, 1] += g00
        weights[:, 2] += g01
        return knots, weights

    def _slice(self, pid: int, q2: float) -> tuple[np.ndarray, np.ndarray]:
        """Values and ln x derivatives at the x knots for one Q^2 (cached: a fixed scale needs one)."""
        key = (pid, q2)
        if key not in self._slices:
            logq2 = np.clip(np.log(np.array([q2])), self._logq2[0], self._logq2[-1])
            knots, weights = self._q_weights(logq2)
            f = self._index(pid)
            values = self._grid[f][:, knots[0]] @ weights[0]
            derivatives = self._dgrid_dlogx[f][:, knots[0]] @ weights[0]
            self._slices[key] = (values, derivatives)
        return self._slices[key]

    def _hermite_x(self, logx: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
        ix = np.clip(np.searchsorted(self._logx, logx, side="right") - 1, 0, len(self._logx) - 2)
        dx = self._logx[ix + 1] - self._logx[ix]
        return ix, _hermite_basis((logx - self._logx[ix]) / dx), dx

    def xf(self, pid: int, x: np.ndarray | float, q2: np.ndarray | float) -> np.ndarray:
        """x f_pid(x, Q^2) for arrays of x and Q^2 (broadcast against each other)."""
        fixed_scale = np.ndim(q2) == 0
        x = np.asarray(x, dtype=float)
        if not fixed_scale:
            x, q2 = np.broadcast_arrays(x, np.asarray(q2, dtype=float))
        logx = np.clip(np.log(x.ravel()), self._logx[0], self._logx[-1])
        ix, (h00, h10, h01, h11), dx = self._hermite_x(logx)
        if fixed_scale:
            values, derivs = self._slice(pid, float(q2))
            out = h00 * values[ix] + h10 * dx * derivs[ix] + h01 * values[ix + 1] + h11 * dx * derivs[ix + 1]
            return out.reshape(x.shape)

        logq2 = np.clip(np.log(q2.ravel()), self._logq2[0], self._logq2[-1])
        knots, weights = self._q_weights(logq2)
        f = self._index(pid)
        grid, dgrid = self._grid[f], self._dgrid_dlogx[f]
        ix_ = ix[:, None]
        # Cubic Hermite in ln x at the four Q knots, then their weighted sum.
        along_x = (
            h00[:, None] * grid[ix_, knots]
            + (h10 * dx)[:, None] * dgrid[ix_, knots]
            + h01[:, None] * grid[ix_ + 1, knots]
            + (h11 * dx)[:, None] * dgrid[ix_ + 1, knots]
        )
        return np.einsum("ij,ij->i", along_x, weights).reshape(x.shape)


def _hermite_basis(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t2 = t * t
    t3 = t2 * t
    return 2 * t3 - 3 * t2 + 1, t3 - 2 * t2 + t, -2 * t3 + 3 * t2, t3 - t2
