"""From a chunk of LHE particles to what MadMiner's observables see: smeared particles grouped into jets,
photons, leptons... (pT-ordered), the missing transverse momentum, and the event's global numbers.

This is ``madminer.utils.interfaces.lhe._smear_particles`` and ``_get_objects`` over whole arrays, with the
same resolution model and the same quirks, because the point is to reproduce MadMiner's numbers:

- only particles whose PDG id has a resolution entry survive smearing (MadMiner's table holds the
  elementary ids; anything else, e.g. a PDG id 9 gluon, silently disappears from every list but
  ``p_truth``);
- a quantity with resolution ``abs + rel * value <= 0`` is not smeared; energies (and pT) are redrawn until
  they exceed the minimum (the particle's mass when pT is derived from the energy, else zero);
- every smeared particle is rebuilt from (pT, phi, eta, E) with phi wrapped into [0, 2 pi], so even
  unsmeared particles carry MadMiner's round-off (an energy derived from pT and mass, MadMiner's
  (pT, phi, eta, m) particles, is left to MadMiner's own path);
- b-quarks are b-tagged jets, top quarks t-tagged; missing pT is minus the sum of the visible smeared
  particles, with Gaussian noise ``abs + rel * HT`` per component.

Random numbers come from numpy's global generator, as in MadMiner, so ``np.random.seed`` before the analysis
makes it reproducible; the draws are vectorised, so the values differ from MadMiner's while following the
same distributions.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import vector

from .expressions import Col, Collection, Vec
from .lhe_columns import EventChunk

JET_IDS = (1, 2, 3, 4, 5, 6, 9, 21)
#: MadMiner's lists: name -> absolute PDG ids
GROUPS = {
    "e": (11,),
    "mu": (13,),
    "tau": (15,),
    "a": (22,),
    "l": (11, 13),
    "v": (12, 14, 16),
    "j": JET_IDS,
}
COLLECTIONS = ("p", "p_truth", *GROUPS)
GLOBALS = ("n_particles", "scale", "alpha_qed", "alpha_qcd")

Resolution = tuple[float | None, float | None]


@functools.cache
def elementary_ids() -> frozenset[int]:
    from madminer.utils.interfaces.lhe import get_elementary_pdg_ids

    return frozenset(get_elementary_pdg_ids())


@functools.cache
def neutrino_ids() -> frozenset[int]:
    from particle import Particle

    return frozenset(int(p.pdgid) for p in Particle.findall(lambda p: p.pdgid.is_sm_lepton and p.charge == 0))


@functools.cache
def _charge(pdgid: int) -> float:
    from particle import Particle

    try:
        return float(Particle.from_pdgid(pdgid).charge)
    except Exception:  # MadMiner: a PDG id the table does not know has charge 0
        return 0.0


@functools.cache
def _tag_ids() -> tuple[frozenset[int], frozenset[int], frozenset[int]]:
    from madminer.utils.particle import B_PDG_IDS, T_PDG_IDS, TAU_PDG_IDS

    return frozenset(B_PDG_IDS), frozenset(T_PDG_IDS), frozenset(TAU_PDG_IDS)


def _pdgid_tags(pdgid: np.ndarray) -> dict[str, np.ndarray]:
    """MadMiner's ``set_pdgid`` tags: b if the id is a b quark, else t if a top, else tau if a tau."""
    b_ids, t_ids, tau_ids = _tag_ids()
    is_b = np.isin(pdgid, list(b_ids))
    is_t = np.isin(pdgid, list(t_ids)) & ~is_b
    return {"b_tag": is_b, "t_tag": is_t, "tau_tag": np.isin(pdgid, list(tau_ids)) & ~is_b & ~is_t}


def _lookup(pdgid: np.ndarray, fn) -> np.ndarray:
    values = np.zeros(pdgid.shape)
    for pid in np.unique(pdgid):
        values[pdgid == pid] = fn(int(pid))
    return values


def _smear(true: np.ndarray, res: Resolution, rng_mask: np.ndarray, minimum: np.ndarray | float | None) -> np.ndarray:
    """MadMiner's ``_smear_variable`` (redrawn until above ``minimum`` when one is given) on the entries of
    ``rng_mask``; entries with resolution <= 0 keep their true value."""
    out = true.copy()
    try:
        with np.errstate(invalid="ignore"):  # incoming partons have eta = +-inf
            width = float(res[0]) + float(res[1]) * true
    except TypeError:  # MadMiner: a None resolution leaves the value as it is
        return out
    draw = rng_mask & (width > 0)
    todo = draw.copy()
    for _ in range(1000):
        idx = np.flatnonzero(todo)
        if idx.size == 0:
            return out
        out.flat[idx] = true.flat[idx] + np.random.normal(0.0, width.flat[idx])
        if minimum is None:
            return out
        low = np.broadcast_to(minimum, true.shape).flat[idx]
        todo = np.zeros_like(todo)
        todo.flat[idx[out.flat[idx] <= low]] = True
    raise RuntimeError("smearing: a value stayed below its minimum after 1000 draws (resolution far too large)")


def smear(chunk: EventChunk, resolutions: dict[str, dict[Any, Resolution]]) -> tuple[Any, np.ndarray, np.ndarray]:
    """Smeared particles of the chunk: (vector array (n, k) in pt/phi/eta/E, kept mask, pdgid)."""
    truth = vector.array({"px": chunk.px, "py": chunk.py, "pz": chunk.pz, "E": chunk.e})
    e_true, pt_true, eta_true, phi_true = truth.E, truth.pt, truth.eta, truth.phi
    with np.errstate(invalid="ignore"):
        m = truth.m
    energy, pt_res, eta_res, phi_res = (resolutions[k] for k in ("energy", "pt", "eta", "phi"))
    kept = chunk.present & np.isin(chunk.pdgid, [k for k in energy if k != "met"])
    e, pt, eta, phi = e_true.copy(), pt_true.copy(), eta_true.copy(), phi_true.copy()
    configs: dict[tuple, list[int]] = {}
    for pid in np.unique(chunk.pdgid[kept]).tolist():
        configs.setdefault((energy[pid], pt_res[pid], eta_res[pid], phi_res[pid]), []).append(pid)
    for (e_r, pt_r, eta_r, phi_r), pids in configs.items():
        sel = kept & np.isin(chunk.pdgid, pids)
        if None in e_r and None in pt_r:
            raise RuntimeError("Cannot derive both pT and energy from on-shell conditions!")
        if None in e_r:  # MadMiner then keeps (pt, phi, eta, m) coordinates: see ColumnarLHEReader's fallback
            raise NotImplementedError("energy derived from pT and mass")
        min_e = m if None in pt_r else 0.0
        if None not in e_r:
            e = np.where(sel, _smear(e_true, e_r, sel, min_e), e)
        if None not in pt_r:
            pt = np.where(sel, _smear(pt_true, pt_r, sel, 0.0), pt)
        eta = np.where(sel, _smear(eta_true, eta_r, sel, None), eta)
        phi = np.where(sel, _smear(phi_true, phi_r, sel, None), phi)
        if None in pt_r:
            with np.errstate(invalid="ignore"):
                derived = np.where(e > m, (e**2 - m**2) ** 0.5 / np.cosh(eta), 0.0)
            pt = np.where(sel, derived, pt)
    two_pi = 2.0 * np.pi
    while (over := kept & (phi > two_pi)).any():
        phi = np.where(over, phi - two_pi, phi)
    while (under := kept & (phi < 0.0)).any():
        phi = np.where(under, phi + two_pi, phi)
    return vector.array({"pt": pt, "phi": phi, "eta": eta, "E": e}), kept, chunk.pdgid


def _gather(arrays: dict[str, np.ndarray], order: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.take_along_axis(v, order, axis=1) for k, v in arrays.items()}


def _vector_from(pt, phi, eta, e) -> Any:
    return vector.array({"pt": pt, "phi": phi, "eta": eta, "E": e})


def build_namespace(
    chunk: EventChunk, resolutions: dict, met_resolution: Resolution | None, needed: set[str]
) -> dict[str, Any]:
    """The ``needed`` names an observable can use, as columns: particle lists, ``met``, globals. (Smearing
    always runs: the missing pT depends on every particle.)"""
    smeared, kept, pdgid = smear(chunk, resolutions)
    n = chunk.n
    coords = {"pt": smeared.pt, "phi": smeared.phi, "eta": smeared.eta, "e": smeared.E}
    charge = _lookup(pdgid, _charge)
    abs_id = np.abs(pdgid)
    tags = _pdgid_tags(pdgid)
    # jets: set_tags(False, True, False) for b, (False, False, True) for t, overriding set_pdgid's tags
    jet_tags = {"b_tag": abs_id == 5, "t_tag": abs_id == 6, "tau_tag": np.zeros_like(abs_id, dtype=bool)}
    namespace: dict[str, Any] = {}

    def collection(member: np.ndarray, ordered: bool, jets: bool = False) -> Collection:
        key = np.where(member, coords["pt"], -np.inf)
        # Python's sorted(reverse=True) is stable: equal pT keep their file order; unordered lists keep file order
        order = np.argsort(-key if ordered else ~member, axis=1, kind="stable")
        count = member.sum(axis=1)
        width = int(count.max()) if n else 0
        order = order[:, :width]
        c = _gather(coords, order)
        aux = _gather({"pdgid": pdgid, "charge": charge, **(jet_tags if jets else tags)}, order)
        aux["spin"] = None  # MadMiner's smeared particles have no spin
        return Collection(_vector_from(c["pt"], c["phi"], c["eta"], c["e"]), count, aux)

    for name, ids in GROUPS.items():
        if name in needed:
            namespace[name] = collection(kept & np.isin(abs_id, ids), ordered=True, jets=name == "j")
    if "p" in needed:
        namespace["p"] = collection(kept, ordered=False)
    if "p_truth" in needed:
        namespace["p_truth"] = _truth_collection(chunk)
    if "met" in needed:
        namespace["met"] = _missing_pt(smeared, kept, pdgid, met_resolution, n)
    for name in GLOBALS:
        if name in chunk.globals:
            namespace[name] = Col(chunk.globals[name], np.ones(n, dtype=bool))
    return namespace


def _truth_collection(chunk: EventChunk) -> Collection:
    """MadMiner's ``p_truth``: the status-1 particles as read, in file order, with their spins."""
    truth = chunk.present
    order = np.argsort(~truth, axis=1, kind="stable")
    width = int(truth.sum(axis=1).max()) if chunk.n else 0
    order = order[:, :width]
    t = _gather({"px": chunk.px, "py": chunk.py, "pz": chunk.pz, "E": chunk.e}, order)
    t_pdgid = np.take_along_axis(chunk.pdgid, order, axis=1)
    return Collection(
        vector.array(t),
        truth.sum(axis=1),
        {
            "pdgid": t_pdgid,
            "charge": _lookup(t_pdgid, _charge),
            **_pdgid_tags(t_pdgid),
            "spin": np.take_along_axis(chunk.spin, order, axis=1),
        },
    )


def _missing_pt(smeared: Any, kept: np.ndarray, pdgid: np.ndarray, resolution: Resolution | None, n: int) -> Vec:
    """MadMiner's ``met``: minus the sum of the visible smeared particles, summed in file order, plus noise."""
    visible = kept & np.isin(pdgid, list(elementary_ids())) & ~np.isin(pdgid, list(neutrino_ids()))
    px, py, pt = smeared.px, smeared.py, smeared.pt
    sum_x, sum_y, ht = np.zeros(n), np.zeros(n), np.zeros(n)
    for slot in range(kept.shape[1]):  # sequential sums, as MadMiner's += over the particle list
        v = visible[:, slot]
        sum_x = np.where(v, sum_x + px[:, slot], sum_x)
        sum_y = np.where(v, sum_y + py[:, slot], sum_y)
        ht = np.where(v, ht + pt[:, slot], ht)
    noise_x = noise_y = 0.0
    if resolution is not None:
        try:
            std = float(resolution[0]) + float(resolution[1]) * ht
        except TypeError:
            std = None
        if std is not None and np.any(std != 0):
            noise_x = np.random.normal(0.0, std)
            noise_y = np.random.normal(0.0, std)
    met_x = -sum_x + noise_x
    met_y = -sum_y + noise_y
    p = vector.array({"px": met_x, "py": met_y, "pz": np.zeros(n), "E": (met_x**2 + met_y**2) ** 0.5})
    aux = {"pdgid": None, "spin": None, "charge": None, "b_tag": None, "t_tag": None, "tau_tag": None}
    return Vec(p, np.ones(n, dtype=bool), aux)
