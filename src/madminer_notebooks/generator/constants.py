"""Electroweak inputs and derived couplings of the EWdim6 model in the G_mu scheme.

Every number here is a fact of the reference MadGraph setup (see docs/physics.md):
changing one changes the physics, so they live in one place and are derived, not retyped.
"""

from __future__ import annotations

import math

#: 1 / alpha_EM(MZ), G_F [GeV^-2], MZ, MH, WH [GeV] of the model's param card.
ALPHA_EM_INV = 127.9
G_FERMI = 1.16637e-5
MZ = 91.1876
MH = 125.0
WH = 4.07e-3
#: Partial width H -> gamma gamma of the model at these inputs [GeV] (SM effective loop vertex).
WIDTH_H_AA = 1.0511e-5
#: MadGraph's bwcutoff: the Higgs lineshape is kept for |m - MH| < BW_CUTOFF * WH.
BW_CUTOFF = 15.0

ALPHA_EM = 1.0 / ALPHA_EM_INV
#: W mass from the G_mu scheme relation (not an input of the card).
MW = math.sqrt(MZ**2 / 2 + math.sqrt(MZ**4 / 4 - math.pi * ALPHA_EM * MZ**2 / (math.sqrt(2) * G_FERMI)))
SW2 = 1.0 - MW**2 / MZ**2
EE = math.sqrt(4 * math.pi * ALPHA_EM)
VEV = (math.sqrt(2) * G_FERMI) ** -0.5
BR_H_AA = WIDTH_H_AA / WH

#: Couplings of the H W+ W- vertex, without the common factor i (card values in TeV^-2).
G_HWW_SM = EE**2 * VEV / (2 * SW2)
#: Coefficient of CWL2 (TeV^-2) in front of the CP-even derivative structure [GeV^-1].
G_HWW_CWL2 = EE**2 * VEV / (4e6 * SW2)
#: Coefficient of CPWL2 (TeV^-2) in front of the CP-odd epsilon structure [GeV^-1], sign included.
G_HWW_CPWL2 = -(EE**2) * VEV / (2e6 * SW2)
#: W f f' coupling e / (sw sqrt 2).
G_WFF = EE / math.sqrt(2 * SW2)

#: 1 GeV^-2 in picobarn.
GEV2_TO_PB = 0.38937966e9

#: Beam energy [GeV] of the 13 TeV LHC.
BEAM_ENERGY = 6500.0

#: LHAPDF id and file of NNPDF2.3 QCD+QED LO, alpha_s(MZ) = 0.130 (MadGraph's nn23lo1).
PDF_LHAID = 247000
PDF_GRID_FILE = "NNPDF23_lo_as_0130_qed_0000.dat"
PDF_ALPHAS_MZ = 0.130

#: EWdim6 LHA block and ids of the two operators this generator implements.
LHA_BLOCK = "dim6"
LHA_ID_CWL2 = 2
LHA_ID_CPWL2 = 5
