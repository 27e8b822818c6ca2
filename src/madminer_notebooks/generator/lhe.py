"""MadGraph-style Les Houches event files: header blocks that MadMiner, Pythia 8 and pylhe read, and
a fast formatter for batches of events.

Layout per event (as MadGraph writes ``u d > u d h, h > a a``): the two incoming quarks, the two
outgoing quarks, the Higgs (status 2) and its two photons, then ``<rwgt>`` with one ``<wgt id='NAME'>``
per benchmark other than the sampling one. XWGTUP is the sampling benchmark's weight; with
``event_norm = average`` every event carries the full cross section.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..lhe_file import WGT, open_text
from .benchmarks import Benchmark, Setup
from .constants import (
    ALPHA_EM,
    ALPHA_EM_INV,
    BEAM_ENERGY,
    BW_CUTOFF,
    G_FERMI,
    LHA_BLOCK,
    LHA_ID_CPWL2,
    LHA_ID_CWL2,
    MH,
    MW,
    MZ,
    PDF_LHAID,
    WH,
)
from .phase_space import GenerationCuts

PROCESS_CARD = "import model EWdim6-full\ngenerate u d > u d h / a z QCD=0 QED=99 NP=2, h > a a QCD=0 QED=99 NP=0\n"

# (pdg id, status, mother1, mother2, colour, anticolour, spin) of the seven particle lines.
_PARTICLES = (
    (2, -1, 0, 0, 501, 0, -1),
    (1, -1, 0, 0, 502, 0, -1),
    (2, 1, 1, 2, 502, 0, -1),
    (1, 1, 1, 2, 501, 0, -1),
    (25, 2, 1, 2, 0, 0, 0),
    (22, 1, 5, 5, 0, 0, 9),
    (22, 1, 5, 5, 0, 0, 9),
)


@dataclass(frozen=True)
class RunInfo:
    """Everything the header records about a run."""

    setup: Setup
    sampling: Benchmark
    n_events: int
    seed: int
    jobs: int
    scale_spec: str
    cuts: GenerationCuts
    cross_section_pb: float
    cross_section_error_pb: float
    truncated_fraction: float
    unweighting_efficiency: float
    generator_version: str


def _run_card(info: RunInfo) -> str:
    fixed = not info.scale_spec.startswith("dynamic")
    scale = float(info.scale_spec.split(":")[1]) if fixed else MZ
    lines = [
        ("madminer-notebooks", "run_tag", "generator that wrote this file"),
        (info.n_events, "nevents", "number of unweighted events"),
        (info.seed, "iseed", "random seed"),
        (info.jobs, "njobs", "parallel jobs (with iseed, fixes the event stream)"),
        (1, "lpp1", "proton beam 1"),
        (1, "lpp2", "proton beam 2"),
        (BEAM_ENERGY, "ebeam1", "beam 1 energy in GeV"),
        (BEAM_ENERGY, "ebeam2", "beam 2 energy in GeV"),
        ("nn23lo1", "pdlabel", "PDF set"),
        (PDF_LHAID, "lhaid", "LHAPDF id of the PDF set"),
        (fixed, "fixed_ren_scale", "fixed renormalisation scale"),
        (fixed, "fixed_fac_scale", "fixed factorisation scale"),
        (scale, "scale", "fixed renormalisation scale in GeV"),
        (scale, "dsqrt_q2fact1", "fixed factorisation scale for beam 1 in GeV"),
        (scale, "dsqrt_q2fact2", "fixed factorisation scale for beam 2 in GeV"),
        (-1 if fixed else 3, "dynamical_scale_choice", "3: sum of transverse masses / 2"),
        ("average", "event_norm", "every event carries the total cross section"),
        (info.cuts.ptj, "ptj", "minimum pT of the quarks in GeV"),
        (info.cuts.etaj, "etaj", "maximum |eta| of the quarks"),
        (info.cuts.drjj, "drjj", "minimum Delta R between the quarks"),
        (False, "cut_decays", "no cuts on the Higgs decay products"),
        (BW_CUTOFF, "bwcutoff", "Higgs lineshape kept within bwcutoff widths of its mass"),
        (False, "use_syst", "no systematics weights"),
    ]
    body = "\n".join(f"  {value} = {key} ! {comment}" for value, key, comment in lines)
    return f"<MGRunCard>\n{body}\n</MGRunCard>\n"


def _param_card(benchmark: Benchmark) -> str:
    return (
        "<slha>\n"
        f"BLOCK {LHA_BLOCK.upper()} #\n"
        f"  {LHA_ID_CWL2} {benchmark.cwl2:.6e} # cwl2\n"
        f"  {LHA_ID_CPWL2} {benchmark.cpwl2:.6e} # cpwl2\n"
        "BLOCK MASS #\n"
        f"  23 {MZ:.6e} # mz\n"
        f"  24 {MW:.6e} # mw (derived)\n"
        f"  25 {MH:.6e} # mh\n"
        "BLOCK SMINPUTS #\n"
        f"  1 {ALPHA_EM_INV:.6e} # aewm1\n"
        f"  2 {G_FERMI:.6e} # gf\n"
        f"DECAY 25 {WH:.6e} # wh\n"
        "</slha>\n"
    )


def _reweight_block(info: RunInfo) -> str:
    s = info.sampling
    lines = []
    for b in info.setup.benchmarks:
        if b.name == s.name:
            continue
        lines.append(
            f"<weight id='{b.name}'>set param_card {LHA_BLOCK} {LHA_ID_CWL2} {b.cwl2:.6e} # orig: {s.cwl2:.6e}\n"
            f"set param_card {LHA_BLOCK} {LHA_ID_CPWL2} {b.cpwl2:.6e} # orig: {s.cpwl2:.6e}</weight>"
        )
    return (
        "<initrwgt>\n<weightgroup name='mg_reweighting' weight_name_strategy='includeIdInWeightName'>\n"
        + "\n".join(lines)
        + "\n</weightgroup>\n</initrwgt>\n"
    )


def header(info: RunInfo) -> str:
    """Everything before the first ``<event>``."""
    names = ", ".join(b.name for b in info.setup.benchmarks)
    return (
        '<LesHouchesEvents version="3.0">\n<header>\n'
        f"<generator name='madminer-notebooks' version='{info.generator_version}'>"
        "leading-order VBF H -> gamma gamma in EWdim6 (built-in generator)</generator>\n"
        f"<MGProcCard>\n{PROCESS_CARD}</MGProcCard>\n"
        + _run_card(info)
        + _param_card(info.sampling)
        + "<MGGenerationInfo>\n"
        f"#  Number of Events        :       {info.n_events}\n"
        f"#  Integrated weight (pb)  :  {info.cross_section_pb:.10e}\n"
        f"#  Integration error (pb)  :  {info.cross_section_error_pb:.10e}\n"
        f"#  Sampling benchmark      :  {info.sampling.name}\n"
        f"#  Benchmarks              :  {names}\n"
        f"#  Scale                   :  {info.scale_spec}\n"
        f"#  Unweighting efficiency  :  {info.unweighting_efficiency:.4f}\n"
        f"#  Truncated fraction      :  {info.truncated_fraction:.2e}\n"
        "</MGGenerationInfo>\n" + _reweight_block(info) + "</header>\n<init>\n"
        f"2212 2212 {BEAM_ENERGY:.8e} {BEAM_ENERGY:.8e} 0 0 {PDF_LHAID} {PDF_LHAID} -4 1\n"
        f"{info.cross_section_pb:+.10e} {info.cross_section_error_pb:+.10e} {info.cross_section_pb:+.10e} 1\n"
        "</init>\n"
    )


FOOTER = "</LesHouchesEvents>\n"


class EventFormatter:
    """Formats batches of events with one %-template per event (the integers are baked in)."""

    def __init__(self, weight_names: list[str]):
        particle_fmt = " %+.10e %+.10e %+.10e %.10e %.10e 0.0000e+00 %.4e\n"
        lines = ["<event>\n 7      1 %+.10e %.8e %.8e %.8e\n"]
        for pid, status, m1, m2, col, acol, spin in _PARTICLES:
            prefix = f" {pid:>8d} {status:2d} {m1:4d} {m2:4d} {col:4d} {acol:4d}"
            lines.append(prefix + particle_fmt.replace("%.4e\n", f"{float(spin):.4e}\n"))
        if weight_names:
            lines.append("<rwgt>\n")
            lines.extend(f"<wgt id='{name}'> %+.15e </wgt>\n" for name in weight_names)
            lines.append("</rwgt>\n")
        lines.append("</event>\n")
        self.template = "".join(lines)

    def format(
        self,
        xwgtup: np.ndarray,
        scale: np.ndarray,
        alpha_s: np.ndarray,
        momenta: list[np.ndarray],
        masses: list[np.ndarray],
        weights: np.ndarray,
    ) -> str:
        """``momenta``: seven (n, 4) arrays (E, px, py, pz); ``masses``: seven (n,) arrays;
        ``weights``: (n, n_weights) values of the ``<wgt>`` entries."""
        n = len(xwgtup)
        columns = [xwgtup, scale, np.full(n, ALPHA_EM), alpha_s]
        for p, m in zip(momenta, masses, strict=True):
            columns += [p[:, 1], p[:, 2], p[:, 3], p[:, 0], m]
        table = np.column_stack(columns + [weights]) if weights.size else np.column_stack(columns)
        template = self.template
        return "".join([template % tuple(row) for row in table.tolist()])


@dataclass
class EventArrays:
    """Contents of an LHE file as arrays (for checks and plots; MadMiner reads files itself)."""

    xwgtup: np.ndarray  # (n,)
    scale: np.ndarray  # (n,)
    pdg_ids: np.ndarray  # (n_particles,) of the first event; all events of one process share them
    status: np.ndarray  # (n_particles,)
    momenta: np.ndarray  # (n, n_particles, 4) as (E, px, py, pz)
    masses: np.ndarray  # (n, n_particles)
    weights: dict[str, np.ndarray]  # <wgt id> -> (n,)
    header: str


def read_lhe_arrays(path: str, max_events: int | None = None) -> EventArrays:
    """Read an LHE file (plain or gzipped) whose events all have the same particle content."""
    with open_text(path) as f:
        text = f.read()
    head, _, body = text.partition("<event>")
    chunks = ("<event>" + body).split("<event>")[1:]
    if max_events is not None:
        chunks = chunks[:max_events]
    xw, sc, moms, masses = [], [], [], []
    weights: dict[str, list[float]] = {}
    ids = status = None
    for chunk in chunks:
        lines = chunk.strip().splitlines()
        first = lines[0].split()
        nup = int(first[0])
        xw.append(float(first[2]))
        sc.append(float(first[3]))
        rows = [line.split() for line in lines[1 : 1 + nup]]
        if ids is None:
            ids = np.array([int(r[0]) for r in rows])
            status = np.array([int(r[1]) for r in rows])
        vals = np.array([[float(v) for v in r[6:11]] for r in rows])
        moms.append(vals[:, [3, 0, 1, 2]])
        masses.append(vals[:, 4])
        for m in WGT.finditer(chunk):
            weights.setdefault(m["id"], []).append(float(m["value"]))
    return EventArrays(
        xwgtup=np.array(xw),
        scale=np.array(sc),
        pdg_ids=ids,
        status=status,
        momenta=np.array(moms),
        masses=np.array(masses),
        weights={k: np.array(v) for k, v in weights.items()},
        header=head,
    )
