"""Event weights of p p -> u d H (H -> gamma gamma) via W+ W- fusion: PDFs x flux x |M|^2 x phase space.

The hard process is u from beam 1 and d from beam 2 only, as in the reference MadGraph process
(MadGraph does not add the mirrored beam assignment for it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .constants import BR_H_AA, GEV2_TO_PB, MH, MZ, PDF_ALPHAS_MZ
from .matrix_element import AmplitudeParts, amplitude_parts
from .pdf import LHAGrid
from .phase_space import GenerationCuts, Kinematics, PhaseSpace


class ScaleError(ValueError):
    """Unknown scale specification."""


@dataclass(frozen=True)
class ScaleChoice:
    """Renormalisation = factorisation scale: a fixed value, or MadGraph's ``dynamical_scale_choice = 3``."""

    fixed: float | None  # GeV; None means dynamical choice 3

    @classmethod
    def parse(cls, spec: str) -> ScaleChoice:
        """``fixed:<GeV>`` or ``dynamic3`` (half the sum of the final-state transverse masses)."""
        text = spec.strip().lower()
        if text == "dynamic3":
            return cls(None)
        match = re.fullmatch(r"fixed:([0-9.eE+-]+)", text)
        if match:
            try:
                value = float(match.group(1))
            except ValueError:
                value = -1.0
            if value > 0 and math.isfinite(value):
                return cls(value)
        raise ScaleError(f"unknown scale {spec!r}: expected 'fixed:<GeV>' with a positive value, or 'dynamic3'")

    @property
    def spec(self) -> str:
        return "dynamic3" if self.fixed is None else f"fixed:{self.fixed:g}"

    def evaluate(self, kin: Kinematics) -> np.ndarray:
        if self.fixed is not None:
            return np.full(kin.x1.shape, self.fixed)
        # Transverse masses sqrt(E^2 - pz^2) of the two quarks and two photons (not the Higgs).
        total = sum(np.sqrt(np.maximum(p[:, 0] ** 2 - p[:, 3] ** 2, 0.0)) for p in (kin.p3, kin.p4, kin.a1, kin.a2))
        return 0.5 * total


def alpha_s_one_loop(mu: np.ndarray) -> np.ndarray:
    """One-loop alpha_s with five flavours from the PDF set's alpha_s(MZ); written to the LHE files only."""
    b0 = (33 - 2 * 5) / (12 * math.pi)
    return PDF_ALPHAS_MZ / (1 + PDF_ALPHAS_MZ * b0 * np.log(mu**2 / MZ**2))


@dataclass
class WeightedBatch:
    """A batch of phase-space points with everything needed for the weights at any card point."""

    kin: Kinematics
    scale: np.ndarray
    parts: AmplitudeParts
    #: PDFs x flux x phase space x BR x unit conversion: weight [pb] = base * |M|^2(c).
    base: np.ndarray

    def weights(self, cwl2: float, cpwl2: float) -> np.ndarray:
        return self.base * self.parts.squared(cwl2, cpwl2)


class VBFHiggsProcess:
    def __init__(self, pdf: LHAGrid, scale: ScaleChoice, cuts: GenerationCuts | None = None):
        self.pdf = pdf
        self.scale = scale
        self.phase_space = PhaseSpace(cuts)

    def evaluate(self, x: np.ndarray, flat: np.ndarray) -> WeightedBatch:
        kin = self.phase_space.generate(x, flat)
        mu = self.scale.evaluate(kin)
        q2 = mu**2 if self.scale.fixed is None else self.scale.fixed**2
        f1 = self.pdf.xf(2, kin.x1, q2) / kin.x1
        f2 = self.pdf.xf(1, kin.x2, q2) / kin.x2
        s_hat = kin.x1 * kin.x2 * self.phase_space.s
        # Decay: BR at MH, with Gamma_aa(m) ~ m^3 and the m/MH of the chain's phase-space factor.
        decay = BR_H_AA * (kin.mass / MH) ** 4
        base = kin.jacobian * f1 * f2 / (2 * s_hat) * decay * GEV2_TO_PB
        parts = amplitude_parts(kin.p1, kin.p2, kin.p3, kin.p4)
        return WeightedBatch(kin, mu, parts, base)
